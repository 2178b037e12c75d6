/**
 * Function bundles by (function id, version), so a warm worker reads a function's code once
 * per version instead of once per job. Concurrent misses share one query.
 */
import type { Sql } from "../db/pool.ts";
import type { FunctionBundle } from "../isolate/types.ts";
import { functionBundleById } from "../queue/bundle_queries.ts";

export class BundleCache {
  #entries = new Map<string, Promise<FunctionBundle | null>>();

  constructor(private readonly sql: Sql, private readonly maxEntries = 500) {}

  /** The bundle a job of `functionId` at `version` runs; null when the function is gone. */
  get(functionId: string, version: number | null): Promise<FunctionBundle | null> {
    // A job without a recorded version runs whatever is current: never cached.
    if (version === null) return functionBundleById(this.sql, functionId);
    const key = `${functionId}:${version}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = functionBundleById(this.sql, functionId);
      this.#entries.set(key, entry);
      // A failed or empty lookup is not cached: the next job asks again.
      entry.then((b) => b ?? this.#entries.delete(key), () => this.#entries.delete(key));
      if (this.#entries.size > this.maxEntries) {
        this.#entries.delete(this.#entries.keys().next().value!);
      }
    }
    return entry;
  }
}

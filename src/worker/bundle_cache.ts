/**
 * Function bundles by (function id, version), so a warm worker reads a function's code once
 * per version instead of once per job. Concurrent misses share one query.
 */
import type { Sql } from "../db/pool.ts";
import type { FunctionBundle } from "../isolate/types.ts";
import { functionBundleById } from "../queue/bundle_queries.ts";

export class BundleCache {
  #entries = new Map<string, Promise<FunctionBundle | null>>();
  /** Entries already loaded, for a synchronous hit (no await per job). */
  #loaded = new Map<string, FunctionBundle>();

  constructor(private readonly sql: Sql, private readonly maxEntries = 500) {}

  /** The bundle of `functionId` at `version` if it is loaded already, else undefined. */
  loaded(functionId: string, version: number | null): FunctionBundle | undefined {
    return version === null ? undefined : this.#loaded.get(`${functionId}:${version}`);
  }

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
      const settled = entry;
      settled.then((bundle) => {
        if (!bundle) this.#entries.delete(key);
        else if (this.#entries.get(key) === settled) this.#loaded.set(key, bundle);
      }, () => this.#entries.delete(key));
      if (this.#entries.size > this.maxEntries) {
        const oldest = this.#entries.keys().next().value!;
        this.#entries.delete(oldest);
        this.#loaded.delete(oldest);
      }
    }
    return entry;
  }
}

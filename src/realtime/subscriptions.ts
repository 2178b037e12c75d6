/**
 * Subscriptions and the index the hub fans events out with. Table subscriptions are filed
 * by what their subscriber may see (rls.ts): "all" subscribers get every event, "owner"
 * subscribers only events of their own rows, "none" subscribers are not filed at all. So an
 * event is matched against the few subscriptions that can possibly receive it, not against
 * every socket.
 */
import type { RowFilter } from "./filters.ts";
import type { EventFilter } from "./protocol.ts";
import { visibilityOf } from "./rls.ts";
import type { RealtimeTable } from "./tables.ts";
import type { Connection } from "./connection.ts";

export interface TableSubscription {
  kind: "table";
  id: string;
  conn: Connection;
  channel: string;
  table: RealtimeTable;
  event: EventFilter;
  filter: RowFilter | null;
  /** Message text before / after the event body, built once per subscription. */
  prefix: string;
  suffix: string;
}

export interface LogSubscription {
  kind: "logs";
  id: string;
  conn: Connection;
  channel: string;
  jobId: string;
  prefix: string;
  suffix: string;
}

export type Subscription = TableSubscription | LogSubscription;

interface TableEntry {
  all: Set<TableSubscription>;
  byOwner: Map<string, Set<TableSubscription>>;
}

export class SubscriptionIndex {
  readonly #tables = new Map<string, TableEntry>();
  readonly #logs = new Map<string, Set<LogSubscription>>();
  /** Where each subscription is filed, so removal does not depend on the current token. */
  readonly #filed = new Map<Subscription, Set<Subscription>>();

  add(sub: Subscription): void {
    let set: Set<Subscription> | null = null;
    if (sub.kind === "logs") {
      set = getOrInit(this.#logs, sub.jobId, () => new Set()) as Set<Subscription>;
    } else {
      const key = `${sub.table.schema}.${sub.table.table}`;
      const entry = getOrInit(this.#tables, key, () => ({ all: new Set(), byOwner: new Map() }));
      const v = visibilityOf(sub.conn.auth);
      if (v.kind === "all") set = entry.all as Set<Subscription>;
      else if (v.kind === "owner") {
        set = getOrInit(entry.byOwner, v.userId, () => new Set()) as Set<Subscription>;
      }
    }
    if (set) {
      set.add(sub);
      this.#filed.set(sub, set);
    }
  }

  remove(sub: Subscription): void {
    const set = this.#filed.get(sub);
    if (!set) return;
    set.delete(sub);
    this.#filed.delete(sub);
    if (set.size > 0) return;
    // Drop empty buckets so a churn of users does not grow the maps.
    if (sub.kind === "logs") this.#logs.delete(sub.jobId);
    else {
      const entry = this.#tables.get(`${sub.table.schema}.${sub.table.table}`);
      const owner = sub.conn.auth.userId;
      if (entry && owner && entry.byOwner.get(owner) === set) entry.byOwner.delete(owner);
    }
  }

  /** Table subscriptions that may receive an event on a row owned by `owner`. */
  *candidates(tableKey: string, owner: unknown): Iterable<TableSubscription> {
    const entry = this.#tables.get(tableKey);
    if (!entry) return;
    yield* entry.all;
    if (typeof owner === "string") {
      const own = entry.byOwner.get(owner);
      if (own) yield* own;
    }
  }

  logSubscribers(jobId: string): Iterable<LogSubscription> {
    return this.#logs.get(jobId) ?? [];
  }

  logJobIds(): string[] {
    return [...this.#logs.keys()];
  }

  get size(): number {
    return this.#filed.size;
  }

  /** Whether any table subscription can receive events (anon ones are never filed). */
  hasTableSubscriptions(): boolean {
    for (const entry of this.#tables.values()) {
      if (entry.all.size > 0 || entry.byOwner.size > 0) return true;
    }
    return false;
  }
}

function getOrInit<K, V>(map: Map<K, V>, key: K, init: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = init();
    map.set(key, v);
  }
  return v;
}

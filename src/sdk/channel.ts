/** A realtime channel: bindings to row changes, subscribed over the client's shared socket. */
import type { Gap, RealtimeClient, ServerChangePayload, Subscription } from "./realtime.ts";
import { FluxbaseError } from "./types.ts";

/** Row events a binding can ask for. */
export type ChangeEvent = "INSERT" | "UPDATE" | "DELETE" | "*";

/** What a change callback receives. */
// Rows of any table arrive here and the spec's samples read `payload.new.progress.percent`
// directly, so the default row type is deliberately loose.
// deno-lint-ignore no-explicit-any
export interface RealtimeChangePayload<T = Record<string, any>> {
  eventType: "INSERT" | "UPDATE" | "DELETE";
  schema: string;
  table: string;
  commit_timestamp: string;
  /** The row after the change (`{}` for DELETE). */
  new: T;
  /** The row before the change (`{}` for INSERT); holds at least status and progress. */
  old: Partial<T>;
}

/** The `postgres_changes` binding filter, as in the spec's "Filter Subscriptions". */
export interface PostgresChangesFilter {
  event: ChangeEvent;
  schema?: string;
  table?: string;
  /** `column=op.value`, e.g. `status=eq.running`, `id=in.(a,b)`. */
  filter?: string;
}

/** States reported to the `subscribe()` callback. */
export type ChannelStatus = "SUBSCRIBED" | "TIMED_OUT" | "CLOSED" | "CHANNEL_ERROR";

/** Extra information with a status; `gap` follows a reconnect (events may be missed). */
export interface ChannelStatusInfo {
  gap?: Gap;
}

export type ChangeCallback = (payload: RealtimeChangePayload) => void;

interface Binding {
  filter: PostgresChangesFilter;
  callback: ChangeCallback;
  sub?: Subscription;
  acked: boolean;
}

export class RealtimeChannel {
  /** The channel name, e.g. `table:jobs.queue`. */
  readonly name: string;
  readonly #rt: RealtimeClient;
  #bindings: Binding[] = [];
  #statusCb?: (status: ChannelStatus, err?: FluxbaseError, info?: ChannelStatusInfo) => void;
  #active = false;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(name: string, rt: RealtimeClient) {
    this.name = name;
    this.#rt = rt;
  }

  /**
   * Adds a binding. Use an event name (`"INSERT"`, `"UPDATE"`, `"DELETE"`, `"*"`) for the
   * table of a `table:<schema>.<table>` channel, or `"postgres_changes"` with a filter.
   *
   * @example
   * ```ts
   * client.realtime.channel("table:jobs.queue")
   *   .on("UPDATE", (payload) => console.log(payload.new.progress))
   *   .subscribe();
   *
   * client.realtime.channel("jobs:running")
   *   .on("postgres_changes", { event: "UPDATE", schema: "jobs", table: "queue",
   *     filter: "status=eq.running" }, (payload) => console.log(payload.new.progress))
   *   .subscribe();
   * ```
   */
  on(event: ChangeEvent, callback: ChangeCallback): this;
  on(event: "postgres_changes", filter: PostgresChangesFilter, callback: ChangeCallback): this;
  on(
    event: ChangeEvent | "postgres_changes",
    a: ChangeCallback | PostgresChangesFilter,
    b?: ChangeCallback,
  ): this {
    const [schema, table] = this.#tableOfName();
    let binding: Binding;
    if (event === "postgres_changes") {
      if (typeof a !== "object" || typeof b !== "function") {
        throw new TypeError('on("postgres_changes") needs a filter object and a callback');
      }
      binding = {
        filter: { schema, table, ...a, event: (a.event ?? "*").toUpperCase() as ChangeEvent },
        callback: b,
        acked: false,
      };
    } else {
      if (typeof a !== "function") throw new TypeError(`on("${event}") needs a callback`);
      const ev = event.toUpperCase() as ChangeEvent;
      if (!["INSERT", "UPDATE", "DELETE", "*"].includes(ev)) {
        throw new RangeError(
          `Unknown event "${event}": use INSERT, UPDATE, DELETE, * or postgres_changes`,
        );
      }
      binding = { filter: { event: ev, schema, table }, callback: a, acked: false };
    }
    this.#bindings.push(binding);
    if (this.#active) this.#start(binding);
    return this;
  }

  /**
   * Starts receiving events. The callback hears `SUBSCRIBED` only once the server has
   * acknowledged every binding; again (with `info.gap`) after each reconnect and whenever the
   * server reports that events may have been missed; `CHANNEL_ERROR` with the reason when the
   * server refuses a binding, the token expires (code `token_expired`) or realtime is unavailable;
   * `TIMED_OUT` when no ack arrives in time; `CLOSED` after `unsubscribe()`.
   *
   * @example
   * ```ts
   * channel.subscribe((status, err, info) => {
   *   if (status === "SUBSCRIBED" && info?.gap) refetchJobs(); // events may have been missed
   *   if (status === "CHANNEL_ERROR") console.error(err?.message);
   * });
   * ```
   */
  subscribe(
    callback?: (status: ChannelStatus, err?: FluxbaseError, info?: ChannelStatusInfo) => void,
  ): this {
    this.#statusCb = callback;
    if (this.#active) return this;
    this.#active = true;
    if (this.#bindings.length === 0) {
      // No binding yet: subscribe to everything so the status still reflects the server.
      const [schema, table] = this.#tableOfName();
      this.#bindings.push({
        filter: { event: "*", schema, table },
        callback: () => {},
        acked: false,
      });
    }
    for (const b of this.#bindings) this.#start(b);
    this.#armAckTimer();
    return this;
  }

  /**
   * Stops the channel's bindings; the shared socket closes when nothing else uses it.
   *
   * @example
   * ```ts
   * await channel.unsubscribe();
   * ```
   */
  unsubscribe(): Promise<"ok"> {
    if (this.#active) {
      this.#active = false;
      clearTimeout(this.#ackTimer);
      for (const b of this.#bindings) {
        if (b.sub) this.#rt.remove(b.sub.ref);
        b.sub = undefined;
        b.acked = false;
      }
      this.#statusCb?.("CLOSED");
    }
    return Promise.resolve("ok");
  }

  #tableOfName(): [string, string] {
    const m = /^table:([^.]+)\.(.+)$/.exec(this.name);
    return m ? [m[1], m[2]] : ["jobs", "queue"];
  }

  #start(b: Binding) {
    if (!this.#rt.available) {
      queueMicrotask(() => this.#fail(unavailableError()));
      return;
    }
    const f = b.filter;
    const config: Record<string, unknown> = { event: f.event, schema: f.schema, table: f.table };
    if (f.filter) config.filter = f.filter;
    const sub: Subscription = {
      ref: this.#rt.newRef(),
      serverId: null,
      message: () => ({ type: "subscribe", channel: this.name, config }),
      onAck: (gap) => {
        b.acked = true;
        if (this.#active && this.#bindings.every((x) => x.acked)) {
          clearTimeout(this.#ackTimer);
          this.#statusCb?.("SUBSCRIBED", undefined, gap ? { gap } : undefined);
        }
      },
      onError: (err) => {
        b.sub = undefined;
        this.#fail(err);
      },
      onGap: (gap) => {
        // One report per channel, from its first binding.
        if (this.#active && b === this.#bindings[0]) {
          this.#statusCb?.("SUBSCRIBED", undefined, { gap });
        }
      },
      onSystemError: (err) => {
        if (this.#active && b === this.#bindings[0]) this.#statusCb?.("CHANNEL_ERROR", err);
      },
      onDisconnect: () => {
        b.acked = false;
      },
      onChange: (p) => deliver(b, p),
      matches: (p) =>
        p.schema === f.schema && p.table === f.table && (f.event === "*" || f.event === p.type),
    };
    b.sub = sub;
    b.acked = false;
    this.#rt.add(sub);
  }

  #armAckTimer() {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = setTimeout(() => {
      if (this.#active && !this.#bindings.every((b) => b.acked)) this.#statusCb?.("TIMED_OUT");
    }, this.#rt.ackTimeoutMs);
  }

  #fail(err: FluxbaseError) {
    clearTimeout(this.#ackTimer);
    this.#statusCb?.("CHANNEL_ERROR", err);
  }
}

function deliver(b: Binding, p: ServerChangePayload) {
  const ev = String(p.type).toUpperCase() as RealtimeChangePayload["eventType"];
  if (b.filter.event !== "*" && b.filter.event !== ev) return;
  b.callback({
    eventType: ev,
    schema: p.schema,
    table: p.table,
    commit_timestamp: p.commit_timestamp,
    new: (p.record ?? {}) as Record<string, unknown>,
    old: (p.old_record ?? {}) as Record<string, unknown>,
  });
}

function unavailableError(): FluxbaseError {
  return new FluxbaseError(
    "No WebSocket implementation: pass createClient(url, { WebSocket }) (on Node 20 use the `ws` package)",
    0,
    "realtime_unavailable",
  );
}

/**
 * The realtime hub: accepts WebSockets at /realtime, reads the change feed (listener.ts) and
 * sends each event to the subscriptions whose subscriber may see the row (rls.ts) and whose
 * filter matches (filters.ts). Protocol: protocol.ts.
 */
import { Presence } from "./presence.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/pool.ts";
import { coerceError } from "../errors.ts";
import { CLOSE_GOING_AWAY, CLOSE_POLICY, Connection, type TokenVerifier } from "./connection.ts";
import { ChangeListener, type ChangeRow, type LogRow } from "./listener.ts";
import { HEARTBEAT, systemMessage } from "./protocol.ts";
import { canSee, eventRow } from "./rls.ts";
import { handleFrame, type SessionDeps } from "./session.ts";
import { SubscriptionIndex } from "./subscriptions.ts";
import { REALTIME_TABLES, type RealtimeTable, tableKey } from "./tables.ts";

export type { TokenVerifier, VerifiedToken } from "./connection.ts";

export interface RealtimeHubOptions {
  config: Config;
  sql: Sql;
  databaseUrl: string;
  verifier: TokenVerifier;
  /** How often the feed is polled besides notifications (default 1 s). */
  pollIntervalMs?: number;
  maxSubscriptionsPerConnection?: number;
}

export interface RealtimeStats {
  connections: number;
  subscriptions: number;
  eventsSent: number;
  lastChangeId: number;
}

const TABLES = new Map<string, RealtimeTable>(
  REALTIME_TABLES.map((t) => [tableKey(t.schema, t.table), t]),
);

export class RealtimeHub {
  readonly #config: Config["realtime"];
  readonly #verifier: TokenVerifier;
  readonly #index = new SubscriptionIndex();
  readonly #connections = new Set<Connection>();
  readonly #perUser = new Map<string, number>();
  readonly #listener: ChangeListener;
  readonly #session: SessionDeps;
  readonly #presence: Presence;
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #started = false;
  #eventsSent = 0;

  constructor(opts: RealtimeHubOptions) {
    this.#config = opts.config.realtime;
    this.#verifier = opts.verifier;
    this.#presence = new Presence({
      sql: opts.sql,
      wanted: () => this.#index.hasTableSubscriptions(),
    });
    this.#session = {
      sql: opts.sql,
      verifier: opts.verifier,
      index: this.#index,
      maxSubscriptionsPerConnection: opts.maxSubscriptionsPerConnection ?? 100,
      presence: this.#presence,
    };
    this.#listener = new ChangeListener({
      sql: opts.sql,
      databaseUrl: opts.databaseUrl,
      pollIntervalMs: opts.pollIntervalMs,
      handlers: {
        onChanges: (rows) => this.#onChanges(rows),
        onLogs: (rows) => this.#onLogs(rows),
        onGap: (caughtUp) => this.#onGap(caughtUp),
        logJobIds: () => this.#index.logJobIds(),
      },
    });
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#listener.start();
    this.#presence.start();
    this.#heartbeat = setInterval(() => {
      for (const conn of this.#connections) conn.send(HEARTBEAT);
    }, this.#config.pingIntervalMs);
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    for (const conn of [...this.#connections]) {
      conn.disconnect(CLOSE_GOING_AWAY, "Server is shutting down");
    }
    await this.#presence.stop();
    await this.#listener.stop();
  }

  stats(): RealtimeStats {
    return {
      connections: this.#connections.size,
      subscriptions: this.#index.size,
      eventsSent: this.#eventsSent,
      lastChangeId: this.#listener.lastChangeId,
    };
  }

  /** Reads the feed now; for callers that just wrote and want no poll delay (tests). */
  poke(): Promise<void> {
    return this.#listener.poke();
  }

  async handleUpgrade(req: Request): Promise<Response> {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return json(426, "Expected a WebSocket upgrade", "upgrade_required");
    }
    if (!this.#started) return json(503, "Realtime is not running", "unavailable");
    const token = tokenOf(req);
    if (!token) return json(401, "Missing access token", "unauthorized");
    let auth;
    try {
      auth = await this.#verifier.verify(token);
    } catch (e) {
      return json(401, `Invalid access token: ${coerceError(e).message}`, "unauthorized");
    }
    // Deno sends a ping after this long without traffic and closes the socket when no pong
    // comes back, which is how dead peers are found. It takes whole seconds.
    const idleTimeout = Math.max(1, Math.round(this.#config.pingIntervalMs / 1000));
    const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout });
    const conn = new Connection(
      crypto.randomUUID(),
      socket,
      auth,
      this.#config.maxBufferedBytes,
      (c) => this.#onExpired(c),
      (c) => this.#detach(c),
    );
    const userKey = auth.userId;
    const count = userKey ? this.#perUser.get(userKey) ?? 0 : 0;
    if (userKey && count >= this.#config.maxConnectionsPerUser) {
      // Refused after the upgrade, with a reason: browsers cannot read an HTTP error status.
      socket.onopen = () => {
        conn.disconnect(
          CLOSE_POLICY,
          `Too many connections for this user (limit ${this.#config.maxConnectionsPerUser})`,
        );
      };
      return response;
    }
    if (userKey) this.#perUser.set(userKey, count + 1);
    this.#connections.add(conn);
    socket.onmessage = (e) => {
      conn.queue = conn.queue.then(() => handleFrame(this.#session, conn, e.data));
    };
    socket.onclose = () => conn.closedByPeer();
    socket.onerror = () => conn.closedByPeer();
    return response;
  }

  #detach(conn: Connection): void {
    if (!this.#connections.delete(conn)) return;
    for (const sub of conn.subscriptions.values()) this.#index.remove(sub);
    conn.subscriptions.clear();
    const key = conn.auth.userId;
    if (key) {
      const n = (this.#perUser.get(key) ?? 1) - 1;
      if (n <= 0) this.#perUser.delete(key);
      else this.#perUser.set(key, n);
    }
  }

  #onExpired(conn: Connection): void {
    conn.send(systemMessage({
      event: "token_expired",
      message: "The access token expired; send a new one with access_token to receive events",
    }));
  }

  #onGap(caughtUp: boolean): void {
    const text = systemMessage({
      event: "events_may_be_missed",
      caught_up: caughtUp,
      message: "The server's database connection was interrupted; refetch to be sure of the " +
        "current state",
    });
    for (const conn of this.#connections) conn.send(text);
  }

  #onChanges(rows: ChangeRow[]): void {
    for (const row of rows) {
      const key = tableKey(row.schema, row.table);
      const table = TABLES.get(key);
      if (!table) continue;
      const record = row.recordJson === null ? null : JSON.parse(row.recordJson);
      const old = row.oldRecordJson === null ? null : JSON.parse(row.oldRecordJson);
      const subject = eventRow(row.type, record, old);
      if (!subject) continue;
      let body: string | null = null;
      for (const sub of this.#index.candidates(key, subject[table.ownerColumn])) {
        if (sub.event !== "*" && sub.event !== row.type) continue;
        const conn = sub.conn;
        // The index already filed the subscription by visibility; checking again keeps a
        // mistake there from ever sending a row to the wrong user.
        if (!conn.receiving || !canSee(conn.auth, table, subject)) continue;
        if (sub.filter && !sub.filter.test(subject)) continue;
        body ??= `{"type":"${row.type}","schema":${JSON.stringify(row.schema)},"table":${
          JSON.stringify(row.table)
        },"commit_timestamp":${JSON.stringify(row.commitTimestamp)},"record":${
          row.recordJson ?? "null"
        },"old_record":${row.oldRecordJson ?? "null"}`;
        if (conn.send(sub.prefix + body + sub.suffix)) this.#eventsSent++;
      }
    }
  }

  #onLogs(rows: LogRow[]): void {
    for (const row of rows) {
      let body: string | null = null;
      for (const sub of this.#index.logSubscribers(row.jobId)) {
        if (!sub.conn.receiving) continue;
        body ??= JSON.stringify({
          execution_id: row.jobId,
          line_number: row.lineNumber,
          level: row.level,
          message: row.message,
          timestamp: row.timestamp,
        }).slice(0, -1);
        if (sub.conn.send(sub.prefix + body + sub.suffix)) this.#eventsSent++;
      }
    }
  }
}

/** `?token=`, `?apikey=` (browsers cannot set headers on a WebSocket) or a Bearer header. */
function tokenOf(req: Request): string | null {
  const url = new URL(req.url);
  const fromQuery = url.searchParams.get("token") ?? url.searchParams.get("apikey");
  if (fromQuery) return fromQuery;
  const header = req.headers.get("authorization");
  const m = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
  return m ? m[1].trim() : req.headers.get("apikey");
}

function json(status: number, error: string, code: string): Response {
  return Response.json({ error, code }, { status });
}

/**
 * Handling of client messages on one connection: subscribe, unsubscribe, heartbeat,
 * access_token, subscribe_logs. Every failure is answered with an `error` message; nothing
 * here closes the socket.
 */
import type { Sql } from "../db/pool.ts";
import { coerceError } from "../errors.ts";
import type { Connection, TokenVerifier } from "./connection.ts";
import { FilterError, parseFilter } from "./filters.ts";
import {
  ackMessage,
  type ClientMessage,
  errorMessage,
  type EventFilter,
  HEARTBEAT,
  parseClientMessage,
  ProtocolError,
  refOf,
  type SubscribeConfig,
} from "./protocol.ts";
import { canSee } from "./rls.ts";
import type { LogSubscription, SubscriptionIndex, TableSubscription } from "./subscriptions.ts";
import { findTable, JOBS_QUEUE, type RealtimeTable, tableNames } from "./tables.ts";

export interface SessionDeps {
  sql: Sql;
  verifier: TokenVerifier;
  index: SubscriptionIndex;
  maxSubscriptionsPerConnection: number;
  /** Turns change capture on (presence.ts) before a table subscription is acknowledged. */
  presence: { ensure(): Promise<void> };
}

const EVENTS = new Set(["INSERT", "UPDATE", "DELETE", "*"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Handles one text frame; replies go to `conn`. Never throws. */
export async function handleFrame(deps: SessionDeps, conn: Connection, data: unknown) {
  const ref = refOf(data);
  const reply: Reply = {
    ack: (payload) => conn.send(ackMessage(payload, ref)),
  };
  try {
    const msg = parseClientMessage(data);
    await dispatch(deps, conn, msg, reply);
  } catch (e) {
    if (e instanceof ProtocolError) conn.send(errorMessage(e.message, e.code, ref));
    else if (e instanceof FilterError) conn.send(errorMessage(e.message, "invalid_filter", ref));
    else {
      console.error("realtime: message handling failed:", coerceError(e).message);
      conn.send(errorMessage("Internal error while handling the message", "internal_error", ref));
    }
  }
}

interface Reply {
  ack(payload: Record<string, unknown>): void;
}

async function dispatch(deps: SessionDeps, conn: Connection, msg: ClientMessage, reply: Reply) {
  switch (msg.type) {
    case "heartbeat":
      conn.send(HEARTBEAT);
      return;
    case "subscribe":
      return await subscribe(deps, conn, reply, msg.channel, msg.config);
    case "unsubscribe":
      return unsubscribe(deps, conn, reply, msg.subscriptionId);
    case "access_token":
      return await replaceToken(deps, conn, reply, msg.token);
    case "subscribe_logs":
      return await subscribeLogs(deps, conn, reply, msg.channel, msg.executionId);
  }
}

function checkRoom(deps: SessionDeps, conn: Connection) {
  if (conn.subscriptions.size >= deps.maxSubscriptionsPerConnection) {
    throw new ProtocolError(
      `Too many subscriptions on one connection (limit ${deps.maxSubscriptionsPerConnection})`,
      "too_many_subscriptions",
    );
  }
}

/** `table:<schema>.<table>` (or `table:<table>`) names a table; config fields override it. */
function resolveTable(channel: string, config: SubscribeConfig | null): RealtimeTable {
  let schema = config?.schema ?? null;
  let table = config?.table ?? null;
  if (table === null) {
    const m = /^table:(?:([^.]+)\.)?(.+)$/.exec(channel);
    if (!m) {
      throw new ProtocolError(
        `Channel "${channel}" names no table: use "table:<schema>.<table>" or config.table`,
        "invalid_channel",
      );
    }
    schema = schema ?? m[1] ?? null;
    table = m[2];
  }
  const found = findTable(schema, table);
  if (!found) {
    const name = schema ? `${schema}.${table}` : table;
    throw new ProtocolError(
      `Table "${name}" is not available for realtime; available: ${tableNames()}`,
      "unknown_table",
    );
  }
  return found;
}

async function subscribe(
  deps: SessionDeps,
  conn: Connection,
  reply: Reply,
  channel: string,
  config: SubscribeConfig | null,
) {
  checkRoom(deps, conn);
  const table = resolveTable(channel, config);
  const event = (config?.event ?? "*").toUpperCase();
  if (!EVENTS.has(event)) {
    throw new ProtocolError(
      `Unknown event "${config?.event}"; expected INSERT, UPDATE, DELETE or *`,
      "invalid_event",
    );
  }
  const filter = config?.filter ? parseFilter(config.filter, table) : null;
  // Events are captured only while some hub has subscribers: switch capture on first, so that
  // everything committed after the ack is delivered.
  await deps.presence.ensure();
  const id = crypto.randomUUID();
  const sub: TableSubscription = {
    kind: "table",
    id,
    conn,
    channel,
    table,
    event: event as EventFilter,
    filter,
    prefix: `{"type":"postgres_changes","channel":${JSON.stringify(channel)},"payload":`,
    suffix: `,"subscription_id":"${id}"}}`,
  };
  conn.subscriptions.set(id, sub);
  deps.index.add(sub);
  const ack: Record<string, unknown> = {
    subscribed: true,
    subscription_id: id,
    channel,
    schema: table.schema,
    table: table.table,
    event,
  };
  if (filter) ack.filter = filter.source;
  reply.ack(ack);
}

function unsubscribe(deps: SessionDeps, conn: Connection, reply: Reply, id: string | null) {
  if (id === null) {
    // No id: drop every subscription of this socket (as the reference server does).
    for (const sub of conn.subscriptions.values()) deps.index.remove(sub);
    conn.subscriptions.clear();
    reply.ack({ unsubscribed: true });
    return;
  }
  const sub = conn.subscriptions.get(id);
  if (!sub) {
    throw new ProtocolError(`No subscription "${id}" on this connection`, "unknown_subscription");
  }
  deps.index.remove(sub);
  conn.subscriptions.delete(id);
  reply.ack({ unsubscribed: true, subscription_id: id });
}

async function replaceToken(deps: SessionDeps, conn: Connection, reply: Reply, token: string) {
  let next;
  try {
    next = await deps.verifier.verify(token);
  } catch (e) {
    throw new ProtocolError(`Invalid access token: ${coerceError(e).message}`, "invalid_token");
  }
  // Connection limits and log-subscription checks were made for this user; a socket does not
  // change hands.
  if (next.userId !== conn.auth.userId) {
    throw new ProtocolError(
      "The new access token is for a different user; open a new connection instead",
      "token_user_mismatch",
    );
  }
  if (conn.closed) return;
  for (const sub of conn.subscriptions.values()) deps.index.remove(sub);
  conn.setAuth(next);
  // Log subscriptions were granted for the old role; drop those the new one may not see.
  for (const sub of [...conn.subscriptions.values()]) {
    if (sub.kind === "logs" && !(await mayReadJob(deps, conn, sub.jobId))) {
      conn.subscriptions.delete(sub.id);
    }
  }
  for (const sub of conn.subscriptions.values()) deps.index.add(sub);
  reply.ack({ type: "access_token", updated: true, expires_at: next.expiresAt });
}

async function mayReadJob(deps: SessionDeps, conn: Connection, jobId: string): Promise<boolean> {
  const rows = await deps.sql<{ created_by: string | null }[]>`
    select created_by from jobs.queue where id = ${jobId}::uuid`;
  return rows.length === 1 && canSee(conn.auth, JOBS_QUEUE, rows[0]);
}

async function subscribeLogs(
  deps: SessionDeps,
  conn: Connection,
  reply: Reply,
  channel: string | null,
  jobId: string,
) {
  checkRoom(deps, conn);
  // The same answer for "no such job" and "not yours", so ids of others' jobs do not leak.
  const notFound = () => new ProtocolError(`Job "${jobId}" not found`, "not_found");
  if (!UUID.test(jobId)) throw notFound();
  if (!(await mayReadJob(deps, conn, jobId))) throw notFound();
  if (conn.closed) return;
  const id = crypto.randomUUID();
  const name = channel ?? `logs:${jobId}`;
  const sub: LogSubscription = {
    kind: "logs",
    id,
    conn,
    channel: name,
    jobId: jobId.toLowerCase(),
    prefix: `{"type":"execution_log","channel":${JSON.stringify(name)},"payload":`,
    suffix: `,"subscription_id":"${id}"}}`,
  };
  conn.subscriptions.set(id, sub);
  deps.index.add(sub);
  reply.ack({ subscribed: true, subscription_id: id, execution_id: sub.jobId });
}

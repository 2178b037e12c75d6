/**
 * The realtime WebSocket protocol: the messages a client sends, the messages the server
 * sends, and parsing of client input. Every bad message gets an `error` reply; the socket is
 * never dropped for a protocol mistake.
 *
 * Client -> server
 *   {"type":"subscribe","channel":"table:jobs.queue"}                  all events of a table
 *   {"type":"subscribe","channel":"jobs:running","config":{"event":"UPDATE","schema":"jobs",
 *     "table":"queue","filter":"status=eq.running"}}                   events matching a filter
 *   {"type":"unsubscribe","subscription_id":"..."}
 *   {"type":"heartbeat"}                                               answered by a heartbeat
 *   {"type":"access_token","token":"<jwt>"}                            replace the token
 *   {"type":"subscribe_logs","config":{"execution_id":"<job id>"}}     live log lines of a job
 *   Any client message may carry "ref" (string or number); its ack or error echoes it.
 *
 * Server -> client
 *   {"type":"ack","payload":{"subscribed":true,"subscription_id","channel","schema","table",
 *     "event","filter"?}}                                              after subscribe
 *   {"type":"ack","payload":{"subscribed":true,"subscription_id","execution_id"}}
 *   {"type":"ack","payload":{"unsubscribed":true,"subscription_id"}}
 *   {"type":"ack","payload":{"type":"access_token","updated":true,"expires_at"}}
 *   {"type":"heartbeat"}                                   every ping interval and on request
 *   {"type":"error","error":"<message>","code":"<snake_case>"}
 *   {"type":"postgres_changes","channel","payload":{"type":"INSERT|UPDATE|DELETE","schema",
 *     "table","commit_timestamp","record","old_record","subscription_id"}}
 *   {"type":"execution_log","channel","payload":{"execution_id","line_number","level",
 *     "message","timestamp","subscription_id"}}
 *   {"type":"system","payload":SystemPayload}              see SystemEvent below
 */

export type ChangeType = "INSERT" | "UPDATE" | "DELETE";
export type EventFilter = ChangeType | "*";

/** `system` messages: things that happened to the feed rather than to a row. */
export type SystemEvent =
  /**
   * The hub's database listener reconnected (or fell behind and skipped rows). Events that
   * happened meanwhile may be missing even when `caught_up` is true for the rows still
   * stored: refetch the jobs you show. `caught_up` false means rows were certainly lost.
   */
  | "events_may_be_missed"
  /** The access token expired: no events are sent until an `access_token` message. */
  | "token_expired"
  /** The server is closing this socket (`reason` says why), e.g. slow consumer, shutdown. */
  | "disconnecting";

export interface SystemPayload {
  event: SystemEvent;
  message: string;
  caught_up?: boolean;
  reason?: string;
}

export interface SubscribeConfig {
  event?: string;
  schema?: string;
  table?: string;
  filter?: string;
}

export type Ref = string | number | null;

export type ClientMessage =
  | { type: "subscribe"; channel: string; config: SubscribeConfig | null }
  | { type: "unsubscribe"; subscriptionId: string | null }
  | { type: "heartbeat" }
  | { type: "access_token"; token: string }
  | { type: "subscribe_logs"; channel: string | null; executionId: string };

export class ProtocolError extends Error {
  constructor(message: string, public readonly code = "invalid_message") {
    super(message);
    this.name = "ProtocolError";
  }
}

/** The client's correlation id of a raw message, if it has a usable one. */
export function refOf(data: unknown): Ref {
  if (typeof data !== "string" || data.length > MAX_MESSAGE_CHARS) return null;
  try {
    const ref = JSON.parse(data)?.ref;
    return typeof ref === "string" || typeof ref === "number" ? ref : null;
  } catch {
    return null;
  }
}

const MAX_MESSAGE_CHARS = 64 * 1024;

function str(obj: Record<string, unknown>, key: string): string | null {
  const v = obj[key];
  return typeof v === "string" && v !== "" ? v : null;
}

/** Parses one text frame from a client; throws ProtocolError with a message for the client. */
export function parseClientMessage(data: unknown): ClientMessage {
  if (typeof data !== "string") throw new ProtocolError("Messages must be JSON text frames");
  if (data.length > MAX_MESSAGE_CHARS) {
    throw new ProtocolError(`Message is larger than ${MAX_MESSAGE_CHARS} characters`);
  }
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    throw new ProtocolError("Message is not valid JSON");
  }
  if (!msg || typeof msg !== "object" || Array.isArray(msg)) {
    throw new ProtocolError('Message must be a JSON object with a "type"');
  }
  const m = msg as Record<string, unknown>;
  const config = m.config && typeof m.config === "object" && !Array.isArray(m.config)
    ? m.config as Record<string, unknown>
    : null;
  if (m.config !== undefined && m.config !== null && config === null) {
    throw new ProtocolError('"config" must be an object');
  }
  switch (m.type) {
    case "subscribe": {
      const channel = str(m, "channel");
      if (!channel) throw new ProtocolError('"channel" is required for subscribe');
      // The reference server also accepted the config fields at the top level.
      const source = config ?? m;
      const picked: SubscribeConfig = {};
      for (const key of ["event", "schema", "table", "filter"] as const) {
        const v = source[key];
        if (v === undefined || v === null || v === "") continue;
        if (typeof v !== "string") throw new ProtocolError(`"config.${key}" must be a string`);
        picked[key] = v;
      }
      return { type: "subscribe", channel, config: Object.keys(picked).length ? picked : null };
    }
    case "unsubscribe":
      return { type: "unsubscribe", subscriptionId: str(m, "subscription_id") };
    case "heartbeat":
      return { type: "heartbeat" };
    case "access_token": {
      const token = str(m, "token") ?? str(m, "access_token");
      if (!token) throw new ProtocolError('"token" is required for access_token');
      return { type: "access_token", token };
    }
    case "subscribe_logs": {
      const payload = m.payload && typeof m.payload === "object"
        ? m.payload as Record<string, unknown>
        : {};
      const executionId = (config && str(config, "execution_id")) ?? str(payload, "execution_id");
      if (!executionId) {
        throw new ProtocolError('"config.execution_id" is required for subscribe_logs');
      }
      return { type: "subscribe_logs", channel: str(m, "channel"), executionId };
    }
    default:
      throw new ProtocolError(
        `Unknown message type ${JSON.stringify(m.type ?? null)}; expected subscribe, ` +
          "unsubscribe, heartbeat, access_token or subscribe_logs",
        "unknown_message_type",
      );
  }
}

export function errorMessage(error: string, code: string, ref: Ref = null): string {
  return JSON.stringify(
    ref === null ? { type: "error", error, code } : { type: "error", error, code, ref },
  );
}

export function systemMessage(payload: SystemPayload): string {
  return JSON.stringify({ type: "system", payload });
}

export function ackMessage(payload: Record<string, unknown>, ref: Ref = null): string {
  return JSON.stringify(ref === null ? { type: "ack", payload } : { type: "ack", ref, payload });
}

export const HEARTBEAT = JSON.stringify({ type: "heartbeat" });

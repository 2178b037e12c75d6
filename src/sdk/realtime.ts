/**
 * `client.realtime`: one WebSocket per client, opened on first use, shared by every channel
 * and log stream. It reconnects with exponential backoff, subscribes again, and tells each
 * channel how long it was away (events in that gap may be missed; refetch if they matter).
 */
import { RealtimeChannel } from "./channel.ts";
import { FluxbaseError, type JobLogLine } from "./types.ts";

/** The subset of the WebSocket API the SDK uses (browsers, Deno, Node 22+, and npm `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => unknown) | null;
  onmessage: ((ev: { data: unknown }) => unknown) | null;
  onclose: ((ev: { code?: number; reason?: string }) => unknown) | null;
  onerror: ((ev: unknown) => unknown) | null;
}

/** A WebSocket constructor, e.g. `globalThis.WebSocket` or `(await import("ws")).WebSocket`. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Tuning of the realtime connection; the defaults suit most programs. */
export interface RealtimeOptions {
  /** First reconnect delay (default 500 ms); doubles per failed attempt. */
  reconnectDelayMs?: number;
  /** Longest reconnect delay (default 10 000 ms). */
  maxReconnectDelayMs?: number;
  /** How often the client sends a heartbeat (default 25 000 ms). */
  heartbeatIntervalMs?: number;
  /** A socket silent for this long is treated as dead (default 2.5 heartbeats). */
  deadAfterMs?: number;
  /** How long to wait for the server's ack of a subscription (default 10 000 ms). */
  ackTimeoutMs?: number;
}

/** What the server sends about a change of a row. */
export interface ServerChangePayload {
  type: string;
  schema: string;
  table: string;
  commit_timestamp: string;
  record?: Record<string, unknown> | null;
  old_record?: Record<string, unknown> | null;
  subscription_id?: string | number;
}

/** A live subscription as the connection sees it (channel bindings and log streams). */
export interface Subscription {
  readonly ref: string;
  /** The subscribe message, without `ref`. */
  message(): Record<string, unknown>;
  serverId: string | null;
  /** `gap` is set when this ack follows a reconnect: the span in which events may be lost. */
  onAck(gap: Gap | null): void;
  onError(err: FluxbaseError): void;
  /** The server says events may have been missed although this socket stayed open. */
  onGap?(gap: Gap): void;
  /** The server stopped sending events for a reason other than this subscription. */
  onSystemError?(err: FluxbaseError): void;
  /** The socket dropped; an ack will follow the automatic resubscribe. */
  onDisconnect?(): void;
  onChange?(payload: ServerChangePayload): void;
  onLog?(line: JobLogLine): void;
  /** For log streams: the job id, to route `execution_log` messages without a server id. */
  logJobId?: string;
  /** For change bindings: matches an event that arrived without a subscription id. */
  matches?(payload: ServerChangePayload): boolean;
}

/** The span during which the socket was down; events in it may have been missed. */
export interface Gap {
  from: string;
  to: string;
  /** Why, when the server reported it (its own listener reconnected). */
  reason?: string;
}

/** Connection states reported to `onConnectionChange`. */
export type ConnectionState = "connecting" | "open" | "closed";

const OPEN = 1;

export interface RealtimeDeps {
  url: string;
  token: () => string | undefined;
  WebSocket?: WebSocketConstructor;
  options?: RealtimeOptions;
  /** Fetches a job's log lines after `afterLine` over REST, to fill a reconnect gap. */
  fetchLogs: (jobId: string, afterLine: number) => Promise<JobLogLine[] | null>;
}

export class RealtimeClient {
  readonly #deps: RealtimeDeps;
  readonly #opts: Required<RealtimeOptions>;
  #socket: WebSocketLike | null = null;
  #subs = new Map<string, Subscription>();
  /** Refs sent on the current socket and not yet acked, in send order. */
  #pending: string[] = [];
  #byServerId = new Map<string, string>();
  #nextRef = 1;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #lastMessageAt = 0;
  #disconnectedAt: Date | null = null;
  #everOpened = false;
  #listeners = new Set<(s: ConnectionState, info?: { error?: string }) => void>();

  constructor(deps: RealtimeDeps) {
    this.#deps = deps;
    const o = deps.options ?? {};
    const hb = o.heartbeatIntervalMs ?? 25_000;
    this.#opts = {
      reconnectDelayMs: o.reconnectDelayMs ?? 500,
      maxReconnectDelayMs: o.maxReconnectDelayMs ?? 10_000,
      heartbeatIntervalMs: hb,
      deadAfterMs: o.deadAfterMs ?? hb * 2.5,
      ackTimeoutMs: o.ackTimeoutMs ?? 10_000,
    };
  }

  /** How long channels wait for an ack before reporting `TIMED_OUT`. */
  get ackTimeoutMs(): number {
    return this.#opts.ackTimeoutMs;
  }

  /** True when a WebSocket implementation is available to this client. */
  get available(): boolean {
    return this.#ctor() !== undefined;
  }

  /** True while the shared socket is open. */
  get connected(): boolean {
    return this.#socket?.readyState === OPEN;
  }

  /**
   * Creates a channel; add bindings with `.on()` and start it with `.subscribe()`.
   *
   * @example
   * ```ts
   * const channel = client.realtime.channel("table:jobs.queue");
   * channel.on("UPDATE", (payload) => console.log(payload.new.status)).subscribe();
   * ```
   */
  channel(name: string): RealtimeChannel {
    return new RealtimeChannel(name, this);
  }

  /**
   * Streams the log lines of one job as the server captures them. After a reconnect the
   * lines written meanwhile are fetched over REST, so none are skipped or repeated.
   * Returns a handle whose `unsubscribe()` stops the stream.
   *
   * @example
   * ```ts
   * const logs = client.realtime.jobLogs(job.id, (line) => console.log(line.level, line.message));
   * // later
   * logs.unsubscribe();
   * ```
   */
  jobLogs(
    jobId: string,
    callback: (line: JobLogLine) => void,
    opts: { afterLine?: number; onError?: (err: FluxbaseError) => void } = {},
  ): { unsubscribe(): void; ready: Promise<boolean> } {
    let lastLine = opts.afterLine ?? 0;
    let resolveReady!: (ok: boolean) => void;
    const ready = new Promise<boolean>((r) => (resolveReady = r));
    const deliver = (line: JobLogLine) => {
      if (typeof line.line_number === "number") {
        if (line.line_number <= lastLine) return;
        lastLine = line.line_number;
      }
      callback(line);
    };
    const sub: Subscription = {
      ref: this.newRef(),
      serverId: null,
      logJobId: jobId,
      message: () => ({ type: "subscribe_logs", config: { execution_id: jobId } }),
      onAck: (gap) => {
        resolveReady(true);
        if (gap) {
          this.#deps.fetchLogs(jobId, lastLine).then((lines) => lines?.forEach(deliver));
        }
      },
      onError: (err) => {
        resolveReady(false);
        opts.onError?.(err);
      },
      onLog: deliver,
      onGap: () => {
        this.#deps.fetchLogs(jobId, lastLine).then((lines) => lines?.forEach(deliver));
      },
      onSystemError: (err) => opts.onError?.(err),
    };
    if (!this.available) {
      queueMicrotask(() => sub.onError(unavailable()));
    } else {
      this.add(sub);
    }
    return { ready, unsubscribe: () => this.remove(sub.ref) };
  }

  /**
   * Sends a new token on the open socket (also used for the next reconnect).
   * `client.auth.setSession()` calls this for you.
   *
   * @example
   * ```ts
   * client.realtime.setAuth(newToken);
   * ```
   */
  setAuth(token: string): void {
    if (this.connected) this.#send({ type: "access_token", token, ref: this.newRef() });
  }

  /**
   * Observes the shared socket: `connecting`, `open`, `closed`. Returns an unsubscribe function.
   *
   * @example
   * ```ts
   * const off = client.realtime.onConnectionChange((state) => console.log("socket", state));
   * ```
   */
  onConnectionChange(cb: (state: ConnectionState, info?: { error?: string }) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /**
   * Closes the socket and drops every channel and log stream.
   *
   * @example
   * ```ts
   * client.realtime.disconnect();
   * ```
   */
  disconnect(): void {
    this.#subs.clear();
    this.#closeSocket();
  }

  /** @internal */
  newRef(): string {
    return String(this.#nextRef++);
  }

  /** @internal Registers a subscription and sends it (connecting first if needed). */
  add(sub: Subscription): void {
    this.#subs.set(sub.ref, sub);
    if (this.connected) this.#sendSub(sub);
    else this.#connect();
  }

  /** @internal Drops a subscription; closes the socket when none is left. */
  remove(ref: string): void {
    const sub = this.#subs.get(ref);
    if (!sub) return;
    this.#subs.delete(ref);
    this.#pending = this.#pending.filter((r) => r !== ref);
    if (sub.serverId !== null) {
      this.#byServerId.delete(sub.serverId);
      if (this.connected) {
        this.#send({ type: "unsubscribe", subscription_id: sub.serverId, ref: this.newRef() });
      }
    }
    if (this.#subs.size === 0) this.#closeSocket();
  }

  #ctor(): WebSocketConstructor | undefined {
    return this.#deps.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  }

  #emit(state: ConnectionState, info?: { error?: string }) {
    for (const l of this.#listeners) l(state, info);
  }

  #connect() {
    if (this.#socket || this.#reconnectTimer !== undefined) return;
    const Ctor = this.#ctor();
    if (!Ctor) {
      for (const s of this.#subs.values()) s.onError(unavailable());
      this.#subs.clear();
      return;
    }
    const u = new URL(this.#deps.url.replace(/\/+$/, "") + "/realtime");
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    const token = this.#deps.token();
    if (token) u.searchParams.set("token", token);
    let ws: WebSocketLike;
    try {
      ws = new Ctor(u.toString());
    } catch (err) {
      this.#scheduleReconnect(err instanceof Error ? err.message : String(err));
      return;
    }
    this.#socket = ws;
    this.#emit("connecting");
    let lastError: string | undefined;
    ws.onopen = () => {
      if (this.#socket !== ws) return;
      const reconnected = this.#everOpened;
      this.#everOpened = true;
      this.#attempt = 0;
      this.#lastMessageAt = Date.now();
      this.#emit("open");
      this.#startHeartbeat();
      for (const s of this.#subs.values()) this.#sendSub(s, reconnected);
    };
    ws.onmessage = (ev) => {
      if (this.#socket !== ws) return;
      this.#lastMessageAt = Date.now();
      this.#onMessage(ev.data);
    };
    ws.onerror = (ev) => {
      const m = (ev as { message?: string; error?: { message?: string } })?.message ??
        (ev as { error?: { message?: string } })?.error?.message;
      lastError = m ?? "WebSocket error";
    };
    ws.onclose = (ev) => {
      if (this.#socket !== ws) return;
      this.#socket = null;
      this.#stopHeartbeat();
      this.#pending = [];
      this.#byServerId.clear();
      for (const s of this.#subs.values()) {
        s.serverId = null;
        s.onDisconnect?.();
      }
      this.#disconnectedAt ??= new Date();
      const reason = ev?.reason || lastError || `closed with code ${ev?.code ?? "unknown"}`;
      this.#emit("closed", { error: reason });
      if (this.#subs.size > 0) this.#scheduleReconnect(reason);
    };
  }

  #scheduleReconnect(_reason: string) {
    if (this.#reconnectTimer !== undefined) return;
    const base = Math.min(
      this.#opts.maxReconnectDelayMs,
      this.#opts.reconnectDelayMs * 2 ** this.#attempt,
    );
    this.#attempt++;
    // Jitter spreads the reconnects of many clients after a server restart.
    const delay = base * (0.75 + Math.random() * 0.5);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#subs.size > 0) this.#connect();
    }, delay);
  }

  #closeSocket() {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#stopHeartbeat();
    const ws = this.#socket;
    this.#socket = null;
    this.#pending = [];
    this.#byServerId.clear();
    this.#everOpened = false;
    this.#disconnectedAt = null;
    this.#attempt = 0;
    if (ws) {
      try {
        ws.close(1000, "client closed");
      } catch { /* already closing */ }
      this.#emit("closed");
    }
  }

  #startHeartbeat() {
    this.#stopHeartbeat();
    this.#heartbeatTimer = setInterval(() => {
      const ws = this.#socket;
      if (!ws) return;
      if (Date.now() - this.#lastMessageAt > this.#opts.deadAfterMs) {
        // Silent socket: close it ourselves so the reconnect logic runs.
        try {
          ws.close(4000, "heartbeat timeout");
        } catch { /* ignore */ }
        ws.onclose?.({ code: 4000, reason: "heartbeat timeout" });
        return;
      }
      this.#send({ type: "heartbeat" });
    }, this.#opts.heartbeatIntervalMs);
    // Do not keep Deno or Node alive just for heartbeats.
    const t = this.#heartbeatTimer as unknown as { unref?: () => void };
    if (typeof t?.unref === "function") t.unref();
    else {
      const d = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;
      d?.unrefTimer?.(this.#heartbeatTimer as unknown as number);
    }
  }

  #stopHeartbeat() {
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  #send(msg: Record<string, unknown>) {
    try {
      this.#socket?.send(JSON.stringify(msg));
    } catch { /* the close handler reconnects */ }
  }

  #sendSub(sub: Subscription, reconnected = false) {
    (sub as { reconnecting?: boolean }).reconnecting = reconnected;
    this.#pending.push(sub.ref);
    this.#send({ ...sub.message(), ref: sub.ref });
  }

  #onMessage(raw: unknown) {
    const text = typeof raw === "string" ? raw : new TextDecoder().decode(raw as Uint8Array);
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    const payload = (msg.payload ?? {}) as Record<string, unknown>;
    switch (msg.type) {
      case "ack": {
        // Acks of unsubscribe and access_token carry no `subscribed`; they answer nothing pending.
        if (payload.subscribed === false || payload.unsubscribed === true) return;
        if (payload.type === "access_token") return;
        const sub = this.#takePending(msg.ref ?? payload.ref);
        if (!sub) return;
        const sid = payload.subscription_id ?? msg.subscription_id;
        if (sid !== undefined && sid !== null) {
          sub.serverId = String(sid);
          this.#byServerId.set(sub.serverId, sub.ref);
        }
        const reconnected = (sub as { reconnecting?: boolean }).reconnecting === true;
        const from = this.#disconnectedAt;
        sub.onAck(
          reconnected
            ? { from: (from ?? new Date()).toISOString(), to: new Date().toISOString() }
            : null,
        );
        if (this.#pending.length === 0) this.#disconnectedAt = null;
        return;
      }
      case "error": {
        const text = typeof msg.error === "string"
          ? msg.error
          : typeof payload.error === "string"
          ? payload.error
          : typeof msg.message === "string"
          ? msg.message
          : "Realtime error";
        const err = new FluxbaseError(
          text,
          0,
          typeof msg.code === "string" ? msg.code : "realtime_error",
        );
        const sub = this.#takePending(msg.ref ?? payload.ref);
        if (sub) {
          this.#subs.delete(sub.ref);
          sub.onError(err);
        } else {
          this.#emit(this.connected ? "open" : "closed", { error: text });
        }
        return;
      }
      case "system": {
        // The server's own feed broke (its database listener reconnected) or our token
        // expired: tell every subscription, as after a reconnect of our socket.
        const event = String(payload.event ?? "");
        const message = typeof payload.message === "string" ? payload.message : event;
        if (event === "events_may_be_missed") {
          const now = new Date().toISOString();
          for (const s of this.#subs.values()) s.onGap?.({ from: now, to: now, reason: message });
        } else if (event === "token_expired") {
          const err = new FluxbaseError(message, 401, "token_expired");
          for (const s of this.#subs.values()) s.onSystemError?.(err);
          this.#emit("open", { error: message });
        }
        return;
      }
      case "postgres_changes": {
        const p = payload as unknown as ServerChangePayload;
        const ref = p.subscription_id !== undefined
          ? this.#byServerId.get(String(p.subscription_id))
          : undefined;
        if (ref !== undefined) {
          this.#subs.get(ref)?.onChange?.(p);
          return;
        }
        if (p.subscription_id !== undefined) return;
        for (const s of this.#subs.values()) if (s.matches?.(p)) s.onChange?.(p);
        return;
      }
      case "execution_log": {
        const jobId = String(payload.execution_id ?? payload.job_id ?? "");
        for (const s of this.#subs.values()) {
          if (s.logJobId === jobId) s.onLog?.(payload as unknown as JobLogLine);
        }
        return;
      }
      default:
        return;
    }
  }

  /** The pending subscription an ack or error answers: by `ref` if echoed, else the oldest. */
  #takePending(ref: unknown): Subscription | undefined {
    let key: string | undefined;
    if (ref !== undefined && ref !== null) {
      // An echoed ref that is not pending answers another message (e.g. access_token).
      if (!this.#pending.includes(String(ref))) return undefined;
      key = String(ref);
    } else {
      // Servers that do not echo refs answer in order.
      key = this.#pending[0];
    }
    if (key === undefined) return undefined;
    this.#pending = this.#pending.filter((r) => r !== key);
    return this.#subs.get(key);
  }

  /** @internal When the socket went away, for the gap report; null when never lost. */
  get disconnectedAt(): Date | null {
    return this.#disconnectedAt;
  }
}

function unavailable(): FluxbaseError {
  return new FluxbaseError(
    "No WebSocket implementation: pass createClient(url, { WebSocket }) (on Node 20 use the `ws` package)",
    0,
    "realtime_unavailable",
  );
}

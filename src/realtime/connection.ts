/**
 * One client socket: its identity, its subscriptions, and bounded sending.
 *
 * Sending never grows memory without bound: `bufferedAmount` counts what the socket has not
 * yet handed to the network, and a consumer that lets it exceed `maxBufferedBytes` is
 * disconnected with a reason. Closing cannot free what is already queued while the peer does
 * not read (Deno's close waits behind the queued frames; measured on Deno 2.9.6), so the hub
 * forgets such a connection at once and the queued bytes stay bounded by the limit.
 */
import type { VerifiedToken } from "../auth/jwt.ts";
import { systemMessage } from "./protocol.ts";
import type { Subscription } from "./subscriptions.ts";

export type { TokenVerifier, VerifiedToken } from "../auth/jwt.ts";

/** Close codes: 1008 policy violation (slow consumer, limits), 1001 going away (shutdown). */
export const CLOSE_POLICY = 1008;
export const CLOSE_GOING_AWAY = 1001;

// setTimeout takes at most 2^31-1 ms (about 24.8 days); later expiries are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Connection {
  readonly subscriptions = new Map<string, Subscription>();
  #closed = false;
  #expired = false;
  #expiryTimer: ReturnType<typeof setTimeout> | null = null;
  /** Client messages are handled one at a time, in order (some need a database read). */
  queue: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    public auth: VerifiedToken,
    private readonly maxBufferedBytes: number,
    private readonly onExpired: (conn: Connection) => void,
    private readonly onDisconnect: (conn: Connection) => void,
  ) {
    this.#armExpiry();
  }

  /** True while events may be sent: open and holding an unexpired token. */
  get receiving(): boolean {
    if (this.#closed || this.#expired) return false;
    const exp = this.auth.expiresAt;
    return exp === null || Date.now() < exp * 1000;
  }

  get closed(): boolean {
    return this.#closed;
  }

  setAuth(auth: VerifiedToken): void {
    this.auth = auth;
    this.#expired = false;
    this.#armExpiry();
  }

  /** Sends a text frame; false when not sent (closed, or disconnected as too slow). */
  send(text: string): boolean {
    if (this.#closed || this.socket.readyState !== WebSocket.OPEN) return false;
    if (this.socket.bufferedAmount + text.length > this.maxBufferedBytes) {
      this.disconnect(
        CLOSE_POLICY,
        `Slow consumer: more than ${this.maxBufferedBytes} bytes waiting to be sent`,
      );
      return false;
    }
    this.socket.send(text);
    return true;
  }

  /** Says why, closes, and detaches from the hub at once. Safe to call twice. */
  disconnect(code: number, reason: string): void {
    if (this.#closed) return;
    if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(systemMessage({ event: "disconnecting", message: reason, reason }));
    }
    this.#markClosed();
    try {
      // A close reason is limited to 123 bytes by the WebSocket protocol.
      this.socket.close(code, reason.slice(0, 120));
    } catch {
      // Already closing.
    }
  }

  /** The socket closed from the other side (or errored). */
  closedByPeer(): void {
    this.#markClosed();
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer);
    this.onDisconnect(this);
  }

  #armExpiry(): void {
    if (this.#expiryTimer !== null) clearTimeout(this.#expiryTimer);
    this.#expiryTimer = null;
    const exp = this.auth.expiresAt;
    if (exp === null || this.#closed) return;
    const wait = exp * 1000 - Date.now();
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = null;
      if (exp * 1000 > Date.now()) return this.#armExpiry();
      this.#expired = true;
      this.onExpired(this);
    }, Math.min(Math.max(wait, 0), MAX_TIMER_MS));
  }
}

/**
 * Tells the database that this hub has table subscribers, so the change-capture triggers
 * write realtime.changes (migrations/0003_notify.sql). The row is refreshed well
 * before it expires while anyone subscribes, and removed when nobody does or the hub stops; a
 * hub that dies leaves a row that expires by itself.
 */
import type { Sql } from "../db/pool.ts";
import { coerceError } from "../errors.ts";

export interface PresenceOptions {
  sql: Sql;
  /** Whether the hub has any table subscription (checked on every refresh tick). */
  wanted: () => boolean;
  ttlMs?: number;
}

export class Presence {
  readonly hubId = crypto.randomUUID();
  readonly #ttlMs: number;
  #activeUntil = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly opts: PresenceOptions) {
    this.#ttlMs = opts.ttlMs ?? 60_000;
  }

  /**
   * Makes sure capture is on before a subscription is acknowledged: once this resolves, every
   * statement that starts afterwards captures its changes.
   */
  async ensure(): Promise<void> {
    // Refreshed with a third of its lifetime left at the latest: no gap between two rows.
    if (Date.now() < this.#activeUntil - (2 * this.#ttlMs) / 3) return;
    const until = Date.now() + this.#ttlMs;
    await this.opts.sql`
      insert into realtime.presence (hub_id, active_until)
      values (${this.hubId}, now() + ${this.#ttlMs} * interval '1 millisecond')
      on conflict (hub_id) do update set active_until = excluded.active_until`;
    this.#activeUntil = until;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.#tick(), this.#ttlMs / 6);
    Deno.unrefTimer(this.#timer);
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#withdraw();
  }

  async #tick() {
    try {
      if (this.opts.wanted()) await this.ensure();
      else if (this.#activeUntil > 0) await this.#withdraw();
    } catch (e) {
      console.error(`realtime: presence refresh failed: ${coerceError(e).message}`);
    }
  }

  async #withdraw() {
    if (this.#activeUntil === 0) return;
    this.#activeUntil = 0;
    await this.opts.sql`delete from realtime.presence where hub_id = ${this.hubId}`.catch(() => {});
  }
}

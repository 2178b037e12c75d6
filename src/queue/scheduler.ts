/**
 * Cron: functions with `@fluxbase:schedule` run on their schedule as the system (no user,
 * created_by NULL, user_role service_role), their `schedule-params` as payload.
 *
 * Exactly once per tick with several API processes: no leader is needed, because the tick is
 * claimed by a conditional UPDATE of `jobs.functions.next_run_at` (from the value read to the
 * following fire time) in the same statement that inserts the job; whichever scheduler's
 * UPDATE lands first enqueues the run, the others match no row. next_run_at always holds the
 * next fire time, so the functions list shows it.
 *
 * Ticks missed while no scheduler ran (server down, function disabled) are not replayed one
 * by one: a function whose next_run_at is in the past runs ONCE as a catch-up, and its next
 * run is then computed from now. A daily cleanup that missed a week runs once, not seven times
 * back to back. A function that is disabled, or enabled again, gets a next_run_at from now,
 * without a catch-up for the time it was disabled.
 */
import { Cron } from "croner";
import type { Sql } from "../db/pool.ts";
import { coerceError } from "../errors.ts";
import {
  functionClearUnscheduled,
  functionListScheduled,
  functionSetNextRunIf,
  jobInsertScheduledTick,
  type ScheduledFunction,
} from "./schedule_queries.ts";

export interface CronSchedulerOptions {
  sql: Sql;
  /** Longest sleep between scans; a due tick is usually met to the millisecond. */
  scanIntervalMs?: number;
  /** Called with each enqueued run (tests, logging). */
  onFire?: (fn: { id: string; name: string; namespace: string; jobId: string }) => void;
}

export class CronScheduler {
  #timer: ReturnType<typeof setTimeout> | null = null;
  #running = false;
  #scan: Promise<void> | null = null;
  #crons = new Map<string, Cron | null>();

  constructor(private readonly opts: CronSchedulerOptions) {}

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Stops scanning and waits for a scan in progress. Safe before start and twice. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#scan;
  }

  /** One scan: sets missing next run times, fires due ticks. Returns ms until the next one. */
  async tick(): Promise<number> {
    const { sql } = this.opts;
    const max = this.opts.scanIntervalMs ?? 1000;
    await functionClearUnscheduled(sql);
    let sleep = max;
    for (const fn of await functionListScheduled(sql)) {
      const cron = this.#cron(fn);
      if (!cron) continue;
      const upcoming = cron.nextRun(fn.now);
      if (fn.next_run_at === null || (upcoming && fn.next_run_at > upcoming)) {
        // New schedule, or changed to one that fires sooner than the stored time.
        await functionSetNextRunIf(sql, fn.id, fn.next_run_at, upcoming);
        if (upcoming) sleep = Math.min(sleep, upcoming.getTime() - fn.now.getTime());
        continue;
      }
      if (fn.next_run_at > fn.now) {
        sleep = Math.min(sleep, fn.next_run_at.getTime() - fn.now.getTime());
        continue;
      }
      // Due (or missed while down): one run, then the next fire time after now.
      const jobId = await jobInsertScheduledTick(sql, fn.id, fn.next_run_at, upcoming);
      if (jobId) this.opts.onFire?.({ id: fn.id, name: fn.name, namespace: fn.namespace, jobId });
      if (upcoming) sleep = Math.min(sleep, upcoming.getTime() - fn.now.getTime());
    }
    return Math.max(5, sleep);
  }

  #cron(fn: ScheduledFunction): Cron | null {
    const key = `${fn.id}:${fn.schedule}`;
    if (!this.#crons.has(key)) {
      let cron: Cron | null = null;
      try {
        cron = new Cron(fn.schedule, { paused: true, mode: "5-or-6-parts" });
      } catch (e) {
        console.error(
          `Job function "${fn.namespace}/${fn.name}": schedule "${fn.schedule}" is invalid: ` +
            coerceError(e).message,
        );
      }
      this.#crons.set(key, cron);
    }
    return this.#crons.get(key) ?? null;
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#scan = this.tick().then(
        (next) => this.#schedule(next),
        (e) => {
          console.error(`Cron scheduler scan failed: ${coerceError(e).message}`);
          this.#schedule(this.opts.scanIntervalMs ?? 1000);
        },
      ).finally(() => (this.#scan = null));
    }, ms);
  }
}

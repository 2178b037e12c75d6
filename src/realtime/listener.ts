/**
 * The hub's feed from Postgres. A dedicated connection LISTENs on fluxbase_changes and
 * fluxbase_logs; each notification carries only the highest id written (pg_notify fails
 * above 8000 bytes, so rows are read from realtime.changes / jobs.logs by id instead).
 * Reads are serialized and coalesced: a burst of notifications costs one query per batch.
 * A slow poll backs the notifications up, so a lost notification delays an event by at most
 * `pollIntervalMs` rather than losing it. After the listening connection is re-established
 * the listener catches up by id and reports the gap, so subscribers can refetch.
 */
import postgres from "postgres";
import type { Sql } from "../db/pool.ts";
import { coerceError } from "../errors.ts";
import { IdCursor } from "./cursor.ts";

export interface ChangeRow {
  id: number;
  commitTimestamp: string;
  schema: string;
  table: string;
  type: "INSERT" | "UPDATE" | "DELETE";
  /** JSON text as stored, so it is forwarded without being re-serialized. */
  recordJson: string | null;
  oldRecordJson: string | null;
}

export interface LogRow {
  id: number;
  jobId: string;
  lineNumber: number;
  level: string;
  message: string;
  timestamp: string;
}

export interface ListenerHandlers {
  onChanges(rows: ChangeRow[]): void;
  onLogs(rows: LogRow[]): void;
  /** The feed was interrupted; `caughtUp` false means stored rows were lost meanwhile. */
  onGap(caughtUp: boolean): void;
  /** Jobs someone follows the logs of; log rows of other jobs are not read. */
  logJobIds(): string[];
}

export interface ListenerOptions {
  sql: Sql;
  databaseUrl: string;
  handlers: ListenerHandlers;
  pollIntervalMs?: number;
  /** Change rows older than this are deleted (every API process does it; it is idempotent). */
  retentionMs?: number;
  cleanupIntervalMs?: number;
  batchSize?: number;
}

export const CHANGES_CHANNEL = "fluxbase_changes";
export const LOGS_CHANNEL = "fluxbase_logs";

export class ChangeListener {
  readonly #o: Required<Omit<ListenerOptions, "handlers" | "sql" | "databaseUrl">>;
  readonly #sql: Sql;
  readonly #url: string;
  readonly #h: ListenerHandlers;
  #listenSql: Sql | null = null;
  #changes = new IdCursor(0);
  #logs = new IdCursor(0);
  #running = false;
  #timers: ReturnType<typeof setInterval>[] = [];
  #busy: Promise<void> | null = null;
  #again = false;
  /** Which feeds have news: a notification names its channel; a poll checks both. */
  #dirty = { changes: true, logs: true };
  #lastError: Error | null = null;

  constructor(options: ListenerOptions) {
    this.#sql = options.sql;
    this.#url = options.databaseUrl;
    this.#h = options.handlers;
    this.#o = {
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      retentionMs: options.retentionMs ?? 5 * 60_000,
      cleanupIntervalMs: options.cleanupIntervalMs ?? 60_000,
      batchSize: options.batchSize ?? 1000,
    };
  }

  get lastChangeId(): number {
    return this.#changes.last;
  }

  /** The last read error, if the most recent read failed (for health reporting). */
  get lastError(): Error | null {
    return this.#lastError;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const [row] = await this.#sql<{ changes: string | null; logs: string | null }[]>`
      select (select max(id) from realtime.changes)::text as changes,
             (select max(id) from jobs.logs)::text as logs`;
    this.#changes = new IdCursor(Number(row.changes ?? 0));
    this.#logs = new IdCursor(Number(row.logs ?? 0));
    this.#listenSql = postgres(this.#url, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: "fluxbase-realtime-listener" },
    });
    // postgres.js calls the third argument on the first LISTEN and again after each
    // reconnect of the listening connection; a second call means notifications were missed.
    let changeListens = 0;
    await this.#listenSql.listen(CHANGES_CHANNEL, () => this.poke("changes"), () => {
      if (changeListens++ > 0) this.#recover();
    });
    await this.#listenSql.listen(LOGS_CHANNEL, () => this.poke("logs"));
    this.#timers.push(setInterval(() => this.poke(), this.#o.pollIntervalMs));
    this.#timers.push(setInterval(() => this.#cleanup(), this.#o.cleanupIntervalMs));
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    const listenSql = this.#listenSql;
    this.#listenSql = null;
    await this.#busy?.catch(() => {});
    await listenSql?.end({ timeout: 1 }).catch(() => {});
  }

  /** Reads whatever is new now (notification, poll, or a caller that knows of a write). */
  poke(feed?: "changes" | "logs"): Promise<void> {
    if (!this.#running) return Promise.resolve();
    if (feed !== "logs") this.#dirty.changes = true;
    if (feed !== "changes") this.#dirty.logs = true;
    if (this.#busy) {
      this.#again = true;
      return this.#busy;
    }
    this.#busy = (async () => {
      try {
        do {
          this.#again = false;
          const dirty = this.#dirty;
          this.#dirty = { changes: false, logs: false };
          if (dirty.changes) await this.#readChanges();
          if (dirty.logs) await this.#readLogs();
        } while (this.#again && this.#running);
        this.#lastError = null;
      } catch (e) {
        // The database is unreachable or restarting; the next poll tries again.
        this.#lastError = coerceError(e);
        this.#dirty = { changes: true, logs: true };
      } finally {
        this.#busy = null;
      }
    })();
    return this.#busy;
  }

  #readChanges(): Promise<void> {
    return this.#readAfter(
      this.#changes,
      (last, gaps) =>
        this.#sql<RawChange[]>`
          select id::text, to_json(commit_timestamp) #>> '{}' as ts, schema_name, table_name,
                 type, record::text as record, old_record::text as old_record
          from realtime.changes
          where id > ${last} or id = any(${gaps}::bigint[])
          order by id limit ${this.#o.batchSize}`,
      (r, id): ChangeRow => ({
        id,
        commitTimestamp: r.ts,
        schema: r.schema_name,
        table: r.table_name,
        type: r.type,
        recordJson: r.record,
        oldRecordJson: r.old_record,
      }),
      (rows) => this.#h.onChanges(rows),
    );
  }

  /**
   * Reads rows after `cursor` (and the ids it still waits for) in batches until a short one,
   * handing each id that is new to the cursor to `deliver`.
   */
  async #readAfter<Raw extends { id: string }, Row>(
    cursor: IdCursor,
    read: (last: number, gaps: number[]) => Promise<Raw[]>,
    toRow: (raw: Raw, id: number) => Row,
    deliver: (rows: Row[]) => void,
  ): Promise<void> {
    for (;;) {
      const rows = await read(cursor.last, cursor.gaps());
      const fresh: Row[] = [];
      for (const r of rows) {
        const id = Number(r.id);
        if (cursor.accept(id)) fresh.push(toRow(r, id));
      }
      if (fresh.length > 0) deliver(fresh);
      if (rows.length < this.#o.batchSize) return;
    }
  }

  async #readLogs(): Promise<void> {
    const jobIds = this.#h.logJobIds();
    if (jobIds.length === 0) {
      // Nobody follows logs: move the cursor to the end so a later subscriber starts fresh.
      const [row] = await this.#sql<{ max: string | null }[]>`
        select max(id)::text as max from jobs.logs`;
      this.#logs.skipTo(Number(row.max ?? 0));
      return;
    }
    await this.#readAfter(
      this.#logs,
      (last, gaps) =>
        this.#sql<RawLog[]>`
          select id::text, job_id::text, line_number, level, message,
                 to_json(created_at) #>> '{}' as ts
          from jobs.logs
          where (id > ${last} or id = any(${gaps}::bigint[]))
            and job_id = any(${jobIds}::uuid[])
          order by id limit ${this.#o.batchSize}`,
      (r, id): LogRow => ({
        id,
        jobId: r.job_id,
        lineNumber: r.line_number,
        level: r.level,
        message: r.message,
        timestamp: r.ts,
      }),
      (rows) => this.#h.onLogs(rows),
    );
    // Rows of unfollowed jobs were filtered out, so the cursor may lag; a later id bounds it.
    const [row] = await this.#sql<{ max: string | null }[]>`
      select max(id)::text as max from jobs.logs`;
    const max = Number(row.max ?? 0);
    if (max > this.#logs.last) this.#logs.skipTo(max);
  }

  /** After a reconnect: catch up by id, then tell subscribers whether rows were lost. */
  async #recover(): Promise<void> {
    const before = this.#changes.last;
    let caughtUp = true;
    try {
      const [row] = await this.#sql<{ min: string | null }[]>`
        select min(id)::text as min from realtime.changes`;
      // Rows after our position were deleted by the retention cleanup before we read them.
      caughtUp = row.min === null || Number(row.min) <= before + 1;
    } catch {
      caughtUp = false;
    }
    await this.poke();
    this.#h.onGap(caughtUp);
  }

  async #cleanup(): Promise<void> {
    try {
      const seconds = Math.floor(this.#o.retentionMs / 1000);
      // Ids follow commit time closely, so the first id still inside the retention bounds the
      // delete and both walk the primary key (there is no commit_timestamp index).
      await this.#sql`
        with cutoff as (select now() - make_interval(secs => ${seconds}) as at)
        delete from realtime.changes
        where commit_timestamp < (select at from cutoff)
          and id < coalesce((select c.id from realtime.changes c
                             where c.commit_timestamp >= (select at from cutoff)
                             order by c.id limit 1), 9223372036854775807)`;
    } catch {
      // Retried on the next interval; a missed cleanup only keeps rows longer.
    }
  }
}

interface RawChange {
  id: string;
  ts: string;
  schema_name: string;
  table_name: string;
  type: "INSERT" | "UPDATE" | "DELETE";
  record: string | null;
  old_record: string | null;
}

interface RawLog {
  id: string;
  job_id: string;
  line_number: number;
  level: string;
  message: string;
  ts: string;
}

/**
 * Read position in an id-ordered feed (realtime.changes, jobs.logs) that tolerates ids
 * committing out of order. Ids come from a sequence when a row is written, not when its
 * transaction commits: if transaction A takes id 5 and B takes id 6 but B commits first, a
 * reader that saw 6 and then asks for "id > 6" never sees 5. So skipped ids are remembered as
 * gaps and asked for again until they appear or expire (a rolled-back transaction also leaves
 * a gap that never fills).
 */
export interface CursorOptions {
  /** How long a missing id is waited for; longer than any transaction that writes jobs. */
  gapTtlMs?: number;
  /** A jump larger than this is not tracked id by id (sequence reset, mass rollback). */
  maxTrackedGap?: number;
}

export class IdCursor {
  last: number;
  readonly #gaps = new Map<number, number>();
  readonly #ttl: number;
  readonly #maxGap: number;

  constructor(start: number, options: CursorOptions = {}) {
    this.last = start;
    this.#ttl = options.gapTtlMs ?? 60_000;
    this.#maxGap = options.maxTrackedGap ?? 1000;
  }

  /** Missing ids still worth asking for; expired ones are forgotten. */
  gaps(now = Date.now()): number[] {
    const out: number[] = [];
    for (const [id, since] of this.#gaps) {
      if (now - since > this.#ttl) this.#gaps.delete(id);
      else out.push(id);
    }
    return out;
  }

  /** Records that a row was read; false when it was already delivered. */
  accept(id: number, now = Date.now()): boolean {
    if (this.#gaps.delete(id)) return true;
    if (id <= this.last) return false;
    const skipped = id - this.last - 1;
    if (skipped > 0 && skipped <= this.#maxGap) {
      for (let g = this.last + 1; g < id; g++) this.#gaps.set(g, now);
    }
    this.last = id;
    return true;
  }

  /** Jumps forward without gaps, e.g. when nobody needs the rows in between. */
  skipTo(id: number): void {
    if (id > this.last) this.last = id;
  }
}

/**
 * Many deadlines on one timer. Every run has a timeout and a progress timeout, usually minutes
 * away and usually cancelled long before; a setTimeout/clearTimeout pair per deadline cost 3 us
 * with one timer pending and 9 us with thousands (Deno 2.9.6, this machine), twice per job.
 * Here a deadline costs an array push and a flag.
 *
 * Deadlines with the same delay fall due in the order they were set, so each distinct delay
 * keeps a FIFO queue and only the queue heads compete for the one timer. Cancelled entries stay
 * in their queue until they reach its head or the queue is compacted (up to a thousand of them),
 * so cancelling drops the entry's callback: it holds the whole run (job, payload, hooks), which
 * would otherwise stay in memory until then.
 */

const NOTHING = () => {};

export interface Deadline {
  cancel(): void;
}

interface Queue {
  entries: Entry[];
  head: number;
  cancelled: number;
}

/** A deadline in its queue; one object per deadline (no closure beside it). */
class Entry implements Deadline {
  live = true;

  constructor(
    readonly at: number,
    public fire: () => void,
    private readonly owner: Deadlines,
    private readonly queue: Queue,
  ) {}

  cancel(): void {
    if (!this.live) return;
    this.live = false;
    this.fire = NOTHING;
    this.owner.cancelled(this.queue);
  }
}

/** Compact a queue when it holds more than this many entries and most are cancelled. */
const COMPACT_AT = 1024;

export class Deadlines {
  #queues = new Map<number, Queue>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = Infinity;
  /** Deadlines neither fired nor cancelled; with none, no timer is pending. */
  #live = 0;

  /** Calls `fire` once, `delayMs` from now, unless cancelled first. */
  add(delayMs: number, fire: () => void): Deadline {
    const at = performance.now() + delayMs;
    let queue = this.#queues.get(delayMs);
    if (!queue) this.#queues.set(delayMs, queue = { entries: [], head: 0, cancelled: 0 });
    const entry = new Entry(at, fire, this, queue);
    queue.entries.push(entry);
    this.#live++;
    if (at < this.#timerAt) this.#arm(at);
    return entry;
  }

  /** An entry of `q` was cancelled (called by Entry.cancel only). */
  cancelled(q: Queue): void {
    q.cancelled++;
    if (--this.#live === 0) this.#disarm();
    if (q.entries.length > COMPACT_AT && q.cancelled * 2 > q.entries.length) this.#compact(q);
  }

  #compact(q: Queue) {
    q.entries = q.entries.slice(q.head).filter((e) => e.live);
    q.head = 0;
    q.cancelled = 0;
  }

  #arm(at: number) {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#run(), Math.max(0, at - performance.now()));
  }

  /** Nothing is pending: no timer (it would keep a process or a test waiting for nothing). */
  #disarm() {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
    this.#queues.clear();
  }

  #run() {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = performance.now();
    const due: Entry[] = [];
    let next = Infinity;
    for (const [delay, q] of this.#queues) {
      while (q.head < q.entries.length) {
        const entry = q.entries[q.head];
        if (entry.live && entry.at > now) break;
        q.head++;
        if (entry.live) {
          entry.live = false;
          this.#live--;
          due.push(entry);
        } else {
          q.cancelled--;
        }
      }
      if (q.head === q.entries.length) {
        this.#queues.delete(delay);
        continue;
      }
      if (q.head > COMPACT_AT) this.#compact(q);
      next = Math.min(next, q.entries[q.head].at);
    }
    if (next < Infinity) this.#arm(next);
    for (const entry of due) entry.fire();
  }
}

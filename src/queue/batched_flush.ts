/**
 * The write schedule LogWriter and ProgressWriter share: once something waits, one write
 * `intervalMs` later (or earlier, on demand), and one write in flight at a time; what arrives
 * meanwhile goes out with the next one.
 */
export class BatchedFlush {
  #timer: ReturnType<typeof setTimeout> | null = null;
  #flushing: Promise<void> | null = null;

  constructor(
    private readonly intervalMs: number,
    /** Takes everything waiting and writes it; null when nothing waits. Must not reject. */
    private readonly write: () => Promise<void> | null,
  ) {}

  /** Something waits: write it within `intervalMs`. */
  schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.intervalMs);
  }

  /** Writes what waits now, after the write in flight. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    const writing = this.write();
    if (!writing) return;
    this.#flushing = writing;
    await writing;
    this.#flushing = null;
  }

  /** Writes what waits and stops the timer. Safe twice. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.flush();
  }
}

/** Small helpers shared by the benchmarks. */

export interface Latency {
  p50: number;
  p95: number;
  p99: number;
}

export interface RunFigures {
  /** Completed jobs/s of each round of N jobs, in order (the first on barely warm workers). */
  rounds: number[];
  /** CPU per job of each round, in microseconds (coarse: /proc counts in 10 ms ticks). */
  cpu: CpuSample[];
  latency: Latency;
}

export function percentile(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/** Polls `check` every `everyMs` until it returns a value other than undefined/false. */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** CPU time used so far, in microseconds, by the processes a benchmark round involves. */
export interface CpuSample {
  /** Every PostgreSQL process on this machine (0 when the database runs elsewhere). */
  postgres: number;
  /** Fluxbase's worker processes (src/worker/process.ts). */
  workers: number;
  /** This process: the bench itself, and graphile-worker, which runs in it. */
  self: number;
}

/** CPU time a process has used (utime + stime), in microseconds; `pid` "self" is this one. */
export function processCpuMicros(pid: number | "self" = "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * (1_000_000 / 100); // USER_HZ is 100 on Linux
}

/**
 * Reads /proc (Linux; zeros elsewhere). Processes that exit between two samples drop out, so
 * a round's figure counts only those alive at both ends: the database and the workers are.
 */
export function cpuSample(): CpuSample {
  const sample: CpuSample = { postgres: 0, workers: 0, self: 0 };
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return sample;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    try {
      const micros = processCpuMicros(pid);
      if (pid === Deno.pid) sample.self += micros;
      else if (Deno.readTextFileSync(`/proc/${pid}/comm`).trim() === "postgres") {
        sample.postgres += micros;
      } else if (
        Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("src/worker/process.ts")
      ) sample.workers += micros;
    } catch {
      // The process ended while it was read.
    }
  }
  return sample;
}

/** CPU per job between two samples, in microseconds. */
export function cpuPerJob(before: CpuSample, after: CpuSample, jobs: number): CpuSample {
  return {
    postgres: (after.postgres - before.postgres) / jobs,
    workers: (after.workers - before.workers) / jobs,
    self: (after.self - before.self) / jobs,
  };
}

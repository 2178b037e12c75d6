/**
 * Backoff between attempts, defined once (River's retry_policy.go).
 *
 *   delay(retry_count) = min(retryMaxDelayMs, retryBaseDelayMs * 2^retry_count)
 *                        * (1 - retryJitter * random())
 *
 * `retry_count` is the number of attempts already charged before this failure (0 after the
 * first attempt failed), so with the defaults (1 s base, 1 h cap, jitter 0.2) the waits are
 * about 1 s, 2 s, 4 s, ... Jitter only shortens a delay, never lengthens it, so the cap holds
 * and workers that failed together do not retry together.
 *
 * The rescuer computes the same formula in SQL (`workerRescue*` in worker_queries.ts) because
 * it fails many jobs of a dead worker in one statement; keep the two in step.
 */
import type { JobsConfig } from "../config.ts";

export type RetryPolicy = Pick<JobsConfig, "retryBaseDelayMs" | "retryMaxDelayMs" | "retryJitter">;

/** Milliseconds to wait before the next attempt of a job that has used `retryCount` retries. */
export function retryDelayMs(
  policy: RetryPolicy,
  retryCount: number,
  random: () => number = Math.random,
): number {
  // 2^retry_count overflows to Infinity beyond ~1000 retries; min() keeps it at the cap.
  const exponential = policy.retryBaseDelayMs * 2 ** Math.max(0, retryCount);
  const capped = Math.min(policy.retryMaxDelayMs, exponential);
  return Math.max(0, Math.round(capped * (1 - policy.retryJitter * random())));
}

/** True when a failed attempt still leaves an attempt: it goes back to pending. */
export function hasAttemptsLeft(retryCount: number, maxRetries: number): boolean {
  return retryCount < maxRetries;
}

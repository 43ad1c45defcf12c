/**
 * How long a failed task waits before its next try, as Airflow computes it
 * (`TaskInstance.next_retry_datetime`).
 */
import type { TaskSpec } from '../dag/types.ts';

/** Airflow's `[core] max_task_retry_delay` default: no computed delay exceeds one day. */
export const MAX_RETRY_DELAY_MS = 86_400_000;

/**
 * Delay in ms before the try after `tryNumber`, where `tryNumber` is the try that just failed
 * (1 for the first try).
 *
 * - Without `retry_exponential_backoff`: `retry_delay_ms`, unchanged (as Airflow, neither
 *   `max_retry_delay_ms` nor the one-day cap applies).
 * - With it: base = `retry_delay_ms * 2^(tryNumber - 1)`, then jitter as Airflow: a value in
 *   [base, 2 * base), capped at one day and then at `max_retry_delay_ms` (when set).
 *   Airflow draws the jitter from a hash of the task instance; pass `random` (returning [0, 1))
 *   for a deterministic value. Airflow counts whole seconds and waits at least 1 s; Podflow keeps
 *   milliseconds, and a `retry_delay_ms` of 0 means "retry at once".
 *
 * @example retryDelayMs({ retry_delay_ms: 10_000, retry_exponential_backoff: true, max_retry_delay_ms: null }, 3, () => 0.5)
 *   // base 40 s, jitter 20 s -> 60_000
 */
export function retryDelayMs(
  task: Pick<TaskSpec, 'retry_delay_ms' | 'retry_exponential_backoff' | 'max_retry_delay_ms'>,
  tryNumber: number,
  random: () => number = Math.random,
): number {
  const delay = Math.max(0, task.retry_delay_ms);
  if (!task.retry_exponential_backoff) return delay;
  // 2^(n-1) overflows to Infinity for huge n; Math.min brings it back to the cap.
  const exponent = Math.max(0, Math.floor(tryNumber) - 1);
  const base = Math.min(Math.ceil(delay * 2 ** exponent), MAX_RETRY_DELAY_MS);
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  let jittered = Math.min(base + Math.floor(r * base), MAX_RETRY_DELAY_MS);
  if (task.max_retry_delay_ms !== null && task.max_retry_delay_ms !== undefined) {
    jittered = Math.min(jittered, Math.max(0, task.max_retry_delay_ms));
  }
  return jittered;
}

import { createHash } from 'node:crypto';

export interface PokeDelayInput {
  poke_interval_ms: number;
  /** Double the delay after each poke (Airflow's `exponential_backoff`). */
  exponential_backoff: boolean;
  /** Upper bound on one delay (Airflow's `max_wait`); default none. */
  max_wait_ms?: number | null;
  /** Pokes made so far, counting the one that just returned false (>= 1). */
  poke_count: number;
  /** Time left before the sensor's timeout; the delay never overshoots it. */
  remaining_ms?: number | null;
  /**
   * With backoff, a key (e.g. `dag.task.run`) to spread the delay deterministically over
   * [base, 2·base) as Airflow does, so many sensors started together do not poke in lockstep.
   */
  jitter_key?: string;
}

// 2^40 × any sane interval is beyond every timeout; capping the exponent keeps it finite.
const MAX_EXPONENT = 40;

/**
 * Milliseconds to wait before the next poke: `poke_interval_ms`, or with backoff
 * `poke_interval_ms · 2^(poke_count-1)` (plus jitter when `jitter_key` is set), then capped
 * by `max_wait_ms` and by `remaining_ms`.
 *
 * @example nextPokeDelayMs({ poke_interval_ms: 1000, exponential_backoff: true, poke_count: 3 }) // 4000
 */
export function nextPokeDelayMs(o: PokeDelayInput): number {
  if (!(o.poke_interval_ms > 0) || !Number.isFinite(o.poke_interval_ms)) {
    throw new RangeError(`poke_interval must be a positive number of milliseconds, got ${o.poke_interval_ms}`);
  }
  if (!Number.isInteger(o.poke_count) || o.poke_count < 1) {
    throw new RangeError(`poke_count counts pokes already made and must be >= 1, got ${o.poke_count}`);
  }
  let delay = o.poke_interval_ms;
  if (o.exponential_backoff) {
    delay = o.poke_interval_ms * 2 ** Math.min(o.poke_count - 1, MAX_EXPONENT);
    if (o.jitter_key !== undefined) {
      const h = createHash('sha1').update(`${o.jitter_key}#${o.poke_count}`).digest().readUInt32BE(0);
      delay += Math.floor((h / 0x1_0000_0000) * delay);
    }
  }
  if (o.max_wait_ms != null) delay = Math.min(delay, o.max_wait_ms);
  if (o.remaining_ms != null) delay = Math.min(delay, Math.max(0, o.remaining_ms));
  return Math.round(delay);
}

export interface SensorTimeoutInput {
  /** First poke of the sensor (kept across retries), epoch ms or Date. */
  started_at: number | Date;
  /** null/undefined: no timeout. */
  timeout_ms: number | null | undefined;
  now: number | Date;
}

/** Whether the sensor has waited longer than its timeout since its first poke (strictly longer, as Airflow). */
export function sensorTimedOut(o: SensorTimeoutInput): boolean {
  if (o.timeout_ms == null) return false;
  return +o.now - +o.started_at > o.timeout_ms;
}

/** Milliseconds left before the timeout (never negative), or null without a timeout. */
export function sensorRemainingMs(o: SensorTimeoutInput): number | null {
  if (o.timeout_ms == null) return null;
  return Math.max(0, o.timeout_ms - (+o.now - +o.started_at));
}

import { describe, expect, it } from 'vitest';
import { MAX_RETRY_DELAY_MS, retryDelayMs } from '../../src/scheduler/retry-delay.ts';

const fixed = { retry_delay_ms: 10_000, retry_exponential_backoff: false, max_retry_delay_ms: null };
const expo = { retry_delay_ms: 10_000, retry_exponential_backoff: true, max_retry_delay_ms: null };

describe('retryDelayMs', () => {
  it('without backoff waits retry_delay every time', () => {
    expect([1, 2, 3, 10].map((n) => retryDelayMs(fixed, n, () => 0.99))).toEqual([10_000, 10_000, 10_000, 10_000]);
  });

  it('without backoff ignores max_retry_delay, as Airflow does', () => {
    expect(retryDelayMs({ ...fixed, max_retry_delay_ms: 1_000 }, 2)).toBe(10_000);
  });

  it('with backoff doubles per failed try (no jitter when random is 0)', () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(expo, n, () => 0))).toEqual([10_000, 20_000, 40_000, 80_000, 160_000]);
  });

  it('jitter adds up to one more base: random 0.5 on try 3 gives 40 s + 20 s', () => {
    expect(retryDelayMs(expo, 3, () => 0.5)).toBe(60_000);
  });

  it('jitter stays below twice the base even when random returns 1', () => {
    expect(retryDelayMs(expo, 1, () => 1)).toBe(19_999);
  });

  it('is capped by max_retry_delay', () => {
    expect(retryDelayMs({ ...expo, max_retry_delay_ms: 30_000 }, 3, () => 0)).toBe(30_000);
    expect(retryDelayMs({ ...expo, max_retry_delay_ms: 30_000 }, 1, () => 0)).toBe(10_000);
  });

  it('never exceeds one day, also for a huge try number', () => {
    expect(retryDelayMs(expo, 40, () => 0.7)).toBe(MAX_RETRY_DELAY_MS);
    expect(retryDelayMs(expo, 5000, () => 0.7)).toBe(86_400_000);
  });

  it('retries at once when retry_delay is 0', () => {
    expect(retryDelayMs({ ...expo, retry_delay_ms: 0 }, 3, () => 0.5)).toBe(0);
  });

  it('is deterministic with an injected random', () => {
    const seq = [0.1, 0.1];
    let i = 0;
    const rnd = () => seq[i++];
    expect(retryDelayMs(expo, 2, rnd)).toBe(retryDelayMs(expo, 2, rnd));
    expect(retryDelayMs(expo, 2, () => 0.1)).toBe(22_000);
  });

  it('by default stays within [base, 2 * base)', () => {
    for (let k = 0; k < 200; k++) {
      const d = retryDelayMs(expo, 2);
      expect(d >= 20_000 && d < 40_000).toBe(true);
    }
  });
});

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { builtinSensors, SensorRegistry, sensorOperatorType, sensorsByType } from '../../src/sensors/registry.ts';
import { normalizePokeResult, parseSensorArgs, pokeSensor, type PokeContext, type Sensor } from '../../src/sensors/sensor.ts';
import { timeSensor } from '../../src/sensors/time.ts';
import { nextPokeDelayMs, sensorRemainingMs, sensorTimedOut } from '../../src/sensors/timing.ts';

function ctx(now: string): PokeContext {
  const noop = () => {};
  return {
    dag_id: 'nightly_report',
    run_id: 'scheduled__2026-12-02',
    task_id: 'wait',
    logical_date: new Date('2026-12-02T00:00:00Z'),
    data_interval_start: new Date('2026-12-02T00:00:00Z'),
    data_interval_end: new Date('2026-12-03T00:00:00Z'),
    redis: undefined as never,
    prefix: 'unused',
    log: { debug: noop, info: noop, warn: noop, error: noop, raw: noop },
    signal: new AbortController().signal,
    now: () => new Date(now),
  };
}

describe('time sensor', () => {
  it('waits for an absolute target time', async () => {
    const args = { target_time: '2026-12-03T06:00:00+01:00' };
    expect(await pokeSensor(timeSensor, args, ctx('2026-12-03T04:59:30Z'))).toEqual({ done: false, detail: 'waiting until 2026-12-03T05:00:00.000Z (30s left)' });
    expect(await pokeSensor(timeSensor, args, ctx('2026-12-03T05:00:00Z'))).toEqual({
      done: true,
      event_key: '2026-12-03T05:00:00.000Z',
      xcom: { target: '2026-12-03T05:00:00.000Z' },
    });
  });

  it('waits a delta after data_interval_end', async () => {
    expect(await pokeSensor(timeSensor, { delta_seconds: 7200 }, ctx('2026-12-03T01:00:00Z'))).toEqual({
      done: false,
      detail: 'waiting until 2026-12-03T02:00:00.000Z (3600s left)',
    });
    expect((await pokeSensor(timeSensor, { delta_seconds: 7200 }, ctx('2026-12-03T02:00:01Z'))).done).toBe(true);
  });

  it('waits for a time of day (UTC) on the date of data_interval_end', async () => {
    expect(await pokeSensor(timeSensor, { time_of_day: '04:30' }, ctx('2026-12-03T04:00:00Z'))).toMatchObject({ done: false, detail: 'waiting until 2026-12-03T04:30:00.000Z (1800s left)' });
    expect(await pokeSensor(timeSensor, { time_of_day: '04:30:15' }, ctx('2026-12-03T04:31:00Z'))).toMatchObject({ done: true, xcom: { target: '2026-12-03T04:30:15.000Z' } });
  });

  it('needs exactly one way to say when', () => {
    expect(() => parseSensorArgs(timeSensor, {}, ctx('2026-12-03T00:00:00Z'))).toThrow(/give exactly one of target_time, time_of_day, delta_seconds/);
    expect(() => parseSensorArgs(timeSensor, { delta_seconds: 1, time_of_day: '01:00' }, ctx('2026-12-03T00:00:00Z'))).toThrow(/exactly one/);
    expect(() => parseSensorArgs(timeSensor, { time_of_day: '25:00' }, ctx('2026-12-03T00:00:00Z'))).toThrow(/HH:MM or HH:MM:SS/);
  });
});

describe('poke timing', () => {
  it('waits poke_interval between pokes without backoff', () => {
    expect([1, 2, 10].map((n) => nextPokeDelayMs({ poke_interval_ms: 30_000, exponential_backoff: false, poke_count: n }))).toEqual([30_000, 30_000, 30_000]);
  });

  it('doubles the delay after each poke with backoff, capped by max_wait', () => {
    expect([1, 2, 3, 4, 5].map((n) => nextPokeDelayMs({ poke_interval_ms: 1000, exponential_backoff: true, poke_count: n, max_wait_ms: 10_000 }))).toEqual([
      1000, 2000, 4000, 8000, 10_000,
    ]);
    expect(nextPokeDelayMs({ poke_interval_ms: 1000, exponential_backoff: true, poke_count: 500 })).toBe(1000 * 2 ** 40);
  });

  it('spreads backoff delays deterministically in [base, 2·base) with a jitter key', () => {
    const a = nextPokeDelayMs({ poke_interval_ms: 1000, exponential_backoff: true, poke_count: 3, jitter_key: 'dag.task.run1' });
    expect(a).toBe(nextPokeDelayMs({ poke_interval_ms: 1000, exponential_backoff: true, poke_count: 3, jitter_key: 'dag.task.run1' }));
    expect(a >= 4000 && a < 8000).toBe(true);
    const spread = new Set(Array.from({ length: 20 }, (_, i) => nextPokeDelayMs({ poke_interval_ms: 1000, exponential_backoff: true, poke_count: 3, jitter_key: `s${i}` })));
    expect(spread.size > 1).toBe(true);
  });

  it('never sleeps past the timeout', () => {
    expect(nextPokeDelayMs({ poke_interval_ms: 60_000, exponential_backoff: false, poke_count: 1, remaining_ms: 5_000 })).toBe(5_000);
    expect(nextPokeDelayMs({ poke_interval_ms: 60_000, exponential_backoff: false, poke_count: 1, remaining_ms: -10 })).toBe(0);
  });

  it('rejects a non-positive interval and a poke count below 1', () => {
    expect(() => nextPokeDelayMs({ poke_interval_ms: 0, exponential_backoff: false, poke_count: 1 })).toThrow('poke_interval must be a positive number of milliseconds, got 0');
    expect(() => nextPokeDelayMs({ poke_interval_ms: 10, exponential_backoff: false, poke_count: 0 })).toThrow(/poke_count/);
  });

  it('times out only after strictly more than timeout since the first poke', () => {
    const started_at = Date.parse('2026-12-03T00:00:00Z');
    expect(sensorTimedOut({ started_at, timeout_ms: 60_000, now: started_at + 60_000 })).toBe(false);
    expect(sensorTimedOut({ started_at, timeout_ms: 60_000, now: started_at + 60_001 })).toBe(true);
    expect(sensorTimedOut({ started_at: new Date(started_at), timeout_ms: null, now: started_at + 1e12 })).toBe(false);
    expect(sensorRemainingMs({ started_at, timeout_ms: 60_000, now: started_at + 45_000 })).toBe(15_000);
    expect(sensorRemainingMs({ started_at, timeout_ms: 60_000, now: started_at + 90_000 })).toBe(0);
    expect(sensorRemainingMs({ started_at, timeout_ms: undefined, now: started_at })).toBe(null);
  });
});

describe('sensor registry', () => {
  it('ships the six built-in sensors', () => {
    expect(builtinSensors.map((s) => s.type)).toEqual(['file', 'http', 'redis_key', 'external_task', 'time', 'metric_threshold']);
    expect(sensorsByType.get('time')).toBe(timeSensor);
    expect(sensorOperatorType('file')).toBe('sensor:file');
  });

  it('takes user sensors of the same kind and finds them by operator type', async () => {
    const always: Sensor<{ answer: boolean }> = {
      type: 'always',
      argsSchema: z.strictObject({ answer: z.boolean().default(true) }),
      poke: async (args) => args.answer,
    };
    const reg = new SensorRegistry();
    reg.register(always);
    expect(reg.get('sensor:always')).toBe(always);
    expect(reg.types()).toEqual(['always', 'external_task', 'file', 'http', 'metric_threshold', 'redis_key', 'time']);
    expect(await pokeSensor(reg.get('always')!, {}, ctx('2026-12-03T00:00:00Z'))).toEqual({ done: true });
    expect(() => reg.register(always)).toThrow("sensor type 'always' is registered twice");
    expect(() => reg.register({ ...always, type: 'Bad Type' })).toThrow(/sensor type 'Bad Type' is invalid/);
  });

  it('normalizes boolean poke results', () => {
    expect(normalizePokeResult(true)).toEqual({ done: true });
    expect(normalizePokeResult(false)).toEqual({ done: false });
    expect(normalizePokeResult({ done: false, detail: 'x' })).toEqual({ done: false, detail: 'x' });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { externalTaskSensor } from '../../src/sensors/external-task.ts';
import { metricThresholdSensor } from '../../src/sensors/metric-threshold.ts';
import { redisKeySensor } from '../../src/sensors/redis-key.ts';
import { parseSensorArgs, pokeSensor, SensorFailure, type PokeContext } from '../../src/sensors/sensor.ts';
import { RedisTaskStateReader, type TaskStateReader } from '../../src/sensors/task-state-reader.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

let redis: Redis;
beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  await redis.quit();
});

const logicalDate = new Date('2026-12-03T00:00:00.000Z');

function ctx(prefix: string, over: Partial<PokeContext> = {}): PokeContext {
  const noop = () => {};
  return {
    dag_id: 'retrain_on_new_labels',
    run_id: 'scheduled__2026-12-03T00:00:00.000Z',
    task_id: 'wait',
    logical_date: logicalDate,
    data_interval_start: new Date('2026-12-02T00:00:00Z'),
    data_interval_end: logicalDate,
    redis,
    prefix,
    log: { debug: noop, info: noop, warn: noop, error: noop, raw: noop },
    signal: new AbortController().signal,
    now: () => new Date('2026-12-03T06:00:00Z'),
    ...over,
  };
}

/** Writes a run and a task instance the way the state store lays them out. */
async function seedRun(prefix: string, dagId: string, runId: string, date: Date) {
  await redis.hset(`${prefix}:runs_by_date:${dagId}`, date.toISOString(), runId);
  await redis.zadd(`${prefix}:runs:${dagId}`, date.getTime(), runId);
}
async function setTi(prefix: string, dagId: string, runId: string, taskId: string, state: string, mapIndex = -1) {
  await redis.hset(`${prefix}:ti:${dagId}:${runId}:${taskId}:${mapIndex}`, 'state', state, 'try_number', '1');
}

describe('redis_key sensor', () => {
  it('waits for a key to exist, then reports its type', async () => {
    const prefix = uniquePrefix('rk');
    const key = `${prefix}ext:ready`;
    expect(await pokeSensor(redisKeySensor, { key }, ctx(prefix))).toEqual({ done: false, detail: `Redis key '${key}' does not exist yet` });
    await redis.set(key, '1');
    expect(await pokeSensor(redisKeySensor, { key }, ctx(prefix))).toEqual({ done: true, event_key: key, xcom: { key, type: 'string' } });
  });

  it('waits for a stream entry newer than after_id and returns the oldest such entry', async () => {
    const prefix = uniquePrefix('rk');
    const key = `${prefix}labels:events`;
    const args = { key, mode: 'stream', after_id: '1000-0' };
    expect(await pokeSensor(redisKeySensor, args, ctx(prefix))).toEqual({ done: false, detail: `stream '${key}' has no entry after 1000-0 yet` });
    await redis.xadd(key, '1000-0', 'uri', 'old');
    expect((await pokeSensor(redisKeySensor, args, ctx(prefix))).done).toBe(false);
    await redis.xadd(key, '2000-0', 'uri', 's3://labels/2.csv', 'rows', '40');
    await redis.xadd(key, '3000-0', 'uri', 's3://labels/3.csv');
    expect(await pokeSensor(redisKeySensor, args, ctx(prefix))).toEqual({
      done: true,
      event_key: `${key}@2000-0`,
      xcom: { key, id: '2000-0', fields: { uri: 's3://labels/2.csv', rows: '40' } },
    });
    expect(await pokeSensor(redisKeySensor, { key, mode: 'stream' }, ctx(prefix))).toMatchObject({ done: true, event_key: `${key}@1000-0` });
  });

  it('fails at once when the key is not a stream', async () => {
    const prefix = uniquePrefix('rk');
    const key = `${prefix}plain`;
    await redis.set(key, 'x');
    await expect(pokeSensor(redisKeySensor, { key, mode: 'stream' }, ctx(prefix))).rejects.toThrow(
      new SensorFailure(`DAG 'retrain_on_new_labels' task 'wait': Redis key '${key}' is a string, not a stream; use mode 'exists' or point the sensor at a stream`),
    );
  });

  it('rejects after_id outside stream mode and a malformed id', () => {
    expect(() => parseSensorArgs(redisKeySensor, { key: 'k', after_id: '5-0' }, ctx('p'))).toThrow(/field 'after_id': after_id applies to mode 'stream' only/);
    expect(() => parseSensorArgs(redisKeySensor, { key: 'k', mode: 'stream', after_id: 'latest' }, ctx('p'))).toThrow(/a stream entry id/);
  });
});

describe('external_task sensor', () => {
  it('waits for the run, then the task instance, then an allowed state', async () => {
    const prefix = uniquePrefix('ext');
    const args = { external_dag_id: 'label_ingest', external_task_id: 'publish' };
    const what = `task 'publish' of DAG 'label_ingest' at 2026-12-03T00:00:00.000Z`;
    expect(await pokeSensor(externalTaskSensor, args, ctx(prefix))).toEqual({
      done: false,
      detail: `waiting for ${what}: that DAG has no run for this logical date yet`,
    });
    await seedRun(prefix, 'label_ingest', 'scheduled__a', logicalDate);
    expect(await pokeSensor(externalTaskSensor, args, ctx(prefix))).toEqual({
      done: false,
      detail: `waiting for ${what}: run 'scheduled__a' has no such task instance yet`,
    });
    await setTi(prefix, 'label_ingest', 'scheduled__a', 'publish', 'running');
    expect(await pokeSensor(externalTaskSensor, args, ctx(prefix))).toEqual({
      done: false,
      detail: `waiting for ${what} (run 'scheduled__a') to be success; it is running`,
    });
    await setTi(prefix, 'label_ingest', 'scheduled__a', 'publish', 'success');
    expect(await pokeSensor(externalTaskSensor, args, ctx(prefix))).toEqual({
      done: true,
      event_key: 'label_ingest:scheduled__a:publish:-1:success',
      xcom: { dag_id: 'label_ingest', run_id: 'scheduled__a', task_id: 'publish', map_index: -1, state: 'success' },
    });
  });

  it('looks execution_delta_seconds back and reads a mapped instance', async () => {
    const prefix = uniquePrefix('ext');
    await seedRun(prefix, 'hourly', 'scheduled__h', new Date('2026-12-02T23:00:00.000Z'));
    await setTi(prefix, 'hourly', 'scheduled__h', 'shard', 'skipped', 2);
    const args = { external_dag_id: 'hourly', external_task_id: 'shard', external_map_index: 2, allowed_states: ['success', 'skipped'], execution_delta_seconds: 3600 };
    expect(await pokeSensor(externalTaskSensor, args, ctx(prefix))).toMatchObject({ done: true, xcom: { run_id: 'scheduled__h', state: 'skipped', map_index: 2 } });
  });

  it('fails without retry when the task reached a failed state', async () => {
    const prefix = uniquePrefix('ext');
    await seedRun(prefix, 'label_ingest', 'r1', logicalDate);
    await setTi(prefix, 'label_ingest', 'r1', 'publish', 'failed');
    const err = await pokeSensor(externalTaskSensor, { external_dag_id: 'label_ingest', external_task_id: 'publish', failed_states: ['failed', 'upstream_failed'] }, ctx(prefix)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SensorFailure);
    expect((err as SensorFailure).fatal).toBe(true);
    expect((err as SensorFailure).message).toBe(
      "DAG 'retrain_on_new_labels' task 'wait': task 'publish' of DAG 'label_ingest' at 2026-12-03T00:00:00.000Z (run 'r1') is failed, one of failed_states; fix or clear that task, then clear this one",
    );
  });

  it('uses the context reader when given one', async () => {
    const reader: TaskStateReader = {
      runIdForLogicalDate: async () => 'from-reader',
      latestRun: async () => null,
      taskState: async (_d, runId) => (runId === 'from-reader' ? 'success' : null),
      metric: async () => null,
    };
    const r = await pokeSensor(externalTaskSensor, { external_dag_id: 'x', external_task_id: 'y' }, ctx(uniquePrefix('ext'), { tasks: reader }));
    expect(r).toMatchObject({ done: true, xcom: { run_id: 'from-reader' } });
  });

  it('rejects a state listed as both allowed and failed', () => {
    expect(() => parseSensorArgs(externalTaskSensor, { external_dag_id: 'a', external_task_id: 'b', failed_states: ['success'] }, ctx('p'))).toThrow(
      /field 'failed_states': a state cannot be both allowed and failed/,
    );
  });
});

describe('metric_threshold sensor', () => {
  const metricsKey = (prefix: string, dag: string, run: string, task: string) => `${prefix}:metrics:${dag}:${run}:${task}:-1`;

  it('reads the latest run of another DAG and waits until the metric crosses the bound', async () => {
    const prefix = uniquePrefix('metric');
    const args = { dag_id: 'drift_monitor', task_id: 'compute_psi', metric: 'psi', op: 'gt', threshold: 0.2 };
    expect(await pokeSensor(metricThresholdSensor, args, ctx(prefix))).toEqual({
      done: false,
      detail: "waiting for metric 'psi' of task 'compute_psi' in DAG 'drift_monitor': the DAG has no runs yet",
    });
    await seedRun(prefix, 'drift_monitor', 'run_old', new Date('2026-12-01T00:00:00Z'));
    await seedRun(prefix, 'drift_monitor', 'run_new', new Date('2026-12-02T00:00:00Z'));
    await redis.hset(metricsKey(prefix, 'drift_monitor', 'run_old', 'compute_psi'), 'psi', '0.9');
    expect(await pokeSensor(metricThresholdSensor, args, ctx(prefix))).toEqual({
      done: false,
      detail: "waiting for metric 'psi' of task 'compute_psi' in DAG 'drift_monitor': run 'run_new' has not recorded it",
    });
    await redis.hset(metricsKey(prefix, 'drift_monitor', 'run_new', 'compute_psi'), 'psi', '0.12');
    expect(await pokeSensor(metricThresholdSensor, args, ctx(prefix))).toEqual({
      done: false,
      detail: "metric 'psi' of task 'compute_psi' in DAG 'drift_monitor' is 0.12 in run 'run_new', waiting for gt 0.2",
    });
    await redis.hset(metricsKey(prefix, 'drift_monitor', 'run_new', 'compute_psi'), 'psi', '0.31');
    expect(await pokeSensor(metricThresholdSensor, args, ctx(prefix))).toEqual({
      done: true,
      event_key: 'drift_monitor:run_new:compute_psi:-1:psi',
      xcom: { dag_id: 'drift_monitor', run_id: 'run_new', task_id: 'compute_psi', metric: 'psi', value: 0.31 },
    });
  });

  it('defaults to the current run of its own DAG, or the run named', async () => {
    const prefix = uniquePrefix('metric');
    const c = ctx(prefix);
    await redis.hset(metricsKey(prefix, c.dag_id, c.run_id, 'evaluate'), 'accuracy', '0.95');
    await redis.hset(metricsKey(prefix, c.dag_id, 'older', 'evaluate'), 'accuracy', '0.5');
    expect(await pokeSensor(metricThresholdSensor, { task_id: 'evaluate', metric: 'accuracy', op: 'gte', threshold: 0.9 }, c)).toMatchObject({
      done: true,
      xcom: { run_id: c.run_id, value: 0.95 },
    });
    expect(await pokeSensor(metricThresholdSensor, { task_id: 'evaluate', metric: 'accuracy', op: 'gte', threshold: 0.9, run_id: 'older' }, c)).toMatchObject({
      done: false,
    });
  });

  it('finds the latest run from the by-date hash when the runs index is absent', async () => {
    const prefix = uniquePrefix('metric');
    await redis.hset(`${prefix}:runs_by_date:d`, '2026-12-01T00:00:00.000Z', 'a', '2026-12-02T00:00:00.000Z', 'b');
    expect(await new RedisTaskStateReader(redis, prefix).latestRun('d')).toBe('b');
  });
});

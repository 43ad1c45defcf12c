import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dag } from '../../src/dag/dag.ts';
import type { DagRunRecord, DagSpec, Json, TaskInstanceRecord } from '../../src/dag/types.ts';
import type { OperatorRunRequest, TaskContext, TaskLogger } from '../../src/executor/operator.ts';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { SensorRegistry } from '../../src/sensors/registry.ts';
import { SensorFailure, type Sensor } from '../../src/sensors/sensor.ts';
import { SensorOperator } from '../../src/sensors/sensor-operator.ts';
import { nextPokeDelayMs } from '../../src/sensors/timing.ts';
import { StateStore } from '../../src/state/store.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

/** Answers from a script: each poke takes the next entry. */
const scripted: (boolean | Error)[] = [];
const pokedArgs: unknown[] = [];
const scriptedSensor: Sensor<{ where?: string }> = {
  type: 'scripted',
  argsSchema: z.strictObject({ where: z.string().optional() }),
  async poke(args) {
    pokedArgs.push(args);
    const next = scripted.shift() ?? false;
    if (next instanceof Error) throw next;
    return next ? { done: true, xcom: { found: args.where ?? null } } : { done: false, detail: 'not yet' };
  },
};

const silent: TaskLogger = { debug() {}, info() {}, warn() {}, error() {}, raw() {} };
const NOW = Date.parse('2026-06-01T12:00:00Z');

describe('SensorOperator', () => {
  const redis = new Redis(redisUrl());
  const store = new StateStore(redis, uniquePrefix('sensor-op'));
  const sensors = new SensorRegistry();
  sensors.register(scriptedSensor);
  const op = new SensorOperator({ sensors, store, now: () => new Date(NOW) });
  let spec: DagSpec;
  let run: DagRunRecord;

  beforeAll(async () => {
    spec = dag({ dag_id: 'op', schedule: null, params: { where: 'bucket/a' } }, (d) => {
      d.sensor('resched', 'scripted', { where: '{{ params.where }}/{{ ds }}' }, { mode: 'reschedule', poke_interval: '10s', exponential_backoff: true, timeout: '1h' });
      d.sensor('poker', 'scripted', {}, { mode: 'poke', poke_interval: '10ms', timeout: '1h' });
      d.sensor('unknown', 'no_such_sensor', {});
      d.sensor('badargs', 'scripted', { nope: 1 });
    }).toSpec('op.ts', 'h');
    await store.putDag(spec);
    run = await triggerDagRun(store, spec, { logical_date: '2026-06-01T00:00:00Z' });
  });
  afterAll(() => redis.disconnect());

  async function request(taskId: string, patch: Partial<TaskInstanceRecord> & Record<string, Json> = {}): Promise<OperatorRunRequest> {
    const key = { dag_id: 'op', dag_run_id: run.dag_run_id, task_id: taskId, map_index: -1 };
    if (Object.keys(patch).length) await store.updateTi(key, patch);
    const ti = (await store.getTi(key))!;
    const task = spec.tasks.find((t) => t.task_id === taskId)!;
    const signal = new AbortController().signal;
    const context = {
      dag_id: 'op',
      run_id: run.dag_run_id,
      task_id: taskId,
      map_index: -1,
      try_number: 1,
      logical_date: new Date(run.logical_date),
      data_interval_start: new Date(run.data_interval_start),
      data_interval_end: new Date(run.data_interval_end),
      params: spec.params,
      conf: {},
      map_value: undefined,
      log: silent,
      signal,
    } as unknown as TaskContext;
    return { dag: spec, task, run, ti, context, signal, log: silent };
  }

  it('reschedule mode: one poke per try, the next at now + the backoff delay, the first poke time kept', async () => {
    scripted.push(false);
    const out = await op.execute(await request('resched', { poke_count: 2 }));
    const delay = nextPokeDelayMs({ poke_interval_ms: 10_000, exponential_backoff: true, poke_count: 3, remaining_ms: 3600_000, jitter_key: `op.resched.${run.dag_run_id}.-1` });
    expect(out).toEqual({ state: 'up_for_reschedule', reschedule_at: NOW + delay });
    expect(delay).toBeGreaterThanOrEqual(40_000);
    expect(pokedArgs.pop()).toEqual({ where: 'bucket/a/2026-06-01' });
    expect((await store.getTi({ dag_id: 'op', dag_run_id: run.dag_run_id, task_id: 'resched', map_index: -1 }))!.sensor_started_at).toBe(NOW);
  });

  it('a done poke returns its XCom as the return value', async () => {
    scripted.push(true);
    expect(await op.execute(await request('resched'))).toEqual({ state: 'success', return_value: { found: 'bucket/a/2026-06-01' } });
  });

  it('times out against the first poke of an earlier try, fatally', async () => {
    scripted.push(false);
    const out = await op.execute(await request('resched', { sensor_started_at: NOW - 3600_000 }));
    expect([out.state, out.fatal]).toEqual(['failed', true]);
    expect(out.error).toBe(
      "DAG 'op' (op.ts) task 'resched': sensor 'scripted' timed out: its condition did not hold within 3600s of the first poke (2026-06-01T11:00:00.000Z); last poke: not yet. Raise the sensor's timeout or check what it waits for.",
    );
  });

  it('poke mode keeps poking inside one try until done', async () => {
    scripted.push(false, false, true);
    expect(await op.execute(await request('poker'))).toEqual({ state: 'success', return_value: { found: null } });
    expect(scripted).toEqual([]);
  });

  it('a SensorFailure fails as it says (fatal or not); any other poke error is a retryable failure', async () => {
    scripted.push(new SensorFailure('the key has the wrong type', { fatal: false }));
    expect(await op.execute(await request('poker'))).toEqual({ state: 'failed', fatal: false, error: "DAG 'op' (op.ts) task 'poker': the key has the wrong type" });
    scripted.push(new Error('ECONNREFUSED'));
    expect(await op.execute(await request('poker'))).toEqual({ state: 'failed', error: "DAG 'op' (op.ts) task 'poker': sensor 'scripted' poke failed: ECONNREFUSED" });
  });

  it('an unknown sensor type or bad arguments fail at once without retry', async () => {
    const unknown = await op.execute(await request('unknown'));
    expect([unknown.state, unknown.fatal]).toEqual(['failed', true]);
    expect(unknown.error).toBe(
      `DAG 'op' (op.ts) task 'unknown': no sensor of type 'no_such_sensor' is registered (known: ${sensors.types().join(', ')}); fix the type or install the plugin that adds it`,
    );
    const bad = await op.execute(await request('badargs'));
    expect([bad.state, bad.fatal]).toEqual(['failed', true]);
    expect(bad.error).toBe("DAG 'op' task 'badargs': arguments of sensor 'scripted' are invalid: unknown field 'nope'. Fix them in the DAG file.");
  });
});

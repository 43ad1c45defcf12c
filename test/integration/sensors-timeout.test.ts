import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import type { Sensor } from '../../src/sensors/sensor.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const scratch = mkdtempSync(join(tmpdir(), 'pf-sensor-timeout-'));
const missing = join(scratch, 'never.flag');
const present = join(scratch, 'present.csv');
writeFileSync(present, 'a,b\n1,2\n');

const DAGS = `
import { dag } from 'podflow';
export const hard = dag({ dag_id: 'timeout_hard', schedule: null, default_args: { retries: 3, retry_delay: '100ms' } }, (d) => {
  d.sensor('wait', 'file', { path: ${JSON.stringify(missing)} }, { mode: 'poke', poke_interval: '100ms', timeout: '600ms' })
    .then(d.task('after', async () => 'never'));
});
export const soft = dag({ dag_id: 'timeout_soft', schedule: null, default_args: { retries: 3, retry_delay: '100ms' } }, (d) => {
  d.sensor('wait', 'file', { path: ${JSON.stringify(missing)} }, { mode: 'reschedule', poke_interval: '100ms', timeout: '600ms', soft_fail: true })
    .then(d.task('after', async () => 'never'));
});
export const found = dag({ dag_id: 'found', schedule: null, params: { input: ${JSON.stringify(present)} } }, (d) => {
  d.sensor('wait', 'file', { path: '{{ params.input }}' }, { mode: 'poke', poke_interval: '100ms', timeout: '10s' });
});
export const flaky = dag({ dag_id: 'flaky_sensor', schedule: null, default_args: { retries: 3, retry_delay: '100ms' } }, (d) => {
  d.sensor('wait', 'flaky_then_wait', {}, { mode: 'poke', poke_interval: '100ms', timeout: '1s' });
});
`;

/** Fails its first poke with an ordinary (retryable) error, then never holds. */
let flakyPokes = 0;
const flakyThenWait: Sensor<Record<string, never>> = {
  type: 'flaky_then_wait',
  argsSchema: z.strictObject({}),
  async poke() {
    flakyPokes += 1;
    if (flakyPokes === 1) throw new Error('connection refused');
    return { done: false, detail: 'still waiting' };
  },
};

describe('sensor timeout and soft_fail', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'sensors.ts': DAGS }, env: { PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000' } });
    pf.sensors.register(flakyThenWait);
  });
  afterAll(async () => {
    await pf?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const ti = (dagId: string, runId: string, taskId = 'wait') => pf.store.getTi({ dag_id: dagId, dag_run_id: runId, task_id: taskId, map_index: -1 });

  it('a sensor timeout fails the task at once, without spending its 3 retries', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('timeout_hard'))!);
    expect((await pf.waitForRun('timeout_hard', run.dag_run_id, 30_000)).state).toBe('failed');
    const wait = (await ti('timeout_hard', run.dag_run_id))!;
    expect([wait.state, wait.try_number, wait.max_tries]).toEqual(['failed', 1, 4]);
    expect(wait.note).toMatch(
      /^DAG 'timeout_hard' \(.*sensors\.ts\) task 'wait': sensor 'file' timed out: its condition did not hold within 0\.6s of the first poke \(\S+\); last poke: 0 of 1 required entries match '.*never\.flag'\. Raise the sensor's timeout or check what it waits for\.$/,
    );
    expect((await ti('timeout_hard', run.dag_run_id, 'after'))!.state).toBe('upstream_failed');
  });

  it('with soft_fail a timed-out sensor is skipped, and so is its downstream', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('timeout_soft'))!);
    await pf.waitForRun('timeout_soft', run.dag_run_id, 30_000);
    const wait = (await ti('timeout_soft', run.dag_run_id))!;
    expect([wait.state, wait.try_number]).toEqual(['skipped', 1]);
    expect((await ti('timeout_soft', run.dag_run_id, 'after'))!.state).toBe('skipped');
  });

  it("a done poke's XCom becomes the return value, and string arguments are templated", async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('found'))!);
    expect((await pf.waitForRun('found', run.dag_run_id, 30_000)).state).toBe('success');
    const x = (await pf.store.getXcom({ dag_id: 'found', dag_run_id: run.dag_run_id, task_id: 'wait', map_index: -1 }, 'return_value')) as {
      count: number;
      files: { path: string; size: number }[];
    };
    expect(x.count).toBe(1);
    expect(x.files.map((f) => [f.path, f.size])).toEqual([[present, 8]]);
  });

  it('the timeout runs from the first poke of the first try, across retries', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('flaky_sensor'))!);
    expect((await pf.waitForRun('flaky_sensor', run.dag_run_id, 30_000)).state).toBe('failed');
    const wait = (await ti('flaky_sensor', run.dag_run_id))!;
    expect([wait.state, wait.try_number]).toEqual(['failed', 2]);
    expect(wait.note).toContain("sensor 'flaky_then_wait' timed out");
    // Kept from try 1: earlier than the start of try 2.
    expect(wait.sensor_started_at).toBeLessThan(Date.parse(wait.start_date!));
    const log1 = await pf.store.readLog({ dag_id: 'flaky_sensor', dag_run_id: run.dag_run_id, task_id: 'wait', map_index: -1 }, 1);
    expect(log1.some((l) => l.includes('connection refused'))).toBe(true);
  });
});

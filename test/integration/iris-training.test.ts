import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { runDetail } from '../../src/api/serializers.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const repoDags = new URL('../../dags/', import.meta.url).pathname;

describe('iris_training, the example pipeline, end to end', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ env: { PODFLOW_DAGS_FOLDER: repoDags } });
  });
  afterAll(async () => pf?.close());

  it('loads every example DAG without import errors', async () => {
    expect(await pf.store.importErrors()).toEqual([]);
    expect(await pf.store.dagIds()).toContain('iris_training');
  });

  it('trains, evaluates above 0.9 and publishes the model and metrics', { timeout: 150_000 }, async () => {
    const dag = (await pf.store.getDag('iris_training'))!;
    const run = await triggerDagRun(pf.store, dag, { conf: { seed: 42 } });
    const done = await pf.waitForRun('iris_training', run.dag_run_id, 120_000);
    const detail = await runDetail(pf.store, done);
    expect(detail.state).toBe('success');
    expect(detail.task_instances.filter((t) => t.state !== 'success').map((t) => [t.task_id, t.state, t.note])).toEqual([]);
    expect(detail.task_instances.filter((t) => t.task_id === 'search').map((t) => t.map_index)).toEqual([0, 1, 2, 3, 4, 5]);
    const evaluate = detail.task_instances.find((t) => t.task_id === 'evaluate')!;
    expect(evaluate.metrics.accuracy).toBeGreaterThanOrEqual(0.9);
    const out = join(pf.config.artifactsFolder, 'iris_training');
    expect(existsSync(join(out, 'model.json'))).toBe(true);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.accuracy).toBe(evaluate.metrics.accuracy);
    expect(metrics.run_id).toBe(run.dag_run_id);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { lineageGraph, renderTree, runProvenance, type DatasetNode, type LineageNode, type TryNode } from '../../src/lineage/query.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

// The real example pipeline, run by the real scheduler and worker: the published model's
// lineage must name the data set file hash, the code hash, the chosen hyper-parameters,
// the test accuracy and the run.
const DAGS = fileURLToPath(new URL('../../dags/', import.meta.url));
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function walk(n: LineageNode, out: LineageNode[] = []): LineageNode[] {
  out.push(n);
  const kids = n.kind === 'dataset' ? [...n.produced_by, ...n.consumed_by] : [...n.inputs, ...n.upstream, ...n.outputs, ...n.downstream];
  for (const k of kids) walk(k, out);
  return out;
}

describe('lineage of the iris_training model', () => {
  let pf: TestPodflow;
  let artifacts: string;
  const savedArtifacts = process.env.PODFLOW_ARTIFACTS;

  beforeAll(async () => {
    artifacts = await mkdtemp(join(tmpdir(), 'pf-iris-lineage-'));
    // the DAG reads PODFLOW_ARTIFACTS from the process environment
    process.env.PODFLOW_ARTIFACTS = artifacts;
    pf = await startTestPodflow({ env: { PODFLOW_DAGS_FOLDER: DAGS, PODFLOW_ARTIFACTS: artifacts } });
  });
  afterAll(async () => {
    await pf?.close();
    if (savedArtifacts === undefined) delete process.env.PODFLOW_ARTIFACTS;
    else process.env.PODFLOW_ARTIFACTS = savedArtifacts;
    await rm(artifacts, { recursive: true, force: true });
  });

  it('traces the published model back to the data set file hash, with code hash, chosen hyper-parameters, accuracy and run', async () => {
    let dag = await pf.store.getDag('iris_training');
    for (let i = 0; i < 200 && !dag; i++) {
      await new Promise((r) => setTimeout(r, 50));
      dag = await pf.store.getDag('iris_training');
    }
    expect(dag, 'dags/iris_training.ts was not loaded').toBeTruthy();
    const run = await triggerDagRun(pf.store, dag!, { logical_date: '2026-06-01T00:00:00Z', dag_run_id: 'lineage_check' });
    const done = await pf.waitForRun('iris_training', run.dag_run_id, 120_000);
    expect(done.state).toBe('success');

    const model = join(artifacts, 'iris_training', 'model.json');
    const g = await lineageGraph(pf.lineage.store, model);
    const nodes = walk(g);
    const tries = nodes.filter((n): n is TryNode => n.kind === 'try' && !n.elided);
    const byTask = (id: string) => tries.find((t) => t.task_id === id);

    expect([g.uri, g.sha256]).toEqual([pathToFileURL(model).href, sha(await readFile(model))]);
    expect(g.produced_by.map((t) => [t.task_id, t.run_id])).toEqual([['publish', 'lineage_check']]);
    expect(new Set(tries.map((t) => t.dag_file_hash))).toEqual(new Set([sha(await readFile(join(DAGS, 'iris_training.ts')))]));

    const csv = join(artifacts, 'iris_training', 'runs', 'lineage_check', 'iris.csv');
    const dataset = nodes.find((n): n is DatasetNode => n.kind === 'dataset' && n.uri === pathToFileURL(csv).href);
    expect(dataset?.sha256).toBe(sha(await readFile(csv)));

    // the data set reaches split as an inlet produced by ingest; ingest is not repeated as a plain upstream
    expect(byTask('split')?.inputs.map((d) => [d.uri, d.produced_by.map((p) => p.task_id)])).toEqual([['dataset://podflow/iris/raw', ['ingest']]]);
    expect(byTask('split')?.upstream).toEqual([]);

    const key = { dag_id: 'iris_training', dag_run_id: 'lineage_check', map_index: -1 };
    const accuracy = (await pf.store.getMetrics({ ...key, task_id: 'evaluate' })).accuracy;
    expect(byTask('evaluate')?.metrics).toEqual({ accuracy });
    const best = await pf.store.getXcom({ ...key, task_id: 'select_best' }, 'return_value');
    expect(byTask('select_best')?.return_value).toEqual(best);
    expect(tries.map((t) => t.task_id).sort()).toEqual(expect.arrayContaining(['ingest', 'split', 'search', 'select_best', 'train', 'evaluate', 'publish']));

    const text = renderTree(g);
    expect(text).toContain(`sha256:${sha(await readFile(csv)).slice(0, 12)}`);
    expect(text).toContain(`run lineage_check`);
    expect(text).toContain(`metrics accuracy=${accuracy}`);
    expect(text).toContain(`returned ${JSON.stringify(best).slice(0, 40)}`);

    const prov = await runProvenance(pf.lineage.store, 'iris_training', 'lineage_check');
    expect(prov?.metrics.accuracy).toBe(accuracy);
    expect(prov?.outputs.map((o) => o.uri)).toEqual(expect.arrayContaining([pathToFileURL(model).href, pathToFileURL(csv).href]));
  });
});

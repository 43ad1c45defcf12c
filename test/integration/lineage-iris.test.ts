import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { dagRunUuid, type RunEvent } from '../../src/lineage/openlineage.ts';
import { lineageGraph, renderTree, runProvenance, type DatasetNode, type LineageNode, type TryNode } from '../../src/lineage/query.ts';
import { dagsFolder, startTestPodflow, type TestPodflow } from '../support/podflow.ts';
import { openLineageSchemaDir } from '../support/openlineage-schema.ts';

// The real example pipeline, run by the real scheduler and worker: the published model's
// lineage must name the data set file hash, the code hash, the chosen hyper-parameters,
// the test accuracy and the run.
const REPO_DAGS = fileURLToPath(new URL('../../dags/', import.meta.url));
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** ../shared/openlineage when it exists (as in CI), else the copy vendored in test/support/openlineage/. */
const SCHEMA_DIR = openLineageSchemaDir();

/** Core schema plus every facet schema in the schema folder's facets/ (by facet name). */
function eventValidator(): (ev: RunEvent) => string[] {
  const ajv = new Ajv2020.default({ allErrors: true, strict: false });
  addFormats.default(ajv);
  const core = JSON.parse(readFileSync(join(SCHEMA_DIR, 'OpenLineage.json'), 'utf8'));
  ajv.addSchema(core);
  const facets = new Map<string, (d: unknown) => boolean>();
  for (const f of readdirSync(join(SCHEMA_DIR, 'facets'))) {
    const s = JSON.parse(readFileSync(join(SCHEMA_DIR, 'facets', f), 'utf8'));
    ajv.addSchema(s);
    const v = ajv.getSchema(s.$id)!;
    for (const name of Object.keys(s.properties)) facets.set(name, (d) => v(d) as boolean);
  }
  const v = ajv.getSchema(core.$id)!;
  const check = (where: string, fs: Record<string, unknown> | undefined) =>
    Object.entries(fs ?? {}).flatMap(([name, body]) => (facets.get(name)?.({ [name]: body }) ? [] : [`${where}.${name} invalid or without schema`]));
  return (ev) => [
    ...(v(ev) ? [] : [`event: ${ajv.errorsText(v.errors)}`]),
    ...check('run', ev.run.facets),
    ...check('job', ev.job.facets),
    ...ev.inputs.flatMap((d) => check('input', d.facets)),
    ...ev.outputs.flatMap((d) => [...check('output', d.facets), ...check('outputFacets', d.outputFacets)]),
  ];
}

function walk(n: LineageNode, out: LineageNode[] = []): LineageNode[] {
  out.push(n);
  const kids = n.kind === 'dataset' ? [...n.produced_by, ...n.consumed_by] : [...n.inputs, ...n.upstream, ...n.outputs, ...n.downstream];
  for (const k of kids) walk(k, out);
  return out;
}

describe('lineage of the iris_training model', () => {
  let pf: TestPodflow;
  let artifacts: string;
  // only iris_training, so other example DAGs neither slow the load nor run
  const folder = dagsFolder();
  const DAGS = folder.dir;
  const savedArtifacts = process.env.PODFLOW_ARTIFACTS;

  beforeAll(async () => {
    // manual runs only: a cron run publishing the same (deterministic) model would be an equally valid producer
    const src = await readFile(join(REPO_DAGS, 'iris_training.ts'), 'utf8');
    const manual = src
      .replace(/schedule: '[^']*'/, 'schedule: null')
      // relative imports (./lib, ../plugins) keep pointing into the repository
      .replace(/from '(\.\.?\/[^']+)'/g, (_m, rel: string) => `from '${join(REPO_DAGS, rel)}'`);
    expect(manual, 'dags/iris_training.ts no longer has a `schedule:` string to replace').not.toMatch(/schedule: '/);
    await writeFile(join(DAGS, 'iris_training.ts'), manual);
    artifacts = await mkdtemp(join(tmpdir(), 'pf-iris-lineage-'));
    // the DAG reads PODFLOW_ARTIFACTS from the process environment
    process.env.PODFLOW_ARTIFACTS = artifacts;
    pf = await startTestPodflow({
      env: {
        PODFLOW_DAGS_FOLDER: DAGS,
        PODFLOW_ARTIFACTS: artifacts,
        PODFLOW_OPENLINEAGE_TRANSPORT: 'file',
        PODFLOW_OPENLINEAGE_FILE: join(artifacts, 'openlineage.ndjson'),
      },
    });
  });
  afterAll(async () => {
    await pf?.close();
    if (savedArtifacts === undefined) delete process.env.PODFLOW_ARTIFACTS;
    else process.env.PODFLOW_ARTIFACTS = savedArtifacts;
    await rm(artifacts, { recursive: true, force: true });
    folder.remove();
  });

  it('traces the published model back to the data set file hash, with code hash, chosen hyper-parameters, accuracy and run', { timeout: 180_000 }, async () => {
    let dag = await pf.store.getDag('iris_training');
    for (let i = 0; i < 600 && !dag; i++) {
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

    // the same run as OpenLineage events: valid, run START first, run COMPLETE last, each try START before its end
    const parent = dagRunUuid('podflow', 'iris_training', 'lineage_check');
    const readEvents = () =>
      readFileSync(join(artifacts, 'openlineage.ndjson'), 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as RunEvent)
        .filter((e) => e.run.runId === parent || (e.run.facets.parent as { run?: { runId?: string } } | undefined)?.run?.runId === parent);
    // the scheduler reports the run's end after it stores the run state this test polled
    let events = readEvents();
    for (let i = 0; i < 400 && !events.some((e) => e.run.runId === parent && e.eventType === 'COMPLETE'); i++) {
      await new Promise((r) => setTimeout(r, 50));
      await pf.lineage.flush(1000);
      events = readEvents();
    }
    const valid = eventValidator();
    expect(events.map(valid)).toEqual(events.map(() => []));
    expect([events[0].eventType, events[0].job.name]).toEqual(['START', 'iris_training']);
    expect([events.at(-1)!.eventType, events.at(-1)!.job.name]).toEqual(['COMPLETE', 'iris_training']);
    const taskEvents = events.slice(1, -1);
    const starts = taskEvents.filter((e) => e.eventType === 'START').map((e) => e.run.runId);
    const ends = taskEvents.filter((e) => e.eventType === 'COMPLETE').map((e) => e.run.runId);
    const tis = await pf.store.listTis('iris_training', 'lineage_check');
    expect([starts.length, ends.length, new Set(ends)]).toEqual([tis.length, tis.length, new Set(starts)]);
    for (const id of starts) expect(taskEvents.findIndex((e) => e.run.runId === id && e.eventType === 'START')).toBeLessThan(taskEvents.findIndex((e) => e.run.runId === id && e.eventType === 'COMPLETE'));

    const prov = await runProvenance(pf.lineage.store, 'iris_training', 'lineage_check');
    expect(prov?.metrics.accuracy).toBe(accuracy);
    expect(prov?.outputs.map((o) => o.uri)).toEqual(expect.arrayContaining([pathToFileURL(model).href, pathToFileURL(csv).href]));
  });
});

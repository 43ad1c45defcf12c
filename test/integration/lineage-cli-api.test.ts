import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { buildProgram, type CliContext } from '../../src/cli/main.ts';
import { StateStore } from '../../src/state/store.ts';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { startTestPodflow, VIEWER_TOKEN, type TestPodflow } from '../support/podflow.ts';

const DAG = `
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dag } from 'podflow';
const dir = () => { const d = join(process.env.PODFLOW_ARTIFACTS!, 'tiny'); mkdirSync(d, { recursive: true }); return d; };
export default dag({ dag_id: 'tiny_model', schedule: null, params: { lr: 0.5 } }, (d) => {
  const data = d.task('make_data', async (ctx) => {
    const f = join(dir(), 'data.csv');
    writeFileSync(f, 'x,y\\n1,2\\n3,4\\n');
    await ctx.artifact(f);
    return { path: f };
  });
  const fit = d.task('fit', async (ctx) => {
    const { path } = (await ctx.xcom.pull('make_data')) as { path: string };
    const f = join(dir(), 'model.json');
    writeFileSync(f, JSON.stringify({ lr: ctx.params.lr, rows: readFileSync(path, 'utf8').split('\\n').length }));
    await ctx.metric('accuracy', 0.93);
    await ctx.artifact(f, { media_type: 'application/json' });
    return { lr: ctx.params.lr };
  });
  data.then(fit);
});
`;

function cli(pf: TestPodflow) {
  const lines: string[] = [];
  const redis = new Redis(pf.config.redisUrl!);
  const ctx: CliContext = { config: pf.config, store: async () => new StateStore(redis, pf.config.prefix), out: (t) => lines.push(t) };
  return {
    lines,
    run: async (...args: string[]) => {
      lines.length = 0;
      await buildProgram(ctx).exitOverride().parseAsync(['node', 'podflow', ...args]);
      return lines.join('\n');
    },
    close: () => redis.disconnect(),
  };
}

describe('lineage from the CLI and the API', () => {
  let pf: TestPodflow;
  let runId: string;
  const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'tiny.ts': DAG } });
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('tiny_model'))!, { dag_run_id: 'lineage_run' });
    runId = run.dag_run_id;
    expect((await pf.waitForRun('tiny_model', runId)).state).toBe('success');
    await pf.lineage.flush(5000);
  });
  afterAll(async () => pf?.close());

  it('`podflow lineage <model> --json` and GET /api/v1/lineage give the same chain back to the data file', async () => {
    const model = join(pf.config.artifactsFolder, 'tiny', 'model.json');
    const data = join(pf.config.artifactsFolder, 'tiny', 'data.csv');
    const c = cli(pf);
    const graph = JSON.parse(await c.run('lineage', model, '--json'));
    c.close();
    expect(graph.kind).toBe('dataset');
    expect(graph.uri).toBe(`file://${model}`);
    expect(graph.sha256).toBe(sha(model));
    const fit = graph.produced_by[0];
    expect([fit.task_id, fit.run_id, fit.metrics, fit.params]).toEqual(['fit', runId, { accuracy: 0.93 }, { lr: 0.5 }]);
    const upstream = fit.upstream.find((t: { task_id: string }) => t.task_id === 'make_data');
    expect(upstream.outputs.map((o: { uri: string; sha256: string }) => [o.uri, o.sha256])).toEqual([[`file://${data}`, sha(data)]]);
    const res = await fetch(`${pf.api!.url}/api/v1/lineage?uri=${encodeURIComponent(model)}`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(graph);
  });

  it('prints the tree in the terminal and the run provenance with `runs show --lineage`', async () => {
    const model = join(pf.config.artifactsFolder, 'tiny', 'model.json');
    const c = cli(pf);
    const tree = await c.run('lineage', model);
    const prov = await c.run('runs', 'show', 'tiny_model', runId, '--lineage');
    c.close();
    expect(tree).toContain(sha(join(pf.config.artifactsFolder, 'tiny', 'data.csv')).slice(0, 12));
    expect(tree).toContain('fit');
    expect(prov).toContain('make_data');
    expect(prov).toContain(runId);
    const res = await fetch(`${pf.api!.url}/api/v1/dags/tiny_model/dagRuns/${runId}/lineage`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { dag_id: string }).dag_id).toBe('tiny_model');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { OPERATOR_TOKEN, startTestPodflow, VIEWER_TOKEN, type TestPodflow } from '../support/podflow.ts';

const DAG = `
import { dag } from 'podflow';
export default dag({ dag_id: 'stable', schedule: null, default_args: { retries: 2, retry_delay: '90s' } }, (d) => {
  const a = d.task('extract', async (ctx) => { await ctx.xcom.push('rows', 3); return { ok: true }; }, { outlets: ['dataset://s/out'], doc: 'pull rows' });
  const b = d.sensor('wait', 'time', { delta_seconds: 0 }, { mode: 'reschedule' });
  a.then(b);
});
`;

describe('stable REST API routes beyond the core', () => {
  let pf: TestPodflow;
  let runId: string;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'stable.ts': DAG, 'broken.ts': "import { dag } from 'podflow';\nthrow new Error('broken on purpose');\n" }, env: { PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000' } });
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('stable'))!);
    runId = run.dag_run_id;
    await pf.waitForRun('stable', runId, 30_000);
  });
  afterAll(async () => pf?.close());

  const get = async (path: string) => {
    const res = await fetch(`${pf.api!.url}${path}`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it("lists a DAG's tasks and gets one, with Airflow's field names", async () => {
    const { status, body } = await get('/api/v1/dags/stable/tasks');
    expect(status).toBe(200);
    const tasks = body.tasks as Record<string, unknown>[];
    expect(tasks.map((t) => [t.task_id, t.operator_name, t.downstream_task_ids])).toEqual([
      ['extract', 'inline', ['wait']],
      ['wait', 'sensor', []],
    ]);
    expect(tasks[0]).toMatchObject({ retries: 2, retry_delay: { __type: 'TimeDelta', days: 0, seconds: 90, microseconds: 0 }, outlets: ['dataset://s/out'], doc_md: 'pull rows' });
    expect((await get('/api/v1/dags/stable/tasks/wait')).body).toMatchObject({ task_id: 'wait', operator_args: { sensor: 'time', mode: 'reschedule' } });
    const missing = await get('/api/v1/dags/stable/tasks/nope');
    expect([missing.status, missing.body.detail]).toEqual([404, "DAG 'stable' has no task 'nope'; its tasks are extract, wait"]);
  });

  it('gets DAG details, one XCom entry, one import error and the version', async () => {
    expect((await get('/api/v1/dags/stable/details')).body).toMatchObject({ dag_id: 'stable', dataset_expression: null });
    const x = await get(`/api/v1/dags/stable/dagRuns/${encodeURIComponent(runId)}/taskInstances/extract/xcomEntries/rows`);
    expect(x.body).toEqual({ key: 'rows', value: 3, dag_id: 'stable', dag_run_id: runId, task_id: 'extract', map_index: -1 });
    const errs = (await get('/api/v1/importErrors')).body.import_errors as { import_error_id: number; filename: string }[];
    const broken = errs.find((e) => e.filename.endsWith('broken.ts'))!;
    const one = await get(`/api/v1/importErrors/${broken.import_error_id}`);
    expect(one.body.stack_trace).toMatch(/broken on purpose/);
    expect((await get('/api/v1/version')).status).toBe(200);
  });

  it('sets a run note with an operator token', async () => {
    const res = await fetch(`${pf.api!.url}/api/v1/dags/stable/dagRuns/${encodeURIComponent(runId)}/setNote`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'checked by hand' }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { note: string }).note).toBe('checked by hand');
    expect((await pf.store.getRun('stable', runId))!.note).toBe('checked by hand');
  });

  it('lists runs and task instances across DAGs with the batch (~) forms', async () => {
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${pf.api!.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${VIEWER_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const runs = await post('/api/v1/dags/~/dagRuns/list', { dag_ids: ['stable'], states: ['success'] });
    expect(runs.status).toBe(200);
    expect((runs.body.dag_runs as { dag_run_id: string }[]).map((r) => r.dag_run_id)).toEqual([runId]);
    const tis = await post('/api/v1/dags/~/dagRuns/~/taskInstances/list', { dag_ids: ['stable'], task_ids: ['wait'] });
    expect((tis.body.task_instances as { task_id: string; state: string; operator: string }[]).map((t) => [t.task_id, t.state, t.operator])).toEqual([['wait', 'success', 'sensor']]);
    const bad = await post('/api/v1/dags/~/dagRuns/list', { states: ['done'] });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/^Invalid request body: field 'states\.0': /);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { OPERATOR_TOKEN, startTestPodflow, VIEWER_TOKEN, type TestPodflow } from '../support/podflow.ts';

const XCOM_DAG = `
import { dag } from 'podflow';
export default dag({ dag_id: 'xc', schedule: null }, (d) => {
  d.task('push', async (ctx) => { await ctx.xcom.push('rows', 3); return 'done'; });
});
`;
const DATASET_DAGS = `
import { dag } from 'podflow';
export const one = dag({ dag_id: 'ds_one', schedule: ['dataset://x'] }, (d) => { d.task('a', async () => 1); });
export const all = dag({ dag_id: 'ds_all', schedule: ['dataset://a', 'dataset://b'] }, (d) => { d.task('a', async () => 1); });
export const any = dag({ dag_id: 'ds_any', schedule: { any: [{ uri: 'dataset://a' }, { all: [{ uri: 'dataset://b' }, { uri: 'dataset://c' }] }] } }, (d) => { d.task('a', async () => 1); });
`;

describe('API fixes: route order, non-JSON bodies, deep JSON, duplicate logical date, dataset schedules', () => {
  let pf: TestPodflow;
  let runId: string;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'xc.ts': XCOM_DAG, 'ds.ts': DATASET_DAGS } });
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('xc'))!);
    runId = run.dag_run_id;
    await pf.waitForRun('xc', runId, 30_000);
  });
  afterAll(async () => pf?.close());

  const call = async (method: string, path: string, init: { body?: string; type?: string; token?: string } = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? OPERATOR_TOKEN}` };
    if (init.type) headers['content-type'] = init.type;
    const res = await fetch(`${pf.api!.url}${path}`, { method, headers, body: init.body });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const tiPath = () => `/api/v1/dags/xc/dagRuns/${encodeURIComponent(runId)}/taskInstances/push`;

  it('serves the XCom entries of a task instance (not swallowed by the map-index route)', async () => {
    const { status, body } = await call('GET', `${tiPath()}/xcomEntries`, { token: VIEWER_TOKEN });
    expect(status).toBe(200);
    const entries = (body.xcom_entries as { key: string; value: unknown }[]).map((e) => [e.key, e.value]).sort();
    expect(entries).toEqual([
      ['return_value', 'done'],
      ['rows', 3],
    ]);
  });

  it('answers 400 naming map_index for a map index that is not an integer', async () => {
    const { status, body } = await call('GET', `${tiPath()}/abc`, { token: VIEWER_TOKEN });
    expect([status, body.detail]).toEqual([400, "path parameter map_index must be an integer (-1 for an unmapped task), got 'abc'"]);
    expect((await call('GET', `${tiPath()}/-1`, { token: VIEWER_TOKEN })).body).toMatchObject({ task_id: 'push', map_index: -1 });
  });

  it('refuses a form-encoded or text/plain trigger body with 415 instead of dropping the conf', async () => {
    const before = (await pf.store.listRuns('xc')).length;
    const form = await call('POST', '/api/v1/dags/xc/dagRuns', { body: '{"conf":{"seed":7}}', type: 'application/x-www-form-urlencoded' });
    expect([form.status, form.body.detail]).toEqual([
      415,
      "the request body must be JSON, but it was sent as application/x-www-form-urlencoded; send it with the header 'Content-Type: application/json' (curl: -H 'Content-Type: application/json')",
    ]);
    const text = await call('POST', '/api/v1/dags/xc/dagRuns', { body: '{"conf":{"seed":7}}', type: 'text/plain' });
    expect(text.status).toBe(415);
    expect((await pf.store.listRuns('xc')).length).toBe(before);
    const json = await call('POST', '/api/v1/dags/xc/dagRuns', { body: '{"conf":{"seed":7},"logical_date":"2026-01-01T00:00:00Z"}', type: 'application/json; charset=utf-8' });
    expect([json.status, json.body.conf]).toEqual([200, { seed: 7 }]);
    const empty = await call('POST', '/api/v1/dags/xc/dagRuns');
    expect(empty.status).toBe(200);
  });

  it('answers 400 for a JSON body nested deeper than 64 levels', async () => {
    const nest = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    const deep = await call('POST', '/api/v1/dags/xc/dagRuns', { body: `{"conf":${nest(20_000)}}`, type: 'application/json' });
    expect([deep.status, deep.body.detail]).toEqual([400, 'the JSON body is nested deeper than 64 levels; flatten it']);
    const justOver = await call('POST', '/api/v1/dags/xc/dagRuns', { body: `{"conf":${nest(64)}}`, type: 'application/json' });
    expect(justOver.status).toBe(400);
    const atLimit = await call('POST', '/api/v1/dags/xc/dagRuns', { body: `{"conf":${nest(62)},"logical_date":"2026-02-01T00:00:00Z"}`, type: 'application/json' });
    expect(atLimit.status).toBe(200);
  });

  it('reports a second trigger at the same logical date as a logical-date clash, naming the CLI flag and API field', async () => {
    const first = await call('POST', '/api/v1/dags/xc/dagRuns', { body: '{"logical_date":"2026-04-01T00:00:00Z"}', type: 'application/json' });
    expect(first.status).toBe(200);
    const again = await call('POST', '/api/v1/dags/xc/dagRuns', { body: '{"logical_date":"2026-04-01T00:00:00Z"}', type: 'application/json' });
    expect([again.status, again.body.detail]).toEqual([
      409,
      "DAG 'xc' already has a run for logical date 2026-04-01T00:00:00.000Z ('manual__2026-04-01T00:00:00.000Z'); pick another logical date (CLI --logical-date, API field logical_date) or clear that run",
    ]);
    const sameId = await call('POST', '/api/v1/dags/xc/dagRuns', { body: '{"logical_date":"2026-04-02T00:00:00Z","dag_run_id":"manual__2026-04-01T00:00:00.000Z"}', type: 'application/json' });
    expect([sameId.status, sameId.body.detail]).toEqual([
      409,
      "DAG 'xc' already has a run with id 'manual__2026-04-01T00:00:00.000Z'; pick another run id (CLI --run-id, API field dag_run_id)",
    ]);
  });

  it('describes dataset schedules in timetable_description', async () => {
    const { body } = await call('GET', '/api/v1/dags', { token: VIEWER_TOKEN });
    const desc = Object.fromEntries((body.dags as { dag_id: string; timetable_description: string | null }[]).map((d) => [d.dag_id, d.timetable_description]));
    expect(desc).toEqual({
      ds_one: 'on updates of dataset://x',
      ds_all: 'when all of: dataset://a, dataset://b are updated',
      ds_any: 'when any of: dataset://a, all of (dataset://b, dataset://c) is updated',
      xc: null,
    });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listExpressRoutes, routeKeys, routesInDocument } from '../../src/api/openapi.ts';
import { OPERATOR_TOKEN, startTestPodflow, VIEWER_TOKEN, type TestPodflow } from '../support/podflow.ts';

const DAG = `
import { dag } from 'podflow';
export default dag({ dag_id: 'api_dag', schedule: null }, (d) => {
  d.task('one', async () => 1);
});
`;

describe('REST API contract', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'api_dag.ts': DAG }, roles: { scheduler: true, api: true }, env: { PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000' } });
  });
  afterAll(async () => pf?.close());

  const call = (method: string, path: string, token?: string, body?: unknown) =>
    fetch(`${pf.api!.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('the OpenAPI document lists exactly the routes the server serves', async () => {
    const res = await call('GET', '/api/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Record<string, unknown>;
    const app = pf.api!.server.listeners('request')[0];
    const served = routeKeys(listExpressRoutes(app));
    expect(routeKeys(routesInDocument(doc))).toEqual(served);
    // The routes of issue 4 are all there.
    for (const r of [
      'GET /api/v1/dags/:dag_id/tasks',
      'GET /api/v1/dags/:dag_id/tasks/:task_id',
      'GET /api/v1/datasets',
      'GET /api/v1/datasets/:uri',
      'GET /api/v1/datasets/events',
      'POST /api/v1/datasets/events',
      'POST /hooks/:dag_id',
      'GET /api/v1/importErrors',
      'GET /api/v1/pools',
      'GET /api/v1/health',
    ]) {
      expect(served).toContain(r);
    }
  });

  it('answers 401 without a token and with an unknown one, as a problem with a WWW-Authenticate challenge', async () => {
    const none = await call('GET', '/api/v1/dags');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="podflow"');
    expect(await none.json()).toMatchObject({ status: 401, title: 'Unauthorized' });
    const wrong = await call('GET', '/api/v1/dags', 'not-a-configured-token-000');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="podflow", error="invalid_token"');
  });

  it('answers 403 to a viewer token on a mutating route, and lets it read', async () => {
    const res = await call('PATCH', '/api/v1/dags/api_dag', VIEWER_TOKEN, { is_paused: true });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { status: number; title: string; detail: string };
    expect([body.status, body.title]).toEqual([403, 'Forbidden']);
    expect(body.detail).toMatch(/^PATCH \/api\/v1\/dags\/api_dag needs the operator role; this token \(id [0-9a-f]{8}\) has viewer\./);
    expect((await call('GET', '/api/v1/dags/api_dag', VIEWER_TOKEN)).status).toBe(200);
    expect((await call('POST', '/api/v1/datasets/events', VIEWER_TOKEN, { dataset_uri: 'dataset://x' })).status).toBe(403);
  });

  it('answers 400 with { status, title, detail } for a bad body', async () => {
    const res = await call('POST', '/api/v1/dags/api_dag/dagRuns', OPERATOR_TOKEN, { conf: 'lr=0.1' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as { status: number; title: string; detail: string; type: string };
    expect({ status: body.status, title: body.title, detail: body.detail }).toEqual({
      status: 400,
      title: 'Bad Request',
      detail: "Invalid request body: field 'conf': Invalid input: expected record, received string",
    });
  });

  it('answers 409 for a second run at the same logical date', async () => {
    const first = await call('POST', '/api/v1/dags/api_dag/dagRuns', OPERATOR_TOKEN, { logical_date: '2026-03-01T00:00:00Z' });
    expect(first.status).toBe(200);
    const again = await call('POST', '/api/v1/dags/api_dag/dagRuns', OPERATOR_TOKEN, { logical_date: '2026-03-01T00:00:00Z', dag_run_id: 'other' });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({
      status: 409,
      title: 'Conflict',
      detail: "DAG 'api_dag' already has a run for logical date 2026-03-01T00:00:00.000Z ('manual__2026-03-01T00:00:00.000Z'); pick another logical date (CLI --logical-date, API field logical_date) or clear that run",
    });
  });
});

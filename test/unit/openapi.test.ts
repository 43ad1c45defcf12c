import { describe, expect, it } from 'vitest';
import express from 'express';
import { buildOpenApi, listExpressRoutes, RouteBook, routeKeys, routesInDocument, toExpressPath, toOpenApiPath, type RouteDoc } from '../../src/api/openapi.ts';
import { ApiProblem } from '../../src/api/problem.ts';
import {
  clearTaskInstancesBody,
  createDatasetEventBody,
  createPoolBody,
  listDagRunsQuery,
  parseBody,
  parseQuery,
  patchDagBody,
  patchDagRunStateBody,
  setTaskInstanceStateBody,
  triggerDagRunBody,
} from '../../src/api/validation.ts';

const ok = { 200: { description: 'OK' } };

const routes: RouteDoc[] = [
  { method: 'get', path: '/api/v1/health', summary: 'Health', role: 'public', responses: ok },
  { method: 'get', path: '/api/v1/dags/:dag_id', summary: 'Get a DAG', role: 'viewer', responses: ok },
  { method: 'patch', path: '/api/v1/dags/:dag_id', summary: 'Pause a DAG', role: 'operator', requestSchema: patchDagBody, responses: ok },
  { method: 'get', path: '/api/v1/dags/:dag_id/dagRuns', summary: 'List runs', role: 'viewer', querySchema: listDagRunsQuery, responses: ok },
  { method: 'post', path: '/api/v1/dags/:dag_id/dagRuns', summary: 'Trigger', role: 'operator', requestSchema: triggerDagRunBody, responses: ok },
  {
    method: 'get',
    path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id/taskInstances/:task_id/logs/:task_try_number',
    summary: 'Log of one try',
    role: 'viewer',
    responses: { 200: { description: 'Log', schema: { type: 'object' } } },
  },
  { method: 'delete', path: '/api/v1/pools/:pool_name', summary: 'Delete pool', role: 'admin', responses: { 204: { description: 'Deleted' } } },
  { method: 'post', path: '/hooks/:dag_id', summary: 'Webhook', role: 'public', requestContentType: '*/*', responses: ok },
];

function appWithRoutes() {
  const noop: express.RequestHandler = (_req, res) => res.end();
  const app = express();
  app.use(express.json());
  app.get('/api/v1/health', noop);
  const v1 = express.Router();
  v1.use((_req, _res, next) => next());
  v1.route('/dags/:dag_id').get(noop).patch(noop);
  v1.get('/dags/:dag_id/dagRuns', noop);
  v1.post('/dags/:dag_id/dagRuns', noop);
  const ti = express.Router();
  ti.get('/:task_id/logs/:task_try_number', noop);
  v1.use('/dags/:dag_id/dagRuns/:dag_run_id/taskInstances', ti);
  v1.delete('/pools/:pool_name', noop);
  app.use('/api/v1/', v1);
  app.post('/hooks/:dag_id', noop);
  return app;
}

describe('listExpressRoutes', () => {
  it('walks mounted routers and lists each method once, without the implicit HEAD', () => {
    expect(routeKeys(listExpressRoutes(appWithRoutes()))).toEqual([
      'DELETE /api/v1/pools/:pool_name',
      'GET /api/v1/dags/:dag_id',
      'GET /api/v1/dags/:dag_id/dagRuns',
      'GET /api/v1/dags/:dag_id/dagRuns/:dag_run_id/taskInstances/:task_id/logs/:task_try_number',
      'GET /api/v1/health',
      'PATCH /api/v1/dags/:dag_id',
      'POST /api/v1/dags/:dag_id/dagRuns',
      'POST /hooks/:dag_id',
    ]);
  });

  it('lists .all() routes as method "all" and a router mounted at the root', () => {
    const r = express.Router();
    r.all('/ping', (_req, res) => res.end());
    const app = express();
    app.use(r);
    expect(listExpressRoutes(app)).toEqual([{ method: 'all', path: '/ping' }]);
  });
});

describe('buildOpenApi', () => {
  const doc = buildOpenApi(routes) as {
    openapi: string;
    paths: Record<string, Record<string, Record<string, unknown>>>;
    components: { securitySchemes: Record<string, unknown>; responses: Record<string, unknown> };
  };

  it('lists exactly the routes the server has', () => {
    expect(routeKeys(routesInDocument(doc))).toEqual(routeKeys(listExpressRoutes(appWithRoutes())));
  });

  it('converts Express params to OpenAPI templates and declares them', () => {
    expect(toOpenApiPath('/api/v1/dags/:dag_id/files/*path')).toBe('/api/v1/dags/{dag_id}/files/{path}');
    expect(toExpressPath('/api/v1/dags/{dag_id}')).toBe('/api/v1/dags/:dag_id');
    expect(() => toOpenApiPath('/api/v1/dags{/:dag_id}')).toThrow(/optional group/);
    const op = doc.paths['/api/v1/dags/{dag_id}'].get;
    expect(op.parameters).toEqual([{ name: 'dag_id', in: 'path', required: true, schema: { type: 'string' } }]);
    expect(op.operationId).toBe('get_api_v1_dags_by_dag_id');
  });

  it('describes request bodies from zod and adds the problems a route can answer', () => {
    const op = doc.paths['/api/v1/dags/{dag_id}'].patch;
    expect(op.requestBody).toEqual({
      required: true,
      content: {
        'application/json': {
          schema: { type: 'object', properties: { is_paused: { type: 'boolean' } }, required: ['is_paused'], additionalProperties: false },
        },
      },
    });
    expect(Object.keys(op.responses as object).sort()).toEqual(['200', '400', '401', '403', '404']);
    expect((op.responses as Record<string, unknown>)['403']).toEqual({ $ref: '#/components/responses/PermissionDenied' });
    expect(op.security).toEqual([{ bearerAuth: [] }]);
    expect(op['x-podflow-role']).toBe('operator');
  });

  it('turns a query schema into query parameters', () => {
    const params = doc.paths['/api/v1/dags/{dag_id}/dagRuns'].get.parameters as { name: string; in: string }[];
    expect(params.filter((p) => p.in === 'query').map((p) => p.name)).toEqual([
      'limit', 'offset', 'order_by', 'state', 'execution_date_gte', 'execution_date_lte', 'start_date_gte', 'start_date_lte', 'end_date_gte', 'end_date_lte',
    ]);
  });

  it('marks public routes as needing no token and declares the bearer scheme', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/api/v1/health'].get.security).toEqual([]);
    expect(Object.keys(doc.paths['/api/v1/health'].get.responses as object)).toEqual(['200']);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.responses.NotFound).toBeDefined();
  });

  it('refuses a route documented twice', () => {
    expect(() => buildOpenApi([routes[1], routes[1]])).toThrow('Route GET /api/v1/dags/:dag_id is documented twice');
  });

  it('is valid JSON for every body schema', () => {
    const all = [triggerDagRunBody, clearTaskInstancesBody, createPoolBody, createDatasetEventBody, setTaskInstanceStateBody, patchDagRunStateBody];
    const d = buildOpenApi(all.map((s, i) => ({ method: 'post' as const, path: `/x${i}`, summary: 's', role: 'operator' as const, requestSchema: s, responses: ok })));
    expect(() => JSON.stringify(d)).not.toThrow();
  });
});

describe('RouteBook', () => {
  it('registers each route with its before-handlers and documents exactly those routes', async () => {
    const app = express();
    const seen: string[] = [];
    const book = new RouteBook(app, { before: (doc) => [(_req, _res, next) => (seen.push(`${doc.role}`), next())] });
    for (const r of routes) book.add(r, (_req, res) => res.json({ route: r.summary }));
    const docRoute: RouteDoc = { method: 'get', path: '/api/v1/openapi.json', summary: 'OpenAPI document', role: 'public', responses: ok };
    book.add(docRoute, (_req, res) => res.json(book.document()));
    expect(routeKeys(routesInDocument(book.document()))).toEqual(routeKeys(listExpressRoutes(app)));
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((r) => server.once('listening', () => r()));
    try {
      const { port } = server.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/dags/etl`);
      expect(await res.json()).toEqual({ route: 'Get a DAG' });
      expect(seen).toEqual(['viewer']);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('refuses a route without a handler', () => {
    expect(() => new RouteBook(express()).add(routes[0])).toThrow('Route GET /api/v1/health has no handler');
  });
});

describe('request body validation', () => {
  const detailOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      if (e instanceof ApiProblem) return `${e.status} ${e.detail}`;
      throw e;
    }
    throw new Error('expected an ApiProblem');
  };

  it('accepts a trigger with conf and fills nothing it was not given', () => {
    expect(parseBody(triggerDagRunBody, { dag_run_id: 'manual__1', logical_date: '2026-12-03T00:00:00Z', conf: { lr: 0.1, tags: ['a'] } })).toEqual({
      dag_run_id: 'manual__1',
      logical_date: '2026-12-03T00:00:00Z',
      conf: { lr: 0.1, tags: ['a'] },
    });
    expect(parseBody(triggerDagRunBody, undefined)).toEqual({});
  });

  it('names every bad field of a trigger', () => {
    expect(detailOf(() => parseBody(triggerDagRunBody, { logical_date: 'yesterday', conf: 'x', extra: 1 }))).toBe(
      "400 Invalid request body: field 'logical_date': Invalid ISO datetime; field 'conf': Invalid input: expected record, received string; unknown field 'extra'",
    );
  });

  it('applies Airflow defaults to clearTaskInstances', () => {
    expect(parseBody(clearTaskInstancesBody, { task_ids: ['train'], dag_run_id: 'r1' })).toEqual({
      task_ids: ['train'],
      dag_run_id: 'r1',
      dry_run: true,
      only_failed: true,
      only_running: false,
      reset_dag_runs: true,
      include_upstream: false,
      include_downstream: false,
      include_future: false,
      include_past: false,
    });
  });

  it('validates states, pools and dataset events', () => {
    expect(parseBody(patchDagRunStateBody, { state: 'failed' })).toEqual({ state: 'failed' });
    expect(detailOf(() => parseBody(patchDagRunStateBody, { state: 'running' }))).toBe(
      `400 Invalid request body: field 'state': Invalid option: expected one of "success"|"failed"|"queued"`,
    );
    expect(parseBody(setTaskInstanceStateBody, { new_state: 'success' })).toEqual({
      new_state: 'success', dry_run: false, include_upstream: false, include_downstream: false,
    });
    expect(detailOf(() => parseBody(createPoolBody, { name: 'gpu pool', slots: 1.5 }))).toBe(
      "400 Invalid request body: field 'name': use letters, digits and _ . - only; field 'slots': Invalid input: expected int, received number",
    );
    expect(parseBody(createDatasetEventBody, { dataset_uri: 's3://labels/iris.csv', extra: { rows: 150 } })).toEqual({
      dataset_uri: 's3://labels/iris.csv', extra: { rows: 150 },
    });
  });

  it('coerces list query parameters and reports bad ones', () => {
    expect(parseQuery(listDagRunsQuery, { limit: '5', state: 'failed,running' })).toEqual({ limit: 5, offset: 0, state: ['failed', 'running'] });
    expect(detailOf(() => parseQuery(listDagRunsQuery, { limit: '0' }))).toBe(
      "400 Invalid query parameters: field 'limit': Too small: expected number to be >=1",
    );
  });

  it('rejects a non-JSON conf value such as a function', () => {
    expect(detailOf(() => parseBody(triggerDagRunBody, { conf: { f: () => 1 } }))).toMatch(/^400 Invalid request body: field 'conf\.f'/);
  });
});


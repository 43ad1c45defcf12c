import type { Request } from 'express';
import { z } from 'zod';
import type { DagSpec } from '../../dag/types.ts';
import { DagRunExistsError, type StateStore } from '../../state/store.ts';
import { triggerDagRun, TriggerError } from '../../scheduler/trigger.ts';
import { clearTasks, setRunState, setTaskState } from '../../scheduler/task-actions.ts';
import { badRequest, conflict, notFound } from '../problem.ts';
import { dagRunToApi, dagToApi, runDetail, taskInstanceToApi } from '../serializers.ts';
import type { ApiDeps, ApiRoute } from '../server.ts';
import {
  clearTaskInstancesBody,
  createPoolBody,
  listDagRunsQuery,
  pagingQuery,
  parseBody,
  parseQuery,
  patchDagBody,
  patchDagRunStateBody,
  patchPoolBody,
  setTaskInstanceStateBody,
  triggerDagRunBody,
} from '../validation.ts';

const p = (req: Request, name: string): string => String(req.params[name]);

async function requireDag(store: StateStore, dagId: string): Promise<DagSpec> {
  const dag = await store.getDag(dagId);
  if (!dag) {
    const errs = await store.importErrors();
    const hint = errs.some((e) => e.dag_id === dagId) ? ' It has an import error: see GET /api/v1/importErrors.' : ' See GET /api/v1/dags for the DAGs Podflow knows.';
    throw notFound(`DAG '${dagId}' is not defined.${hint}`);
  }
  return dag;
}

async function requireRun(store: StateStore, dagId: string, runId: string) {
  const run = await store.getRun(dagId, runId);
  if (!run) throw notFound(`DAG '${dagId}' has no run '${runId}'; list its runs with GET /api/v1/dags/${dagId}/dagRuns`);
  return run;
}

const tiPath = '/api/v1/dags/:dag_id/dagRuns/:dag_run_id/taskInstances/:task_id';

/** Airflow's stable REST API: DAGs, DAG runs, task instances, logs, XComs, pools, import errors, health. */
export function coreRoutes({ store }: ApiDeps): ApiRoute[] {
  const listDags = async (req: Request) => {
    const q = parseQuery(pagingQuery.extend({ tags: z.string().optional(), paused: z.enum(['true', 'false']).optional() }), req.query);
    const errs = new Set((await store.importErrors()).map((e) => e.dag_id));
    const all = [];
    for (const id of await store.dagIds()) {
      const spec = await store.getDag(id);
      if (!spec) continue;
      const meta = await store.getDagMeta(id);
      if (q.paused !== undefined && String(meta?.is_paused ?? false) !== q.paused) continue;
      if (q.tags && !q.tags.split(',').some((t) => spec.tags.includes(t))) continue;
      all.push(dagToApi(spec, meta, errs.has(id)));
    }
    return { dags: all.slice(q.offset, q.offset + q.limit), total_entries: all.length };
  };

  return [
    {
      method: 'get',
      path: '/healthz',
      summary: 'Liveness and Redis reachability',
      role: 'public',
      responses: { 200: { description: 'healthy' }, 503: { description: 'Redis unreachable' } },
      handler: async (_req, res) => {
        try {
          await store.redis.ping();
          return { status: 'healthy', redis: 'ok' };
        } catch (e) {
          res.status(503).json({ status: 'unhealthy', redis: (e as Error).message });
          return undefined;
        }
      },
    },
    {
      method: 'get',
      path: '/api/v1/health',
      summary: 'Health of the metadata store and scheduler (Airflow shape)',
      role: 'public',
      responses: { 200: { description: 'health' } },
      handler: async () => {
        let ok = true;
        try {
          await store.redis.ping();
        } catch {
          ok = false;
        }
        return { metadatabase: { status: ok ? 'healthy' : 'unhealthy' }, scheduler: { status: ok ? 'healthy' : 'unhealthy' } };
      },
    },
    { method: 'get', path: '/api/v1/dags', summary: 'List DAGs', role: 'viewer', querySchema: pagingQuery, responses: { 200: { description: 'DAG collection' } }, handler: listDags },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id',
      summary: 'Get a DAG',
      role: 'viewer',
      responses: { 200: { description: 'DAG' } },
      handler: async (req) => {
        const spec = await requireDag(store, p(req, 'dag_id'));
        const errs = await store.importErrors();
        return dagToApi(spec, await store.getDagMeta(spec.dag_id), errs.some((e) => e.dag_id === spec.dag_id));
      },
    },
    {
      method: 'patch',
      path: '/api/v1/dags/:dag_id',
      summary: 'Pause or unpause a DAG',
      role: 'operator',
      requestSchema: patchDagBody,
      responses: { 200: { description: 'DAG' } },
      handler: async (req) => {
        const body = parseBody(patchDagBody, req.body);
        const spec = await requireDag(store, p(req, 'dag_id'));
        await store.setPaused(spec.dag_id, body.is_paused);
        return dagToApi(spec, await store.getDagMeta(spec.dag_id), false);
      },
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/dagRuns',
      summary: 'List DAG runs (newest first), with filters and paging',
      role: 'viewer',
      querySchema: listDagRunsQuery,
      responses: { 200: { description: 'DAG run collection' } },
      handler: async (req) => {
        const q = parseQuery(listDagRunsQuery, req.query);
        const dagId = p(req, 'dag_id');
        await requireDag(store, dagId);
        const within = (v: string | null, gte?: string, lte?: string) =>
          (!gte || (v !== null && v >= new Date(gte).toISOString())) && (!lte || (v !== null && v <= new Date(lte).toISOString()));
        const all = (await store.listRuns(dagId, { limit: 100_000 })).filter(
          (r) =>
            (!q.state || q.state.includes(r.state)) &&
            within(r.logical_date, q.execution_date_gte, q.execution_date_lte) &&
            within(r.start_date, q.start_date_gte, q.start_date_lte) &&
            within(r.end_date, q.end_date_gte, q.end_date_lte),
        );
        return { dag_runs: all.slice(q.offset, q.offset + q.limit).map(dagRunToApi), total_entries: all.length };
      },
    },
    {
      method: 'post',
      path: '/api/v1/dags/:dag_id/dagRuns',
      summary: 'Trigger a DAG run with conf',
      role: 'operator',
      requestSchema: triggerDagRunBody,
      status: 200,
      responses: { 200: { description: 'the new DAG run' }, 409: { description: 'a run with this id or logical date exists' } },
      handler: async (req) => {
        const body = parseBody(triggerDagRunBody, req.body);
        const dag = await requireDag(store, p(req, 'dag_id'));
        try {
          const run = await triggerDagRun(store, dag, {
            conf: body.conf as Record<string, never> | undefined,
            dag_run_id: body.dag_run_id ?? undefined,
            logical_date: body.logical_date ?? body.execution_date ?? undefined,
            note: body.note ?? null,
          });
          return dagRunToApi(run);
        } catch (e) {
          if (e instanceof DagRunExistsError) throw conflict(e.message);
          if (e instanceof TriggerError) throw badRequest(e.message);
          throw e;
        }
      },
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id',
      summary: 'Get a DAG run',
      role: 'viewer',
      responses: { 200: { description: 'DAG run' } },
      handler: async (req) => dagRunToApi(await requireRun(store, p(req, 'dag_id'), p(req, 'dag_run_id'))),
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id/details',
      summary: 'A DAG run with every task instance, its XComs and metrics (Podflow)',
      role: 'viewer',
      responses: { 200: { description: 'DAG run detail' } },
      handler: async (req) => runDetail(store, await requireRun(store, p(req, 'dag_id'), p(req, 'dag_run_id'))),
    },
    {
      method: 'patch',
      path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id',
      summary: 'Set a DAG run state (success, failed, queued)',
      role: 'operator',
      requestSchema: patchDagRunStateBody,
      responses: { 200: { description: 'DAG run' } },
      handler: async (req) => {
        const body = parseBody(patchDagRunStateBody, req.body);
        const dag = await requireDag(store, p(req, 'dag_id'));
        await requireRun(store, dag.dag_id, p(req, 'dag_run_id'));
        await setRunState(store, dag, p(req, 'dag_run_id'), body.state);
        return dagRunToApi((await store.getRun(dag.dag_id, p(req, 'dag_run_id')))!);
      },
    },
    {
      method: 'delete',
      path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id',
      summary: 'Delete a DAG run with its task instances, XComs and logs',
      role: 'operator',
      responses: { 204: { description: 'deleted' } },
      handler: async (req) => {
        const run = await requireRun(store, p(req, 'dag_id'), p(req, 'dag_run_id'));
        if (run.state === 'running' || run.state === 'queued') {
          const dag = await store.getDag(run.dag_id);
          if (dag) await setRunState(store, dag, run.dag_run_id, 'failed');
        }
        await store.deleteRun(run.dag_id, run.dag_run_id);
        return undefined;
      },
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id/taskInstances',
      summary: 'List the task instances of a DAG run',
      role: 'viewer',
      responses: { 200: { description: 'task instance collection' } },
      handler: async (req) => {
        const run = await requireRun(store, p(req, 'dag_id'), p(req, 'dag_run_id'));
        const tis = await store.listTis(run.dag_id, run.dag_run_id);
        return { task_instances: tis.map((t) => taskInstanceToApi(t, run)), total_entries: tis.length };
      },
    },
    {
      method: 'get',
      path: tiPath,
      summary: 'Get a task instance (map index -1, or the first mapped one)',
      role: 'viewer',
      responses: { 200: { description: 'task instance' } },
      handler: async (req) => {
        const run = await requireRun(store, p(req, 'dag_id'), p(req, 'dag_run_id'));
        const tis = (await store.listTis(run.dag_id, run.dag_run_id)).filter((t) => t.task_id === p(req, 'task_id'));
        if (!tis.length) throw notFound(`run '${run.dag_run_id}' of DAG '${run.dag_id}' has no task '${p(req, 'task_id')}'`);
        return taskInstanceToApi(tis[0], run);
      },
    },
    {
      method: 'patch',
      path: tiPath,
      summary: 'Mark a task instance success, failed or skipped (a running try is stopped)',
      role: 'operator',
      requestSchema: setTaskInstanceStateBody,
      responses: { 200: { description: 'changed task instances' } },
      handler: async (req) => {
        const body = parseBody(setTaskInstanceStateBody, req.body);
        const run = await requireRun(store, p(req, 'dag_id'), p(req, 'dag_run_id'));
        const changed = await setTaskState(store, run.dag_id, run.dag_run_id, p(req, 'task_id'), body.new_state, {
          mapIndex: body.map_index,
          dryRun: body.dry_run,
        });
        return { task_instances: changed.map((t) => taskInstanceToApi(t, run)) };
      },
    },
    {
      method: 'post',
      path: '/api/v1/dags/:dag_id/clearTaskInstances',
      summary: 'Clear task instances (optionally with downstream) so they run again',
      role: 'operator',
      requestSchema: clearTaskInstancesBody,
      responses: { 200: { description: 'cleared task instances' } },
      handler: async (req) => {
        const body = parseBody(clearTaskInstancesBody, req.body);
        const dag = await requireDag(store, p(req, 'dag_id'));
        const runIds = body.dag_run_id ? [body.dag_run_id] : (await store.listRuns(dag.dag_id, { limit: 100_000 })).map((r) => r.dag_run_id);
        const out = [];
        for (const runId of runIds) {
          await requireRun(store, dag.dag_id, runId);
          const cleared = await clearTasks(store, dag, runId, {
            taskIds: body.task_ids ?? dag.tasks.map((t) => t.task_id),
            includeDownstream: body.include_downstream,
            includeUpstream: body.include_upstream,
            onlyFailed: body.only_failed,
            dryRun: body.dry_run,
          });
          out.push(...cleared.map((t) => ({ dag_id: t.dag_id, dag_run_id: t.dag_run_id, task_id: t.task_id, map_index: t.map_index })));
        }
        return { task_instances: out };
      },
    },
    {
      method: 'get',
      path: `${tiPath}/logs/:task_try_number`,
      summary: 'The log of one try',
      role: 'viewer',
      responses: { 200: { description: 'log content' } },
      handler: async (req) => {
        const key = { dag_id: p(req, 'dag_id'), dag_run_id: p(req, 'dag_run_id'), task_id: p(req, 'task_id'), map_index: Number(req.query.map_index ?? -1) };
        const ti = await store.getTi(key);
        if (!ti) throw notFound(`no task instance ${key.task_id} in run '${key.dag_run_id}' of DAG '${key.dag_id}'`);
        const tryNumber = Number(p(req, 'task_try_number'));
        if (!Number.isInteger(tryNumber) || tryNumber < 1 || tryNumber > ti.try_number) {
          throw notFound(`task '${key.task_id}' has tries 1..${ti.try_number}; there is no try ${p(req, 'task_try_number')}`);
        }
        const lines = await store.readLog(key, tryNumber);
        return { content: lines.join('\n'), continuation_token: null };
      },
    },
    {
      method: 'get',
      path: `${tiPath}/xcomEntries`,
      summary: 'XCom entries of a task instance',
      role: 'viewer',
      responses: { 200: { description: 'XCom collection' } },
      handler: async (req) => {
        const key = { dag_id: p(req, 'dag_id'), dag_run_id: p(req, 'dag_run_id'), task_id: p(req, 'task_id'), map_index: Number(req.query.map_index ?? -1) };
        const x = await store.getXcoms(key);
        const entries = Object.entries(x).map(([k, value]) => ({ key: k, value, ...key }));
        return { xcom_entries: entries, total_entries: entries.length };
      },
    },
    {
      method: 'get',
      path: `${tiPath}/:map_index`,
      // Registered after every literal `${tiPath}/<word>` route (logs, xcomEntries) so it does not swallow them.
      summary: 'Get a mapped task instance',
      role: 'viewer',
      responses: { 200: { description: 'task instance' } },
      handler: async (req) => {
        const raw = p(req, 'map_index');
        if (!/^-?\d+$/.test(raw)) throw badRequest(`path parameter map_index must be an integer (-1 for an unmapped task), got '${raw}'`);
        const run = await requireRun(store, p(req, 'dag_id'), p(req, 'dag_run_id'));
        const ti = await store.getTi({ dag_id: run.dag_id, dag_run_id: run.dag_run_id, task_id: p(req, 'task_id'), map_index: Number(raw) });
        if (!ti) throw notFound(`no task instance ${p(req, 'task_id')}[${p(req, 'map_index')}] in run '${run.dag_run_id}'`);
        return taskInstanceToApi(ti, run);
      },
    },
    {
      method: 'get',
      path: '/api/v1/importErrors',
      summary: 'DAG files that failed to load',
      role: 'viewer',
      responses: { 200: { description: 'import error collection' } },
      handler: async () => {
        const errs = await store.importErrors();
        return { import_errors: errs, total_entries: errs.length };
      },
    },
    {
      method: 'get',
      path: '/api/v1/pools',
      summary: 'List pools with their occupancy',
      role: 'viewer',
      responses: { 200: { description: 'pool collection' } },
      handler: async () => {
        const pools = (await store.listPools()).map(poolToApi);
        return { pools, total_entries: pools.length };
      },
    },
    {
      method: 'get',
      path: '/api/v1/pools/:pool_name',
      summary: 'Get a pool',
      role: 'viewer',
      responses: { 200: { description: 'pool' } },
      handler: async (req) => {
        const pool = await store.getPool(p(req, 'pool_name'));
        if (!pool) throw notFound(`pool '${p(req, 'pool_name')}' does not exist`);
        return poolToApi(pool);
      },
    },
    {
      method: 'post',
      path: '/api/v1/pools',
      summary: 'Create (or resize) a pool',
      role: 'operator',
      requestSchema: createPoolBody,
      responses: { 200: { description: 'pool' } },
      handler: async (req) => {
        const body = parseBody(createPoolBody, req.body);
        await store.putPool({ name: body.name, slots: body.slots, description: body.description ?? null });
        return poolToApi((await store.getPool(body.name))!);
      },
    },
    {
      method: 'patch',
      path: '/api/v1/pools/:pool_name',
      summary: 'Resize or describe a pool',
      role: 'operator',
      requestSchema: patchPoolBody,
      responses: { 200: { description: 'pool' } },
      handler: async (req) => {
        const body = parseBody(patchPoolBody, req.body);
        const cur = await store.getPool(p(req, 'pool_name'));
        if (!cur) throw notFound(`pool '${p(req, 'pool_name')}' does not exist; create it with POST /api/v1/pools`);
        await store.putPool({ name: cur.name, slots: body.slots ?? cur.slots, description: body.description ?? cur.description });
        return poolToApi((await store.getPool(cur.name))!);
      },
    },
    {
      method: 'delete',
      path: '/api/v1/pools/:pool_name',
      summary: 'Delete a pool',
      role: 'operator',
      responses: { 204: { description: 'deleted' } },
      handler: async (req) => {
        if (p(req, 'pool_name') === 'default_pool') throw badRequest('default_pool cannot be deleted; resize it instead');
        if (!(await store.deletePool(p(req, 'pool_name')))) throw notFound(`pool '${p(req, 'pool_name')}' does not exist`);
        return undefined;
      },
    },
  ];
}

function poolToApi(pool: { name: string; slots: number; description: string | null; occupied_slots: number }) {
  return { name: pool.name, slots: pool.slots, occupied_slots: pool.occupied_slots, open_slots: Math.max(0, pool.slots - pool.occupied_slots), description: pool.description };
}

import type { Request } from 'express';
import { z } from 'zod';
import type { DagSpec, TaskSpec } from '../../dag/types.ts';
import type { StateStore } from '../../state/store.ts';
import { notFound } from '../problem.ts';
import { dagRunToApi, dagToApi, taskInstanceToApi } from '../serializers.ts';
import type { ApiDeps, ApiRoute } from '../server.ts';
import { isoDateTime, parseBody, setNoteBody } from '../validation.ts';

const p = (req: Request, name: string): string => String(req.params[name]);

const dateRange = {
  execution_date_gte: isoDateTime.optional(),
  execution_date_lte: isoDateTime.optional(),
  start_date_gte: isoDateTime.optional(),
  start_date_lte: isoDateTime.optional(),
  end_date_gte: isoDateTime.optional(),
  end_date_lte: isoDateTime.optional(),
};

/** POST /api/v1/dags/~/dagRuns/list (Airflow's ListDagRunsForm). */
export const listDagRunsBatchBody = z.strictObject({
  order_by: z.enum(['execution_date', '-execution_date', 'start_date', '-start_date', 'end_date', '-end_date', 'dag_run_id', '-dag_run_id']).optional(),
  page_offset: z.number().int().min(0).default(0),
  page_limit: z.number().int().min(1).max(1000).default(100),
  dag_ids: z.array(z.string().min(1)).optional(),
  states: z.array(z.enum(['queued', 'running', 'success', 'failed'])).optional(),
  ...dateRange,
});

const TI_STATES = ['none', 'scheduled', 'queued', 'running', 'success', 'failed', 'up_for_retry', 'up_for_reschedule', 'upstream_failed', 'skipped', 'removed'] as const;

/** POST /api/v1/dags/~/dagRuns/~/taskInstances/list (Airflow's ListTaskInstanceForm). */
export const listTaskInstancesBatchBody = z.strictObject({
  page_offset: z.number().int().min(0).default(0),
  page_limit: z.number().int().min(1).max(1000).default(100),
  dag_ids: z.array(z.string().min(1)).optional(),
  dag_run_ids: z.array(z.string().min(1)).optional(),
  task_ids: z.array(z.string().min(1)).optional(),
  state: z.array(z.enum(TI_STATES)).optional(),
  pool: z.array(z.string().min(1)).optional(),
  ...dateRange,
});

type DateFilter = Partial<Record<keyof typeof dateRange, string>>;

function withinDates(run: { logical_date: string; start_date: string | null; end_date: string | null }, f: DateFilter): boolean {
  const within = (v: string | null, gte?: string, lte?: string) =>
    (!gte || (v !== null && v >= new Date(gte).toISOString())) && (!lte || (v !== null && v <= new Date(lte).toISOString()));
  return (
    within(run.logical_date, f.execution_date_gte, f.execution_date_lte) &&
    within(run.start_date, f.start_date_gte, f.start_date_lte) &&
    within(run.end_date, f.end_date_gte, f.end_date_lte)
  );
}

async function runsOf(store: StateStore, dagIds: string[] | undefined) {
  const ids = dagIds ?? (await store.dagIds());
  return (await Promise.all(ids.map((id) => store.listRuns(id, { limit: 100_000 })))).flat();
}

async function requireDag(store: StateStore, dagId: string): Promise<DagSpec> {
  const dag = await store.getDag(dagId);
  if (!dag) throw notFound(`DAG '${dagId}' is not defined; see GET /api/v1/dags for the DAGs Podflow knows, and GET /api/v1/importErrors for files that failed to load`);
  return dag;
}

const timeDelta = (ms: number | null) =>
  ms === null ? null : { __type: 'TimeDelta', days: Math.floor(ms / 86_400_000), seconds: Math.floor((ms % 86_400_000) / 1000), microseconds: (ms % 1000) * 1000 };

/** A task as Airflow's `GET /dags/{dag_id}/tasks` returns it (plus Podflow's operator_args, inlets and outlets). */
export function taskToApi(dag: DagSpec, t: TaskSpec) {
  return {
    task_id: t.task_id,
    operator_name: t.operator,
    class_ref: { module_path: 'podflow', class_name: t.operator },
    owner: dag.owner,
    start_date: dag.start_date,
    end_date: dag.end_date,
    trigger_rule: t.trigger_rule,
    depends_on_past: t.depends_on_past,
    wait_for_downstream: t.wait_for_downstream,
    is_mapped: t.expand !== null,
    retries: t.retries,
    retry_delay: timeDelta(t.retry_delay_ms),
    retry_exponential_backoff: t.retry_exponential_backoff,
    execution_timeout: timeDelta(t.execution_timeout_ms),
    queue: t.queue,
    pool: t.pool,
    pool_slots: t.pool_slots,
    priority_weight: t.priority_weight,
    weight_rule: t.weight_rule,
    downstream_task_ids: t.downstream_task_ids,
    upstream_task_ids: t.upstream_task_ids,
    task_group: t.task_group,
    doc_md: t.doc,
    inlets: t.inlets,
    outlets: t.outlets,
    operator_args: t.operator_args,
    extra_links: [],
    template_fields: [],
  };
}

/** The parts of Airflow's stable REST API that the core routes leave out. */
export function stableApiRoutes({ store }: ApiDeps): ApiRoute[] {
  return [
    {
      method: 'get',
      path: '/api/v1/version',
      summary: 'Podflow version',
      role: 'viewer',
      responses: { 200: { description: 'version' } },
      handler: () => ({ version: process.env.npm_package_version ?? '0.1.0', git_version: null }),
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/details',
      summary: 'A DAG with every setting (Airflow DAGDetail)',
      role: 'viewer',
      responses: { 200: { description: 'DAG detail' } },
      handler: async (req) => {
        const dag = await requireDag(store, p(req, 'dag_id'));
        const errs = await store.importErrors();
        return {
          ...dagToApi(dag, await store.getDagMeta(dag.dag_id), errs.some((e) => e.dag_id === dag.dag_id)),
          dagrun_timeout: timeDelta(dag.dagrun_timeout_ms),
          dataset_expression: dag.schedule.datasets,
          extra: dag.extra,
        };
      },
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/tasks',
      summary: "A DAG's tasks",
      role: 'viewer',
      responses: { 200: { description: 'task collection' } },
      handler: async (req) => {
        const dag = await requireDag(store, p(req, 'dag_id'));
        const orderBy = typeof req.query.order_by === 'string' ? req.query.order_by : 'task_id';
        const desc = orderBy.startsWith('-');
        const field = (desc ? orderBy.slice(1) : orderBy) as keyof TaskSpec;
        const tasks = [...dag.tasks].sort((a, b) => {
          const x = String(a[field] ?? '');
          const y = String(b[field] ?? '');
          return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
        });
        return { tasks: tasks.map((t) => taskToApi(dag, t)), total_entries: tasks.length };
      },
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/tasks/:task_id',
      summary: 'One task of a DAG',
      role: 'viewer',
      responses: { 200: { description: 'task' } },
      handler: async (req) => {
        const dag = await requireDag(store, p(req, 'dag_id'));
        const t = dag.tasks.find((x) => x.task_id === p(req, 'task_id'));
        if (!t) throw notFound(`DAG '${dag.dag_id}' has no task '${p(req, 'task_id')}'; its tasks are ${dag.tasks.map((x) => x.task_id).join(', ')}`);
        return taskToApi(dag, t);
      },
    },
    {
      method: 'patch',
      path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id/setNote',
      summary: 'Set the note of a DAG run',
      role: 'operator',
      requestSchema: setNoteBody,
      responses: { 200: { description: 'DAG run' } },
      handler: async (req) => {
        const body = parseBody(setNoteBody, req.body);
        const dagId = p(req, 'dag_id');
        const runId = p(req, 'dag_run_id');
        if (!(await store.getRun(dagId, runId))) throw notFound(`DAG '${dagId}' has no run '${runId}'; list its runs with GET /api/v1/dags/${dagId}/dagRuns`);
        await store.updateRun(dagId, runId, { note: body.note });
        return dagRunToApi((await store.getRun(dagId, runId))!);
      },
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id/taskInstances/:task_id/xcomEntries/:xcom_key',
      summary: 'One XCom entry of a task instance',
      role: 'viewer',
      responses: { 200: { description: 'XCom entry' } },
      handler: async (req) => {
        const key = { dag_id: p(req, 'dag_id'), dag_run_id: p(req, 'dag_run_id'), task_id: p(req, 'task_id'), map_index: Number(req.query.map_index ?? -1) };
        const xcoms = await store.getXcoms(key);
        const k = p(req, 'xcom_key');
        if (!(k in xcoms)) {
          throw notFound(`task '${key.task_id}' (map index ${key.map_index}) of run '${key.dag_run_id}' has no XCom '${k}'; its keys: ${Object.keys(xcoms).join(', ') || '(none)'}`);
        }
        return { key: k, value: xcoms[k], ...key };
      },
    },
    {
      method: 'post',
      path: '/api/v1/dags/~/dagRuns/list',
      summary: 'List DAG runs across DAGs (batch form of the list endpoint)',
      role: 'viewer',
      requestSchema: listDagRunsBatchBody,
      responses: { 200: { description: 'DAG run collection' } },
      handler: async (req) => {
        const b = parseBody(listDagRunsBatchBody, req.body);
        const field = (b.order_by ?? 'execution_date').replace(/^-/, '');
        const key = field === 'execution_date' ? 'logical_date' : (field as 'start_date' | 'end_date' | 'dag_run_id');
        const desc = b.order_by?.startsWith('-') ?? false;
        const all = (await runsOf(store, b.dag_ids))
          .filter((r) => (!b.states || b.states.includes(r.state)) && withinDates(r, b))
          .sort((x, y) => ((x[key] ?? '') < (y[key] ?? '') ? -1 : (x[key] ?? '') > (y[key] ?? '') ? 1 : 0) * (desc ? -1 : 1));
        return { dag_runs: all.slice(b.page_offset, b.page_offset + b.page_limit).map(dagRunToApi), total_entries: all.length };
      },
    },
    {
      method: 'post',
      path: '/api/v1/dags/~/dagRuns/~/taskInstances/list',
      summary: 'List task instances across DAGs and runs (batch form)',
      role: 'viewer',
      requestSchema: listTaskInstancesBatchBody,
      responses: { 200: { description: 'task instance collection' } },
      handler: async (req) => {
        const b = parseBody(listTaskInstancesBatchBody, req.body);
        const runs = (await runsOf(store, b.dag_ids)).filter((r) => (!b.dag_run_ids || b.dag_run_ids.includes(r.dag_run_id)) && withinDates(r, b));
        const out = [];
        for (const run of runs) {
          for (const ti of await store.listTis(run.dag_id, run.dag_run_id)) {
            if (b.task_ids && !b.task_ids.includes(ti.task_id)) continue;
            if (b.state && !b.state.includes(ti.state)) continue;
            if (b.pool && !b.pool.includes(ti.pool)) continue;
            out.push(taskInstanceToApi(ti, run));
          }
        }
        return { task_instances: out.slice(b.page_offset, b.page_offset + b.page_limit), total_entries: out.length };
      },
    },
    {
      method: 'get',
      path: '/api/v1/importErrors/:import_error_id',
      summary: 'One import error',
      role: 'viewer',
      responses: { 200: { description: 'import error' } },
      handler: async (req) => {
        const id = Number(p(req, 'import_error_id'));
        const hit = (await store.importErrors()).find((e) => e.import_error_id === id);
        if (!hit) throw notFound(`no import error ${p(req, 'import_error_id')}; list them with GET /api/v1/importErrors`);
        return hit;
      },
    },
  ];
}

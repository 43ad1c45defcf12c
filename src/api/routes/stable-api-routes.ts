import type { Request } from 'express';
import type { DagSpec, TaskSpec } from '../../dag/types.ts';
import type { StateStore } from '../../state/store.ts';
import { notFound } from '../problem.ts';
import { dagRunToApi, dagToApi } from '../serializers.ts';
import type { ApiDeps, ApiRoute } from '../server.ts';
import { parseBody, setNoteBody } from '../validation.ts';

const p = (req: Request, name: string): string => String(req.params[name]);

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

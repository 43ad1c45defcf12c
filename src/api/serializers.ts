import type { DagRunRecord, DagSpec, DatasetCondition, TaskInstanceRecord } from '../dag/types.ts';
import { timetableFor } from '../schedule/timetable.ts';
import type { DagMeta, StateStore } from '../state/store.ts';

/** A dataset condition inside a list: a URI, or a parenthesised nested all/any. */
function datasetTerm(c: DatasetCondition): string {
  if ('uri' in c) return c.uri;
  if ('all' in c) return `all of (${c.all.map(datasetTerm).join(', ')})`;
  return `any of (${c.any.map(datasetTerm).join(', ')})`;
}

/**
 * A sentence for a dataset schedule, e.g. "on updates of dataset://x",
 * "when all of: a, b are updated", "when any of: a, b is updated".
 */
export function describeDatasetSchedule(c: DatasetCondition): string {
  if ('uri' in c) return `on updates of ${c.uri}`;
  if ('all' in c) return c.all.length === 1 ? describeDatasetSchedule(c.all[0]) : `when all of: ${c.all.map(datasetTerm).join(', ')} are updated`;
  return c.any.length === 1 ? describeDatasetSchedule(c.any[0]) : `when any of: ${c.any.map(datasetTerm).join(', ')} is updated`;
}

/** A DAG as Airflow's stable REST API returns it (plus Podflow's task list for the CLI). */
export function dagToApi(spec: DagSpec, meta: DagMeta | null, hasImportErrors: boolean) {
  let timetable_description: string | null = null;
  try {
    timetable_description = spec.schedule.datasets ? describeDatasetSchedule(spec.schedule.datasets) : (timetableFor(spec.schedule)?.describe() ?? null);
  } catch {
    timetable_description = null;
  }
  return {
    dag_id: spec.dag_id,
    description: spec.description,
    fileloc: spec.file,
    file_token: spec.file_hash,
    is_paused: meta?.is_paused ?? false,
    is_active: true,
    owners: [spec.owner],
    tags: spec.tags.map((name) => ({ name })),
    schedule_interval: spec.schedule.cron
      ? { __type: 'CronExpression', value: spec.schedule.cron }
      : spec.schedule.datasets
        ? { __type: 'DatasetTriggered', value: spec.schedule.datasets }
        : null,
    timezone: spec.schedule.timezone,
    timetable_description,
    start_date: spec.start_date,
    end_date: spec.end_date,
    catchup: spec.catchup,
    max_active_runs: spec.max_active_runs,
    max_active_tasks: spec.max_active_tasks,
    params: spec.params,
    has_import_errors: hasImportErrors,
    last_parsed_time: meta?.last_parsed_time ?? null,
    tasks: spec.tasks.map((t) => ({
      task_id: t.task_id,
      operator: t.operator,
      upstream_task_ids: t.upstream_task_ids,
      downstream_task_ids: t.downstream_task_ids,
      trigger_rule: t.trigger_rule,
      retries: t.retries,
      pool: t.pool,
      task_group: t.task_group,
      is_mapped: t.expand !== null,
    })),
  };
}

export function dagRunToApi(run: DagRunRecord) {
  return {
    dag_id: run.dag_id,
    dag_run_id: run.dag_run_id,
    run_type: run.run_type,
    state: run.state,
    logical_date: run.logical_date,
    execution_date: run.logical_date,
    data_interval_start: run.data_interval_start,
    data_interval_end: run.data_interval_end,
    conf: run.conf,
    external_trigger: run.external_trigger,
    queued_at: run.queued_at,
    start_date: run.start_date,
    end_date: run.end_date,
    last_scheduling_decision: run.last_scheduling_decision,
    note: run.note,
  };
}

export function taskInstanceToApi(ti: TaskInstanceRecord, run?: DagRunRecord) {
  return {
    dag_id: ti.dag_id,
    dag_run_id: ti.dag_run_id,
    task_id: ti.task_id,
    map_index: ti.map_index,
    // Airflow shows a not-yet-considered instance as null.
    state: ti.state === 'none' ? null : ti.state,
    try_number: ti.try_number,
    max_tries: ti.max_tries,
    start_date: ti.start_date,
    end_date: ti.end_date,
    duration: ti.duration,
    hostname: ti.hostname,
    pool: ti.pool,
    pool_slots: ti.pool_slots,
    priority_weight: ti.priority_weight,
    operator: ti.operator,
    queued_when: ti.queued_when,
    execution_date: run?.logical_date ?? null,
    note: ti.note,
  };
}

/** A run with every task instance, its XComs and metrics: `podflow runs show --json`. */
export async function runDetail(store: StateStore, run: DagRunRecord) {
  const tis = await store.listTis(run.dag_id, run.dag_run_id);
  const task_instances = [];
  for (const ti of tis) {
    task_instances.push({
      ...taskInstanceToApi(ti, run),
      xcom: await store.getXcoms(ti),
      metrics: await store.getMetrics(ti),
    });
  }
  return { ...dagRunToApi(run), task_instances };
}

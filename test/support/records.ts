import type { DagRunRecord, DagSpec, TaskInstanceRecord, TaskSpec } from '../../src/dag/types.ts';

/**
 * Complete spec and record objects with Airflow's defaults, for tests that call operators,
 * lineage or the scheduler's pure parts directly. Pass only what the test is about.
 */
export function taskSpec(task_id: string, over: Partial<TaskSpec> = {}): TaskSpec {
  return {
    task_id,
    operator: 'inline',
    operator_args: {},
    upstream_task_ids: [],
    downstream_task_ids: [],
    trigger_rule: 'all_success',
    retries: 0,
    retry_delay_ms: 1000,
    retry_exponential_backoff: false,
    max_retry_delay_ms: null,
    execution_timeout_ms: null,
    pool: 'default_pool',
    pool_slots: 1,
    priority_weight: 1,
    weight_rule: 'downstream',
    queue: 'default',
    depends_on_past: false,
    wait_for_downstream: false,
    task_group: null,
    inlets: [],
    outlets: [],
    artifacts: [],
    expand: null,
    doc: null,
    ...over,
  };
}

export function dagSpec(dag_id: string, tasks: TaskSpec[], over: Partial<DagSpec> = {}): DagSpec {
  return {
    dag_id,
    description: null,
    file: `dags/${dag_id}.ts`,
    file_hash: 'f'.repeat(64),
    schedule: { cron: null, timezone: 'UTC', datasets: null },
    start_date: null,
    end_date: null,
    catchup: false,
    tags: [],
    params: {},
    max_active_runs: 16,
    max_active_tasks: 16,
    dagrun_timeout_ms: null,
    owner: 'ml',
    tasks,
    extra: {},
    ...over,
  };
}

export function runRecord(dag_id: string, dag_run_id: string, over: Partial<DagRunRecord> = {}): DagRunRecord {
  return {
    dag_id,
    dag_run_id,
    run_type: 'manual',
    state: 'running',
    logical_date: '2026-12-03T10:00:00.000Z',
    data_interval_start: '2026-12-02T10:00:00.000Z',
    data_interval_end: '2026-12-03T10:00:00.000Z',
    conf: {},
    external_trigger: true,
    queued_at: null,
    start_date: '2026-12-03T10:00:00.000Z',
    end_date: null,
    last_scheduling_decision: null,
    note: null,
    ...over,
  };
}

export function tiRecord(dag_id: string, dag_run_id: string, task_id: string, over: Partial<TaskInstanceRecord> = {}): TaskInstanceRecord {
  return {
    dag_id,
    dag_run_id,
    task_id,
    map_index: -1,
    state: 'running',
    try_number: 1,
    max_tries: 1,
    start_date: null,
    end_date: null,
    duration: null,
    hostname: 'test',
    pool: 'default_pool',
    pool_slots: 1,
    priority_weight: 1,
    operator: 'inline',
    queued_when: null,
    next_attempt_at: null,
    sensor_started_at: null,
    note: null,
    ...over,
  };
}

/**
 * Serializable shapes shared by the scheduler, workers, API and plugins.
 * Field names are snake_case, as in Airflow's stable REST API, so a record can be
 * returned by the API unchanged.
 */

/** Airflow's task instance states; `none` is Airflow's `null` (not yet considered). */
export const TASK_STATES = [
  'none',
  'scheduled',
  'queued',
  'running',
  'success',
  'failed',
  'up_for_retry',
  'up_for_reschedule',
  'upstream_failed',
  'skipped',
  'removed',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States a task instance never leaves on its own (only a clear moves it back). */
export const FINISHED_TASK_STATES: ReadonlySet<TaskState> = new Set([
  'success',
  'failed',
  'upstream_failed',
  'skipped',
  'removed',
]);

export const DAG_RUN_STATES = ['queued', 'running', 'success', 'failed'] as const;
export type DagRunState = (typeof DAG_RUN_STATES)[number];

export type RunType = 'scheduled' | 'manual' | 'backfill' | 'dataset_triggered' | 'sensor_triggered' | 'webhook';

export const TRIGGER_RULES = [
  'all_success',
  'all_failed',
  'all_done',
  'one_success',
  'one_failed',
  'one_done',
  'none_failed',
  'none_failed_min_one_success',
  'none_skipped',
  'always',
] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

export type WeightRule = 'downstream' | 'upstream' | 'absolute';

/** JSON value: what XComs, params and conf may hold. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Everything the scheduler and a worker need to know about one task, without user code. */
export interface TaskSpec {
  task_id: string;
  /** Operator type, resolved through the operator registry ("inline", "command", "sensor", "pod" …). */
  operator: string;
  /** Operator arguments; must be JSON. Inline functions stay in the DAG file and are looked up by task id. */
  operator_args: Record<string, Json>;
  upstream_task_ids: string[];
  downstream_task_ids: string[];
  trigger_rule: TriggerRule;
  retries: number;
  retry_delay_ms: number;
  retry_exponential_backoff: boolean;
  max_retry_delay_ms: number | null;
  execution_timeout_ms: number | null;
  pool: string;
  pool_slots: number;
  priority_weight: number;
  weight_rule: WeightRule;
  queue: string;
  depends_on_past: boolean;
  wait_for_downstream: boolean;
  /** Task group path for display only ("train.search"); never changes semantics. */
  task_group: string | null;
  inlets: string[];
  outlets: string[];
  /** Files or URIs the task produces; recorded with size and hash on success (lineage). */
  artifacts: string[];
  /** Dynamic task mapping: one instance per element of a literal list or of an upstream's XCom. */
  expand: ExpandSpec | null;
  doc: string | null;
}

export type ExpandSpec =
  | { kind: 'literal'; values: Json[]; max_map_length: number }
  | { kind: 'xcom'; task_id: string; key: string; max_map_length: number };

export interface ScheduleSpec {
  /** Cron expression, preset (@daily …) or fixed interval ("every 15 minutes"); null = manual only. */
  cron: string | null;
  timezone: string;
  /** Dataset URIs (or an AND/OR expression) that start a run when updated. */
  datasets: DatasetCondition | null;
}

export type DatasetCondition = { uri: string } | { all: DatasetCondition[] } | { any: DatasetCondition[] };

export interface DagSpec {
  dag_id: string;
  description: string | null;
  file: string;
  /** SHA-256 of the DAG file's content at load time (lineage, cache key for workers). */
  file_hash: string;
  schedule: ScheduleSpec;
  start_date: string | null;
  end_date: string | null;
  catchup: boolean;
  tags: string[];
  params: Record<string, Json>;
  max_active_runs: number;
  max_active_tasks: number;
  dagrun_timeout_ms: number | null;
  owner: string;
  tasks: TaskSpec[];
  /** Extra JSON settings plugins or later features attach (e.g. trigger conditions). */
  extra: Record<string, Json>;
}

export interface DagRunRecord {
  dag_id: string;
  dag_run_id: string;
  run_type: RunType;
  state: DagRunState;
  logical_date: string;
  data_interval_start: string;
  data_interval_end: string;
  conf: Record<string, Json>;
  external_trigger: boolean;
  queued_at: string | null;
  start_date: string | null;
  end_date: string | null;
  last_scheduling_decision: string | null;
  note: string | null;
}

export interface TaskInstanceKey {
  dag_id: string;
  dag_run_id: string;
  task_id: string;
  /** -1 for an unmapped task, as in Airflow. */
  map_index: number;
}

export interface TaskInstanceRecord extends TaskInstanceKey {
  state: TaskState;
  try_number: number;
  max_tries: number;
  start_date: string | null;
  end_date: string | null;
  duration: number | null;
  hostname: string | null;
  pool: string;
  pool_slots: number;
  priority_weight: number;
  operator: string;
  queued_when: string | null;
  /** Epoch ms before which a retry or reschedule must not run. */
  next_attempt_at: number | null;
  /** First poke time of a sensor, kept across retries for its timeout. */
  sensor_started_at: number | null;
  note: string | null;
}

/** What an operator reports at the end of one try. */
export interface TaskOutcome {
  state: 'success' | 'failed' | 'skipped' | 'up_for_reschedule';
  /** A failure that must not be retried (sensor timeout, invalid spec, image pull error …). */
  fatal?: boolean;
  /** A failure that does not spend a try (pod never started: preempted before running). */
  free_retry?: boolean;
  error?: string;
  /** Stored as the `return_value` XCom. */
  return_value?: Json;
  /** For branching: the task ids to follow; all other direct downstreams are skipped. */
  follow_task_ids?: string[];
  /** For reschedule-mode sensors: epoch ms of the next poke. */
  reschedule_at?: number;
  exit_code?: number | null;
  /** Facts for the lineage record (image digest, node, GPU model …). */
  facts?: Record<string, Json>;
}

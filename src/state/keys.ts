import type { TaskInstanceKey } from '../dag/types.ts';

/**
 * Every Redis key Podflow writes, in one place. All live under the configured prefix.
 * Run ids never contain '|', which separates members of the index sets.
 */
export class Keys {
  constructor(readonly prefix: string) {}

  dagSpec(dagId: string) {
    return `${this.prefix}:dag:${dagId}`;
  }
  /** Hash: is_paused, file, file_hash, last_parsed_time, … */
  dagMeta(dagId: string) {
    return `${this.prefix}:dag_meta:${dagId}`;
  }
  /** Set of DAG ids currently defined by a file. */
  dags() {
    return `${this.prefix}:dags`;
  }
  /** Hash file -> JSON import error. */
  importErrors() {
    return `${this.prefix}:import_errors`;
  }
  run(dagId: string, runId: string) {
    return `${this.prefix}:run:${dagId}:${runId}`;
  }
  /** Sorted set of run ids by logical date (ms). */
  runs(dagId: string) {
    return `${this.prefix}:runs:${dagId}`;
  }
  /** Sorted set of scheduled (cron) run ids by logical date: the cron clock of a DAG. */
  scheduledRuns(dagId: string) {
    return `${this.prefix}:runs_scheduled:${dagId}`;
  }
  /** Hash ISO logical date -> run id; makes (dag_id, logical_date) unique. */
  runsByDate(dagId: string) {
    return `${this.prefix}:runs_by_date:${dagId}`;
  }
  /** Set of "dag|run" for runs in queued or running state. */
  activeRuns() {
    return `${this.prefix}:active_runs`;
  }
  ti(k: TaskInstanceKey) {
    return `${this.prefix}:ti:${k.dag_id}:${k.dag_run_id}:${k.task_id}:${k.map_index}`;
  }
  /** Set of "task_id|map_index" of a run. */
  tis(dagId: string, runId: string) {
    return `${this.prefix}:tis:${dagId}:${runId}`;
  }
  xcom(k: TaskInstanceKey) {
    return `${this.prefix}:xcom:${k.dag_id}:${k.dag_run_id}:${k.task_id}:${k.map_index}`;
  }
  metrics(k: TaskInstanceKey) {
    return `${this.prefix}:metrics:${k.dag_id}:${k.dag_run_id}:${k.task_id}:${k.map_index}`;
  }
  log(k: TaskInstanceKey, tryNumber: number) {
    return `${this.prefix}:log:${k.dag_id}:${k.dag_run_id}:${k.task_id}:${k.map_index}:${tryNumber}`;
  }
  /** Hash pool name -> JSON { slots, description }. */
  pools() {
    return `${this.prefix}:pools`;
  }
  /** Sorted set ti-key -> slots held: who occupies a pool now (queued or running). */
  poolOccupancy(pool: string) {
    return `${this.prefix}:pool_occ:${pool}`;
  }
  /** Sorted set ti-key -> 1 of every queued or running task instance (global parallelism). */
  occupancy() {
    return `${this.prefix}:occ`;
  }
  dagOccupancy(dagId: string) {
    return `${this.prefix}:occ_dag:${dagId}`;
  }
  /** Pub/sub channel: state changes that should wake the scheduler at once. */
  events() {
    return `${this.prefix}:events`;
  }
  /** Pub/sub channel: task instances to stop now (mark failed, clear, run timeout). */
  kills() {
    return `${this.prefix}:kills`;
  }
  /** Hash delivery id -> run id, for webhook de-duplication; and generic leases. */
  lease(name: string) {
    return `${this.prefix}:lease:${name}`;
  }
  /** Hash dataset URI -> JSON { id, uri, extra, created_at, updated_at }. */
  datasets() {
    return `${this.prefix}:datasets`;
  }
  /** Counter: ids of datasets and of dataset events (one sequence, so events are totally ordered). */
  datasetSeq() {
    return `${this.prefix}:dataset_seq`;
  }
  /** Hash dataset URI -> id of its latest event. */
  datasetLatest() {
    return `${this.prefix}:dataset_latest`;
  }
  /** Sorted set of every dataset event (score = event id, member = JSON event). */
  datasetEvents() {
    return `${this.prefix}:dataset_events`;
  }
  /** Sorted set of one dataset's events (score = event id, member = JSON event). */
  datasetEventsOf(uri: string) {
    return `${this.prefix}:dataset_events_of:${uri}`;
  }
  /** Hash dataset URI -> id of the last event a dataset-scheduled DAG consumed. */
  datasetCursor(dagId: string) {
    return `${this.prefix}:dataset_cursor:${dagId}`;
  }
  /** Hash run id -> JSON of the dataset events that triggered it (upstreamDatasetEvents). */
  datasetRunEvents(dagId: string) {
    return `${this.prefix}:dataset_run_events:${dagId}`;
  }
  /** String with a TTL: a sensor-triggered DAG's condition was checked within its interval. */
  triggerCheck(dagId: string) {
    return `${this.prefix}:trigger_check:${dagId}`;
  }
  /** String: a sensor trigger event (by key digest) already started a run. */
  triggerSeen(dagId: string, eventDigest: string) {
    return `${this.prefix}:trigger_seen:${dagId}:${eventDigest}`;
  }
  queueName() {
    return 'tasks';
  }
}

export function tiMember(taskId: string, mapIndex: number): string {
  return `${taskId}|${mapIndex}`;
}

export function parseTiMember(m: string): { task_id: string; map_index: number } {
  const i = m.lastIndexOf('|');
  return { task_id: m.slice(0, i), map_index: Number(m.slice(i + 1)) };
}

import type { DagRunRecord, DagSpec, Json, TaskInstanceRecord, TaskOutcome, TaskSpec } from '../dag/types.ts';

/** A logger for one task try: lines go to the structured log and to the try's task log. */
export interface TaskLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Raw output (a process's stdout/stderr or a pod's log) appended to the task log as-is. */
  raw(line: string, stream?: 'stdout' | 'stderr'): void;
}

/** Metadata about an artifact a task produced (lineage). */
export interface ArtifactMeta {
  media_type?: string;
  size?: number;
  sha256?: string;
  etag?: string;
  version_id?: string;
  [key: string]: Json | undefined;
}

/** What an inline task function receives. */
export interface TaskContext {
  dag_id: string;
  run_id: string;
  task_id: string;
  map_index: number;
  try_number: number;
  logical_date: Date;
  data_interval_start: Date;
  data_interval_end: Date;
  /** DAG params with defaults, overridden by the run's conf. */
  params: Record<string, Json>;
  conf: Record<string, Json>;
  /** For a mapped task instance: its element of the expanded list. */
  map_value: Json | undefined;
  log: TaskLogger;
  signal: AbortSignal;
  xcom: {
    push(key: string, value: Json): Promise<void>;
    /** An upstream's XCom; for a mapped upstream, the list of all its instances' values in map order. */
    pull<T extends Json = Json>(task_id: string, key?: string): Promise<T | null>;
  };
  /** Record a numeric metric (accuracy, loss, drift …) on this task instance. */
  metric(name: string, value: number): Promise<void>;
  /** Register an artifact produced by this try (a local path or a URI). */
  artifact(uri: string, meta?: ArtifactMeta): Promise<void>;
}

export interface OperatorRunRequest {
  dag: DagSpec;
  task: TaskSpec;
  run: DagRunRecord;
  ti: TaskInstanceRecord;
  context: TaskContext;
  /** Aborted on execution_timeout, on "mark failed"/cancel, and on worker shutdown (see `reason`). */
  signal: AbortSignal;
  log: TaskLogger;
}

/**
 * An operator runs one task try. Implementations never throw for a task failure:
 * they return an outcome; a thrown error is treated as a failed try.
 */
export interface Operator {
  /** Operator type as written in TaskSpec.operator, e.g. "command" or "pod". */
  readonly type: string;
  /**
   * True when a try's work lives outside the worker (a pod) and a new worker can re-attach to
   * it: a worker crash or shutdown then keeps the same try. Otherwise (local processes) the
   * try ends with its worker and the task runs again as a new try.
   */
  readonly reattachable?: boolean;
  execute(req: OperatorRunRequest): Promise<TaskOutcome>;
}

/** Why a try's signal was aborted; read from `signal.reason`. */
export type AbortReason =
  | { kind: 'timeout'; message: string }
  | { kind: 'killed'; message: string }
  /** Worker shutting down gracefully: operators that can be re-attached (pods) must leave work running. */
  | { kind: 'shutdown'; message: string };

import { Queue, type ConnectionOptions } from 'bullmq';
import type { TaskInstanceKey } from '../dag/types.ts';

/** What a BullMQ job carries: which try of which task instance to run. State stays in Redis. */
export interface TaskJobData extends TaskInstanceKey {
  try_number: number;
  /**
   * Where the try comes from: first run by the scheduler, a retry, or a sensor's next poke.
   * `dag_callback` is no try: a worker runs the DAG's on_success/on_failure_callback for a run
   * that ended (task_id is empty, map_index -1, try_number 0).
   */
  kind: 'run' | 'retry' | 'reschedule' | 'dag_callback';
  /** Poke count for reschedule jobs, to keep their ids distinct. */
  poke?: number;
  /** dag_callback: the state the run ended in, why (Airflow's reason), and when. */
  run_state?: 'success' | 'failed';
  reason?: string;
  ended_at?: string;
}

/**
 * Job id derived from task instance, try and kind: enqueueing the same try twice while its
 * job is pending is one job. The kind is part of the id, so a stale retry job never blocks
 * the run job of the same try after a clear. encodeURIComponent keeps the id injective and
 * free of ':' (which BullMQ ids must not contain).
 */
export function taskJobId(d: TaskJobData): string {
  if (d.kind === 'dag_callback') {
    // One job per run end: a run cleared and ending again gets a new callback, a resend does not.
    return ['dagcb', d.dag_id, d.dag_run_id, d.run_state, d.ended_at].map((p) => encodeURIComponent(String(p))).join('|');
  }
  const base = [d.dag_id, d.dag_run_id, d.task_id, d.map_index, d.try_number].map((p) => encodeURIComponent(String(p))).join('|');
  if (d.kind === 'run') return base;
  return d.kind === 'retry' ? `${base}|retry` : `${base}|poke${d.poke ?? 0}`;
}

export const TASK_QUEUE = 'tasks';

/**
 * The task queue. Jobs are removed as soon as they complete: state lives in Podflow's keys,
 * and a kept completed job would make a later, legitimate re-send of the same id a no-op.
 * Duplicates that slip through are harmless: the worker's compare-and-set drops them.
 */
export function taskQueue(connection: ConnectionOptions, prefix: string): Queue<TaskJobData> {
  return new Queue<TaskJobData>(TASK_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: { age: 24 * 3600 }, attempts: 1 },
  });
}

function jobOptions(data: TaskJobData, opts: { delayMs?: number; priority?: number }) {
  return {
    jobId: taskJobId(data),
    delay: opts.delayMs && opts.delayMs > 0 ? Math.round(opts.delayMs) : undefined,
    // BullMQ: lower number = higher priority (1 highest); map Airflow weights (higher first).
    priority: opts.priority !== undefined ? Math.max(1, 1_000_000 - Math.min(999_999, Math.max(0, opts.priority))) : undefined,
  };
}

export async function enqueueTask(queue: Queue<TaskJobData>, data: TaskJobData, opts: { delayMs?: number; priority?: number } = {}) {
  await queue.add(`${data.dag_id}.${data.task_id}`, data, jobOptions(data, opts));
}

/** Many jobs in one round trip (the scheduler queues a whole wave of ready tasks at once). */
export async function enqueueTasks(queue: Queue<TaskJobData>, jobs: { data: TaskJobData; priority?: number }[]) {
  if (jobs.length === 0) return;
  await queue.addBulk(jobs.map((j) => ({ name: `${j.data.dag_id}.${j.data.task_id}`, data: j.data, opts: jobOptions(j.data, { priority: j.priority }) })));
}

/**
 * Ask a worker to run the DAG-level callback of a run that ended (the scheduler never imports
 * user code). Enqueueing the same run end twice is one job.
 */
export async function enqueueDagCallback(
  queue: Queue<TaskJobData>,
  run: { dag_id: string; dag_run_id: string; state: 'success' | 'failed'; reason: string; ended_at: string },
) {
  const data: TaskJobData = {
    dag_id: run.dag_id,
    dag_run_id: run.dag_run_id,
    task_id: '',
    map_index: -1,
    try_number: 0,
    kind: 'dag_callback',
    run_state: run.state,
    reason: run.reason,
    ended_at: run.ended_at,
  };
  await queue.add(`${run.dag_id}.dag_callback`, data, { jobId: taskJobId(data) });
}

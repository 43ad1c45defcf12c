import { Queue, type ConnectionOptions } from 'bullmq';
import type { TaskInstanceKey } from '../dag/types.ts';

/** What a BullMQ job carries: which try of which task instance to run. State stays in Redis. */
export interface TaskJobData extends TaskInstanceKey {
  try_number: number;
  /** Where the try comes from: first run by the scheduler, a retry, or a sensor's next poke. */
  kind: 'run' | 'retry' | 'reschedule';
  /** Poke count for reschedule jobs, to keep their ids distinct. */
  poke?: number;
}

/**
 * Job id derived from task instance and try: enqueueing the same try twice is one job.
 * encodeURIComponent keeps it injective and free of ':' (which BullMQ ids must not contain).
 */
export function taskJobId(d: TaskJobData): string {
  const base = [d.dag_id, d.dag_run_id, d.task_id, d.map_index, d.try_number].map((p) => encodeURIComponent(String(p))).join('|');
  return d.kind === 'reschedule' ? `${base}|poke${d.poke ?? 0}` : base;
}

export const TASK_QUEUE = 'tasks';

/** The task queue; jobs are small and removed once done, since state lives in Podflow's keys. */
export function taskQueue(connection: ConnectionOptions, prefix: string): Queue<TaskJobData> {
  return new Queue<TaskJobData>(TASK_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: { age: 3600, count: 10_000 }, removeOnFail: { age: 24 * 3600 }, attempts: 1 },
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

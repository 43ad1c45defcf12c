import type { DagRunRecord, DagSpec, Json, RunType } from '../dag/types.ts';
import { manualInterval } from '../schedule/timetable.ts';
import type { StateStore } from '../state/store.ts';
import { priorityWeights } from './priority-weights.ts';

const RUN_ID_RE = /^[A-Za-z0-9_.:+~-]{1,250}$/;

export interface TriggerOptions {
  conf?: Record<string, Json>;
  dag_run_id?: string;
  logical_date?: string | Date;
  run_type?: RunType;
  data_interval?: { start: Date; end: Date };
  note?: string | null;
}

/** A bad trigger request: the message says which field and how to fix it. */
export class TriggerError extends Error {
  readonly code = 'TRIGGER_INVALID';
}

/**
 * Create a DAG run outside the cron clock (manual, API, webhook, dataset or sensor trigger).
 * Throws DagRunExistsError when the run id or logical date is taken, TriggerError on bad input.
 */
export async function triggerDagRun(store: StateStore, dag: DagSpec, opts: TriggerOptions = {}): Promise<DagRunRecord> {
  const conf = opts.conf ?? {};
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) {
    throw new TriggerError(`conf must be a JSON object such as {"lr": 0.1}, got ${JSON.stringify(conf)}`);
  }
  const now = new Date();
  const logical = opts.logical_date === undefined ? now : new Date(opts.logical_date);
  if (Number.isNaN(logical.getTime())) {
    throw new TriggerError(`logical_date ${JSON.stringify(opts.logical_date)} is not a date; use ISO 8601 such as 2026-12-01T00:00:00Z`);
  }
  const runType = opts.run_type ?? 'manual';
  const runId = opts.dag_run_id ?? `${runType}__${logical.toISOString()}`;
  if (!RUN_ID_RE.test(runId)) {
    throw new TriggerError(`dag_run_id ${JSON.stringify(runId)} is invalid: use letters, digits and _ . : + ~ -, at most 250 characters`);
  }
  const interval = opts.data_interval ?? manualInterval(logical);
  const run: DagRunRecord = {
    dag_id: dag.dag_id,
    dag_run_id: runId,
    run_type: runType,
    state: 'queued',
    logical_date: logical.toISOString(),
    data_interval_start: interval.start.toISOString(),
    data_interval_end: interval.end.toISOString(),
    conf,
    external_trigger: runType !== 'scheduled' && runType !== 'backfill',
    queued_at: now.toISOString(),
    start_date: null,
    end_date: null,
    last_scheduling_decision: null,
    note: opts.note ?? null,
  };
  await store.createRun(dag, run, priorityWeights(dag.tasks));
  return run;
}

import { DelayedError, Worker as BullWorker, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DagRunRecord, DagSpec, Json, TaskInstanceRecord, TaskOutcome, TaskSpec } from '../dag/types.ts';
import type { AbortReason, ArtifactMeta, OperatorRunRequest, TaskContext } from '../executor/operator.ts';
import type { OperatorRegistry } from '../executor/registry.ts';
import { loadDagObject } from '../loader/dag-module.ts';
import { retryDelayMs } from '../scheduler/retry-delay.ts';
import type { StateStore } from '../state/store.ts';
import { enqueueTask, TASK_QUEUE, taskJobId, type TaskJobData } from './jobs.ts';
import { TaskLog } from './task-log.ts';
import { pullXcom } from './xcom.ts';

/** Hooks the lineage recorder (and tests) attach to every try. Never allowed to fail a task. */
export interface TryHooks {
  tryStarted?(info: TryInfo): void;
  tryFinished?(
    info: TryInfo & {
      outcome: TaskOutcome;
      final_state: string;
      artifacts_registered: { uri: string; meta?: ArtifactMeta }[];
      metrics: Record<string, number>;
      /** Why the try was stopped, when it was (timeout, killed). */
      abort_reason?: AbortReason;
    },
  ): Promise<void> | void;
}

export interface TryInfo {
  dag: DagSpec;
  task: TaskSpec;
  run: DagRunRecord;
  ti: TaskInstanceRecord;
  started_at: Date;
  ended_at?: Date;
}

export interface WorkerOptions {
  store: StateStore;
  /** A connection for BullMQ's blocking commands (BullMQ needs maxRetriesPerRequest: null). */
  connection: Redis;
  /** A connection for subscribing to kill requests. */
  subscriber: Redis;
  queue: Queue<TaskJobData>;
  operators: OperatorRegistry;
  logger: Logger;
  prefix: string;
  concurrency: number;
  name: string;
  parallelism: number;
  hooks?: TryHooks;
  /**
   * How long a job's lock lasts without renewal: a worker that dies is noticed after about
   * this long, and its try is taken over by another worker (BullMQ's lockDuration; default 30 s).
   */
  lockDurationMs?: number;
  /** Lines kept per try's log; older ones are dropped beyond it (default 100,000). */
  logMaxLines?: number;
}

const HEARTBEAT_MS = 5000;

/**
 * Consumes task jobs from BullMQ and runs each try through its operator. Every state change
 * is a compare-and-set on the task instance, so a duplicate or stale job does nothing.
 */
export class TaskWorker {
  private bull: BullWorker<TaskJobData> | undefined;
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly o: WorkerOptions) {}

  async start(): Promise<void> {
    const { o } = this;
    await o.subscriber.subscribe(o.store.keys.kills());
    o.subscriber.on('message', (channel, message) => {
      if (channel !== o.store.keys.kills()) return;
      const ctl = this.running.get(message);
      ctl?.abort({ kind: 'killed', message: 'the task instance was marked as failed, cleared or its run ended' } satisfies AbortReason);
    });
    this.bull = new BullWorker<TaskJobData>(TASK_QUEUE, (job, token) => this.process(job, token), {
      connection: o.connection,
      prefix: o.prefix,
      concurrency: o.concurrency,
      // A crashed worker's jobs come back after the lock expires; we then take the try over.
      maxStalledCount: 100,
      lockDuration: o.lockDurationMs ?? 30_000,
      stalledInterval: o.lockDurationMs ?? 30_000,
      autorun: true,
    });
    this.bull.on('error', (e) => o.logger.error({ err: e }, 'BullMQ worker error'));
    await this.bull.waitUntilReady();
    o.logger.info({ worker: o.name, concurrency: o.concurrency }, `worker ${o.name} ready with ${o.concurrency} slots`);
  }

  /** Graceful stop: running tries are interrupted and handed back to the queue for another worker. */
  async close(): Promise<void> {
    for (const ctl of this.running.values()) {
      ctl.abort({ kind: 'shutdown', message: 'the worker is shutting down' } satisfies AbortReason);
    }
    await this.bull?.close();
    await this.o.subscriber.unsubscribe().catch(() => {});
  }

  private async process(job: Job<TaskJobData>, token?: string): Promise<void> {
    const { store, logger } = this.o;
    const d = job.data;
    const key = store.keys.ti(d);
    const log = logger.child({ dag_id: d.dag_id, run_id: d.dag_run_id, task_id: d.task_id, map_index: d.map_index, try_number: d.try_number });
    if (d.kind === 'dag_callback') return this.dagCallback(d, log);
    const [dag, run, ti] = await Promise.all([store.getDagCached(d.dag_id), store.getRun(d.dag_id, d.dag_run_id), store.getTi(d)]);
    if (!ti || !run) {
      log.warn('job for a task instance or run that no longer exists; dropped');
      return;
    }
    const task = dag?.tasks.find((t) => t.task_id === d.task_id);
    if (!dag || !task) {
      await store.transitionTi(d, ['queued', 'up_for_retry', 'up_for_reschedule'], 'failed', {
        end_date: new Date().toISOString(),
        note: `DAG '${d.dag_id}' or its task '${d.task_id}' is no longer defined (see \`podflow dags errors\`)`,
      });
      return;
    }
    const now = new Date();
    const tryNumber = d.kind === 'retry' ? d.try_number : d.try_number;
    const fields = {
      start_date: d.kind === 'reschedule' && ti.start_date ? ti.start_date : now.toISOString(),
      end_date: null,
      duration: null,
      hostname: this.o.name,
      try_number: tryNumber,
      last_heartbeat: Date.now(),
      next_attempt_at: null,
    };
    const limits = { parallelism: this.o.parallelism, max_active_tasks: dag.max_active_tasks };
    let res;
    if (d.kind === 'run') {
      res = await store.transitionTi(d, ['queued'], 'running', fields, { expectTry: tryNumber });
    } else {
      const from = d.kind === 'retry' ? 'up_for_retry' : 'up_for_reschedule';
      const expect = d.kind === 'retry' ? tryNumber - 1 : tryNumber;
      res = await store.transitionTi(d, [from], 'running', fields, { expectTry: expect, limits });
      if (!res.ok && res.reason === 'limit') {
        // No slot free now: wait and ask again, without holding a worker slot.
        if (token) {
          await job.moveToDelayed(Date.now() + 2000, token);
          throw new DelayedError();
        }
        return;
      }
    }
    if (!res.ok) {
      const cur = res.reason === 'state' ? res : null;
      const hb = Number((await store.redis.hget(key, 'last_heartbeat')) ?? 0);
      const stale = Date.now() - hb > Math.min(3 * HEARTBEAT_MS, this.o.lockDurationMs ?? 30_000);
      if (cur && cur.current === 'running' && cur.try_number === tryNumber && stale && !this.running.has(key)) {
        // BullMQ re-delivered the job of a worker that died. A try whose work lives on outside
        // the worker (a pod) is re-attached as the same try; a local try died with its worker,
        // so it ends here and the task runs again as a new try that does not spend a retry.
        if (!this.o.operators.get(task.operator)?.reattachable) {
          await this.endLostTry(d, ti, tryNumber, log);
          return;
        }
        const again = await store.transitionTi(d, ['running'], 'running', { hostname: this.o.name, last_heartbeat: Date.now() }, { expectTry: tryNumber });
        if (!again.ok) return;
        log.warn('re-attaching to a try whose worker stopped heartbeating');
      } else {
        log.debug({ state: cur?.current }, 'duplicate or stale job; the task instance moved on');
        return;
      }
    }
    const fresh = (await store.getTi(d))!;
    const outcome = await this.runTry(dag, task, run, fresh, log);
    if (outcome === 'released') {
      if (token) {
        await job.moveToDelayed(Date.now() + 1000, token);
        throw new DelayedError();
      }
    }
  }

  private async runTry(dag: DagSpec, task: TaskSpec, run: DagRunRecord, ti: TaskInstanceRecord, log: Logger): Promise<'done' | 'released'> {
    const { store, operators, hooks } = this.o;
    const key = store.keys.ti(ti);
    const taskLog = new TaskLog(store, ti, ti.try_number, log, this.o.logMaxLines);
    const ctl = new AbortController();
    this.running.set(key, ctl);
    const started = new Date();
    const heartbeat = setInterval(
      () => void store.redis.hset(key, 'last_heartbeat', String(Date.now())).catch(() => {}),
      Math.min(HEARTBEAT_MS, (this.o.lockDurationMs ?? 30_000) / 3),
    );
    let timeout: NodeJS.Timeout | undefined;
    if (task.execution_timeout_ms !== null) {
      timeout = setTimeout(
        () => ctl.abort({ kind: 'timeout', message: `execution_timeout of ${task.execution_timeout_ms! / 1000}s exceeded` } satisfies AbortReason),
        task.execution_timeout_ms,
      );
    }
    const registered: { uri: string; meta?: ArtifactMeta }[] = [];
    const context = await this.context(dag, task, run, ti, taskLog, ctl.signal, registered);
    taskLog.info(`starting try ${ti.try_number} of ${ti.max_tries} on ${this.o.name} (${task.operator})`);
    const info: TryInfo = { dag, task, run, ti, started_at: started };
    safe(() => hooks?.tryStarted?.(info), log);
    let outcome: TaskOutcome;
    try {
      const op = operators.get(task.operator);
      if (!op) {
        outcome = {
          state: 'failed',
          fatal: true,
          error: `no operator of type '${task.operator}' is registered on this worker (known: ${operators.types().join(', ')}); is its plugin installed?`,
        };
      } else {
        const req: OperatorRunRequest = { dag, task, run, ti, context, signal: ctl.signal, log: taskLog };
        outcome = await op.execute(req);
      }
    } catch (e) {
      const err = e as Error;
      // The message is the task instance's note; the stack goes to the task log.
      if (err?.stack) taskLog.error(err.stack.split('\n').slice(0, 12).join('\n'));
      outcome = { state: 'failed', error: err?.message ?? String(e) };
    } finally {
      clearInterval(heartbeat);
      clearTimeout(timeout);
      this.running.delete(key);
    }
    const reason = ctl.signal.reason as AbortReason | undefined;
    if (ctl.signal.aborted && reason?.kind === 'shutdown' && !operators.get(task.operator)?.reattachable) {
      // A local try cannot outlive its worker: it was stopped, and runs again as a new try
      // that does not count against the task's retries.
      outcome = {
        state: 'failed',
        free_retry: true,
        error: `the worker shut down during try ${ti.try_number}; the task runs again as a new try, not counted against its retries`,
      };
    } else if (ctl.signal.aborted && reason?.kind === 'shutdown') {
      taskLog.warn('worker shutting down: the try is handed back to the queue and will be resumed by another worker');
      await taskLog.flush();
      await store.updateTi(ti, { last_heartbeat: 0 });
      return 'released';
    }
    if (ctl.signal.aborted && reason?.kind === 'timeout' && outcome.state !== 'failed') {
      outcome = { state: 'failed', error: reason.message };
    }
    const killed = ctl.signal.aborted && reason?.kind === 'killed';
    // The try's record (lineage, dataset events, metrics) is written before its state, so once a
    // run is seen finished, every try of it is recorded and its events went out first.
    const metrics = await store.getMetrics(ti).catch(() => ({}));
    try {
      await hooks?.tryFinished?.({
        ...info,
        ended_at: new Date(),
        outcome,
        final_state: plannedState(ti, outcome, killed),
        artifacts_registered: registered,
        metrics,
        abort_reason: ctl.signal.aborted ? reason : undefined,
      });
    } catch (e) {
      log.error({ err: e }, 'recording lineage for the try failed (the task outcome stands)');
    }
    await this.finish(dag, task, run, ti, outcome, taskLog, killed);
    await taskLog.flush();
    return 'done';
  }

  /** Store the outcome with a compare-and-set on (running, this try). Returns the state written. */
  private async finish(
    dag: DagSpec,
    task: TaskSpec,
    run: DagRunRecord,
    ti: TaskInstanceRecord,
    outcome: TaskOutcome,
    taskLog: TaskLog,
    killed: boolean,
  ): Promise<string> {
    const { store, queue } = this.o;
    const now = new Date();
    const duration = ti.start_date ? (now.getTime() - Date.parse(ti.start_date)) / 1000 : null;
    const base = { end_date: now.toISOString(), duration, last_heartbeat: 0 };
    const cas = { expectTry: ti.try_number };
    if (killed) {
      taskLog.warn('try stopped on request; its state was set by the request');
      return 'killed';
    }
    if (outcome.state === 'success' || outcome.state === 'skipped') {
      if (outcome.return_value !== undefined) await store.pushXcom(ti, 'return_value', outcome.return_value);
      const res = await store.transitionTi(ti, ['running'], outcome.state, { ...base, follow_task_ids: outcome.follow_task_ids ?? null, note: outcome.error ?? null }, cas);
      if (!res.ok) return this.lost(taskLog, res);
      taskLog.info(`task ${outcome.state === 'success' ? 'succeeded' : 'skipped'}${outcome.error ? `: ${outcome.error}` : ''}`);
      await this.callback(dag, task, run, ti, outcome.state === 'success' ? 'on_success_callback' : null, outcome);
      return outcome.state;
    }
    if (outcome.state === 'up_for_reschedule') {
      const at = outcome.reschedule_at ?? Date.now() + 60_000;
      const poke = Number((await store.redis.hincrby(store.keys.ti(ti), 'poke_count', 1)) ?? 1);
      const res = await store.transitionTi(ti, ['running'], 'up_for_reschedule', { next_attempt_at: at, note: outcome.error ?? null }, cas);
      if (!res.ok) return this.lost(taskLog, res);
      await enqueueTask(queue, { ...keyOf(ti), try_number: ti.try_number, kind: 'reschedule', poke }, { delayMs: at - Date.now(), priority: ti.priority_weight });
      taskLog.info(`condition not met; next poke at ${new Date(at).toISOString()} (worker slot released)`);
      return 'up_for_reschedule';
    }
    // Failed try.
    const error = outcome.error ?? 'the task failed';
    taskLog.error(error);
    const maxTries = outcome.free_retry ? ti.max_tries + 1 : ti.max_tries;
    const retry = !outcome.fatal && ti.try_number < maxTries;
    if (retry) {
      const delay = outcome.free_retry ? 1000 : retryDelayMs(task, ti.try_number);
      // Measured from end_date, so the recorded gap next_attempt_at - end_date is the computed delay.
      const at = now.getTime() + delay;
      const res = await store.transitionTi(ti, ['running'], 'up_for_retry', { ...base, next_attempt_at: at, max_tries: maxTries, note: error }, cas);
      if (!res.ok) return this.lost(taskLog, res);
      await enqueueTask(queue, { ...keyOf(ti), try_number: ti.try_number + 1, kind: 'retry' }, { delayMs: delay, priority: ti.priority_weight });
      taskLog.warn(
        `${outcome.free_retry ? 'retrying without spending a try' : `try ${ti.try_number} of ${maxTries} failed`}; try ${ti.try_number + 1} in ${Math.round(delay / 100) / 10}s`,
      );
      await this.callback(dag, task, run, ti, 'on_retry_callback', outcome);
      return 'up_for_retry';
    }
    const res = await store.transitionTi(ti, ['running'], 'failed', { ...base, note: error }, cas);
    if (!res.ok) return this.lost(taskLog, res);
    taskLog.error(outcome.fatal ? 'task failed; this failure is not retried' : `task failed after ${ti.try_number} ${ti.try_number === 1 ? 'try' : 'tries'}`);
    await this.callback(dag, task, run, ti, 'on_failure_callback', outcome);
    return 'failed';
  }

  /** End a try whose worker died: up_for_retry at once, with one more try allowed (not the task's fault). */
  private async endLostTry(d: TaskJobData, ti: TaskInstanceRecord, tryNumber: number, log: Logger): Promise<void> {
    const { store, queue } = this.o;
    const note = `try ${tryNumber} was lost with its worker (${ti.hostname ?? 'unknown'} stopped heartbeating); try ${tryNumber + 1} starts now and does not count against retries`;
    const res = await store.transitionTi(
      d,
      ['running'],
      'up_for_retry',
      { end_date: new Date().toISOString(), next_attempt_at: Date.now(), max_tries: ti.max_tries + 1, last_heartbeat: 0, note },
      { expectTry: tryNumber },
    );
    if (!res.ok) return;
    await store.appendLog(d, tryNumber, [`[${new Date().toISOString()}] {ERROR} ${note}`]);
    await enqueueTask(queue, { ...keyOf(ti), try_number: tryNumber + 1, kind: 'retry' }, { priority: ti.priority_weight });
    log.warn(note);
  }

  private lost(taskLog: TaskLog, res: { ok: false } & ({ reason: 'state'; current: string } | { reason: 'limit'; limit: string })): string {
    const current = res.reason === 'state' ? res.current : res.limit;
    taskLog.warn(`the task instance moved to '${current}' while this try ran (marked, cleared or taken over); this try's result is discarded`);
    return current;
  }

  private async callback(dag: DagSpec, task: TaskSpec, run: DagRunRecord, ti: TaskInstanceRecord, which: 'on_success_callback' | 'on_failure_callback' | 'on_retry_callback' | null, outcome: TaskOutcome) {
    if (!which) return;
    try {
      const obj = await loadDagObject(dag.file, dag.dag_id, dag.file_hash);
      const cb = obj.callbacks(task.task_id)[which];
      if (!cb) return;
      const taskLog = new TaskLog(this.o.store, ti, ti.try_number, this.o.logger);
      const ctx = await this.context(dag, task, run, ti, taskLog, new AbortController().signal, []);
      await cb(ctx, { state: outcome.state, error: outcome.error });
      await taskLog.flush();
    } catch (e) {
      this.o.logger.error({ err: e, dag_id: dag.dag_id, task_id: task.task_id }, `${which} of task '${task.task_id}' failed`);
    }
  }

  /** A DAG-level on_success_callback / on_failure_callback, run by importing the DAG file here. */
  private async dagCallback(d: TaskJobData, log: Logger): Promise<void> {
    const which = d.run_state === 'success' ? 'on_success_callback' : 'on_failure_callback';
    const dag = await this.o.store.getDagCached(d.dag_id);
    if (!dag) {
      log.warn(`DAG '${d.dag_id}' is no longer defined; its ${which} for run ${d.dag_run_id} is not run`);
      return;
    }
    // Completed jobs are not kept, so the job id alone cannot stop a re-sent or re-delivered
    // callback job: a claim per run end (kept a week) makes the callback run exactly once.
    const claim = this.o.store.keys.lease(`dag_callback:${taskJobId(d)}`);
    if ((await this.o.store.redis.set(claim, new Date().toISOString(), 'EX', 7 * 86_400, 'NX')) !== 'OK') {
      log.info(`${which} of DAG '${d.dag_id}' already ran for this end of run ${d.dag_run_id}; not run again`);
      return;
    }
    try {
      const obj = await loadDagObject(dag.file, dag.dag_id, dag.file_hash);
      const cb = obj.options[which];
      if (!cb) return;
      await cb({ dag_id: d.dag_id, run_id: d.dag_run_id, state: d.run_state ?? 'failed', reason: d.reason });
      log.info(`${which} of DAG '${d.dag_id}' ran for run ${d.dag_run_id}`);
    } catch (e) {
      log.error({ err: e }, `${which} of DAG '${d.dag_id}' (${dag.file}) failed for run ${d.dag_run_id}: ${(e as Error).message}`);
    }
  }

  private async context(
    dag: DagSpec,
    task: TaskSpec,
    run: DagRunRecord,
    ti: TaskInstanceRecord,
    log: TaskLog,
    signal: AbortSignal,
    registered: { uri: string; meta?: ArtifactMeta }[],
  ): Promise<TaskContext> {
    const { store } = this.o;
    let mapValue: Json | undefined;
    if (task.expand && ti.map_index >= 0) {
      if (task.expand.kind === 'literal') mapValue = task.expand.values[ti.map_index];
      else {
        const list = await pullXcom(store, run, task.expand.task_id, task.expand.key);
        mapValue = Array.isArray(list) ? list[ti.map_index] : undefined;
      }
    }
    return {
      dag_id: dag.dag_id,
      run_id: run.dag_run_id,
      task_id: task.task_id,
      map_index: ti.map_index,
      try_number: ti.try_number,
      logical_date: new Date(run.logical_date),
      data_interval_start: new Date(run.data_interval_start),
      data_interval_end: new Date(run.data_interval_end),
      params: { ...dag.params, ...run.conf },
      conf: run.conf,
      map_value: mapValue,
      log,
      signal,
      xcom: {
        push: (key, value) => store.pushXcom(ti, key, value),
        pull: async <T extends Json = Json>(taskId: string, key = 'return_value') => (await pullXcom(store, run, taskId, key)) as T | null,
      },
      metric: async (name, value) => {
        if (!Number.isFinite(value)) throw new Error(`metric '${name}' must be a finite number, got ${value}`);
        await store.recordMetric(ti, name, value);
        log.info(`metric ${name}=${value}`);
      },
      artifact: async (uri, meta) => {
        registered.push({ uri, meta });
      },
    };
  }
}

/** The state finish() will write for this outcome (unless the instance moved on meanwhile). */
function plannedState(ti: TaskInstanceRecord, outcome: TaskOutcome, killed: boolean): string {
  if (killed) return 'killed';
  if (outcome.state !== 'failed') return outcome.state;
  const maxTries = outcome.free_retry ? ti.max_tries + 1 : ti.max_tries;
  return !outcome.fatal && ti.try_number < maxTries ? 'up_for_retry' : 'failed';
}

function keyOf(ti: TaskInstanceRecord) {
  return { dag_id: ti.dag_id, dag_run_id: ti.dag_run_id, task_id: ti.task_id, map_index: ti.map_index };
}

function safe(fn: () => unknown, log: Logger) {
  try {
    fn();
  } catch (e) {
    log.error({ err: e }, 'a try hook failed (ignored)');
  }
}

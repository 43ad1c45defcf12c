import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DagRunRecord, DagSpec, TaskInstanceRecord, TaskSpec, TaskState } from '../dag/types.ts';
import { FINISHED_TASK_STATES } from '../dag/types.ts';
import { runsDue } from '../schedule/timetable.ts';
import { DagRunExistsError, type StateStore } from '../state/store.ts';
import { enqueueDagCallback, enqueueTask, enqueueTasks, type TaskJobData } from '../worker/jobs.ts';
import { pullXcom } from '../worker/xcom.ts';
import { advanceBackfills } from './backfill.ts';
import { decide, summarize } from './trigger-rules.ts';
import { triggerDagRun } from './trigger.ts';

/** Hooks for run-level events (lineage, metrics). Never allowed to break scheduling. */
export interface RunHooks {
  runStarted?(dag: DagSpec, run: DagRunRecord): void;
  runFinished?(dag: DagSpec, run: DagRunRecord): void;
  /** Extra run creation (dataset and sensor triggers), called once per tick. */
  beforeTick?(scheduler: Scheduler, now: Date): Promise<void>;
}

export interface SchedulerOptions {
  store: StateStore;
  queue: Queue<TaskJobData>;
  /** A dedicated connection for subscribing to state-change events. */
  subscriber?: Redis;
  logger: Logger;
  intervalMs: number;
  parallelism: number;
  retentionDays: number;
  hooks?: RunHooks;
  now?: () => Date;
}

interface Candidate {
  dag: DagSpec;
  task: TaskSpec;
  ti: TaskInstanceRecord;
  logical: number;
}

/** A queued task whose job may have been lost (crash between state change and enqueue) is re-sent after this. */
const REQUEUE_AFTER_MS = 10_000;
const WAKE_DEBOUNCE_MS = 10;

/**
 * The scheduling loop: creates runs from schedules, moves task instances along their
 * dependencies and trigger rules, queues ready ones within pool and concurrency limits, and
 * finishes runs. Every step is a compare-and-set, so several schedulers can run at once.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private lastRetentionSweep = 0;
  private wakePending = false;
  private lastTickMs = 0;

  constructor(readonly o: SchedulerOptions) {}

  get store(): StateStore {
    return this.o.store;
  }

  private now(): Date {
    return this.o.now ? this.o.now() : new Date();
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.o.subscriber) {
      await this.o.subscriber.subscribe(this.o.store.keys.events());
      this.o.subscriber.on('message', (channel) => {
        if (channel === this.o.store.keys.events()) this.wake();
      });
    }
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await this.o.subscriber?.unsubscribe().catch(() => {});
  }

  /** Run a tick soon (a task finished, a run was triggered). */
  wake(): void {
    if (this.stopped) return;
    // A short debounce folds a burst of finished tasks into one tick.
    if (this.ticking) this.again = true;
    else if (!this.wakePending) {
      this.wakePending = true;
      this.schedule(this.wakeDelay());
    }
  }

  private schedule(ms: number) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.loop(), ms);
  }

  /** Event-driven ticks wait at least as long as the last tick took, so a busy scheduler leaves the CPU half free for workers. */
  private wakeDelay(): number {
    return Math.max(WAKE_DEBOUNCE_MS, Math.min(this.lastTickMs, 500));
  }

  private async loop() {
    this.wakePending = false;
    if (this.stopped) return;
    const started = performance.now();
    try {
      await this.tick();
    } catch (e) {
      this.o.logger.error({ err: e }, 'scheduler tick failed; retrying next interval');
    }
    this.lastTickMs = performance.now() - started;
    if (this.stopped) return;
    if (this.again) {
      this.again = false;
      this.schedule(this.wakeDelay());
    } else this.schedule(this.o.intervalMs);
  }

  /** One pass over every DAG and active run. Safe to call concurrently with other schedulers. */
  tick(): Promise<void> {
    this.ticking ??= this.doTick().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async doTick(): Promise<void> {
    const { store } = this.o;
    const now = this.now();
    const dags = new Map<string, DagSpec>();
    for (const id of await store.dagIds()) {
      const spec = await store.getDag(id);
      if (spec) dags.set(id, spec);
    }
    const active = await store.activeRuns();
    const activeByDag = new Map<string, number>();
    for (const a of active) activeByDag.set(a.dag_id, (activeByDag.get(a.dag_id) ?? 0) + 1);

    for (const dag of dags.values()) {
      const meta = await store.getDagMeta(dag.dag_id);
      if (meta?.is_paused) continue;
      await this.createScheduledRuns(dag, now, dag.max_active_runs - (activeByDag.get(dag.dag_id) ?? 0));
    }
    await advanceBackfills(store, { onError: (e, id) => this.o.logger.error({ err: e, backfill: id }, `backfill ${id}: creating runs failed; retrying next tick`) });
    await this.o.hooks?.beforeTick?.(this, now);

    const candidates: Candidate[] = [];
    const runningByDag = new Map<string, number>();
    const runs = await Promise.all((await store.activeRuns()).map((a) => store.getRun(a.dag_id, a.dag_run_id)));
    runs.sort((a, b) => (a && b ? Date.parse(a.logical_date) - Date.parse(b.logical_date) : 0));
    for (const run of runs) if (run?.state === 'running') runningByDag.set(run.dag_id, (runningByDag.get(run.dag_id) ?? 0) + 1);
    for (const run of runs) {
      if (!run) continue;
      const dag = dags.get(run.dag_id) ?? (await store.getDag(run.dag_id));
      if (!dag) continue; // DAG file removed or broken: its runs wait until it is back
      if (run.state === 'queued') {
        const running = runningByDag.get(dag.dag_id) ?? 0;
        if (running >= dag.max_active_runs) continue;
        if (await store.transitionRun(dag.dag_id, run.dag_run_id, ['queued'], 'running', { start_date: now.toISOString() })) {
          runningByDag.set(dag.dag_id, running + 1);
          run.state = 'running';
          run.start_date = now.toISOString();
          this.o.logger.info({ dag_id: dag.dag_id, run_id: run.dag_run_id }, `run ${run.dag_run_id} of ${dag.dag_id} started`);
          try {
            this.o.hooks?.runStarted?.(dag, run);
          } catch (e) {
            this.o.logger.error({ err: e }, 'runStarted hook failed (ignored)');
          }
        } else continue;
      }
      if (run.state !== 'running') continue;
      await this.processRun(dag, run, now, candidates);
    }
    await this.queueCandidates(candidates);
    if (now.getTime() - this.lastRetentionSweep > 3600_000) {
      this.lastRetentionSweep = now.getTime();
      await this.sweepRetention(dags, now).catch((e) => this.o.logger.error({ err: e }, 'retention sweep failed'));
    }
  }

  private async createScheduledRuns(dag: DagSpec, now: Date, limit: number): Promise<void> {
    if (!dag.schedule.cron || limit <= 0) return;
    const last = await this.o.store.latestScheduledLogicalDate(dag.dag_id);
    let due;
    try {
      due = runsDue({
        schedule: dag.schedule,
        start_date: dag.start_date ? new Date(dag.start_date) : null,
        end_date: dag.end_date ? new Date(dag.end_date) : null,
        catchup: dag.catchup,
        lastScheduledLogicalDate: last,
        now,
        limit,
      });
    } catch (e) {
      this.o.logger.error({ dag_id: dag.dag_id, err: e }, `DAG '${dag.dag_id}' (${dag.file}): ${(e as Error).message}`);
      return;
    }
    for (const interval of due) {
      const runId = `scheduled__${interval.start.toISOString()}`;
      try {
        const run = await triggerDagRun(this.o.store, dag, { run_type: 'scheduled', logical_date: interval.start, data_interval: interval, dag_run_id: runId });
        this.o.logger.info({ dag_id: dag.dag_id, run_id: run.dag_run_id }, `created scheduled run for [${run.data_interval_start}, ${run.data_interval_end})`);
      } catch (e) {
        // Another scheduler (or a manual run for that logical date) got there first: the
        // interval is covered either way, so the cron clock moves on.
        if (!(e instanceof DagRunExistsError)) throw e;
      }
      await this.o.store.markScheduled(dag.dag_id, runId, interval.start.toISOString());
    }
  }

  private async processRun(dag: DagSpec, run: DagRunRecord, now: Date, candidates: Candidate[]): Promise<void> {
    const { store, logger } = this.o;
    if (dag.dagrun_timeout_ms !== null && run.start_date && now.getTime() - Date.parse(run.start_date) > dag.dagrun_timeout_ms) {
      await this.failRunOnTimeout(dag, run, now);
      return;
    }
    let tis = await store.listTis(dag.dag_id, run.dag_run_id);
    const tasks = new Map(dag.tasks.map((t) => [t.task_id, t]));
    // Tasks added to the DAG after the run was created get an instance too.
    for (const t of dag.tasks) {
      if (!tis.some((ti) => ti.task_id === t.task_id)) {
        await store.addTi(dag, run.dag_run_id, t.task_id, -1, t.priority_weight);
        tis = await store.listTis(dag.dag_id, run.dag_run_id);
      }
    }
    // evaluate() updates the in-memory states it changes, so a chain of skips or
    // upstream_failed settles in a few passes; only a mapping expansion needs a re-read.
    for (let pass = 0; pass < 5; pass++) {
      const changed = await this.evaluate(dag, run, tis, tasks, now);
      if (changed === 'none') break;
      if (changed === 'expanded') tis = await store.listTis(dag.dag_id, run.dag_run_id);
    }
    for (const ti of tis) {
      const task = tasks.get(ti.task_id);
      if (!task) continue;
      if (ti.state === 'scheduled') candidates.push({ dag, task, ti, logical: Date.parse(run.logical_date) });
      else await this.resendLostJob(ti, now);
    }
    const relevant = tis.filter((ti) => tasks.has(ti.task_id));
    // A DAG without tasks has nothing to wait for: its runs succeed at once, as in Airflow.
    if (relevant.every((ti) => FINISHED_TASK_STATES.has(ti.state))) {
      const leaves = relevant.filter((ti) => tasks.get(ti.task_id)!.downstream_task_ids.length === 0);
      const failed = leaves.some((ti) => ti.state === 'failed' || ti.state === 'upstream_failed');
      const state = failed ? 'failed' : 'success';
      if (await store.transitionRun(dag.dag_id, run.dag_run_id, ['running'], state, { end_date: now.toISOString() })) {
        logger.info({ dag_id: dag.dag_id, run_id: run.dag_run_id, state }, `run ${run.dag_run_id} of ${dag.dag_id} ended: ${state}`);
        await this.dagCallback(dag, run, state, failed ? 'task_failure' : 'success', now);
        try {
          this.o.hooks?.runFinished?.(dag, { ...run, state, end_date: now.toISOString() });
        } catch (e) {
          logger.error({ err: e }, 'runFinished hook failed (ignored)');
        }
      }
    }
  }

  /** Decide every not-yet-considered task instance; says whether states changed or instances were added. */
  private async evaluate(
    dag: DagSpec,
    run: DagRunRecord,
    tis: TaskInstanceRecord[],
    tasks: Map<string, TaskSpec>,
    now: Date,
  ): Promise<'none' | 'states' | 'expanded'> {
    const { store } = this.o;
    const byTask = new Map<string, TaskInstanceRecord[]>();
    for (const ti of tis) {
      if (!byTask.has(ti.task_id)) byTask.set(ti.task_id, []);
      byTask.get(ti.task_id)!.push(ti);
    }
    let changed = false;
    let expanded = false;
    for (const ti of tis) {
      if (ti.state !== 'none') continue;
      const task = tasks.get(ti.task_id);
      if (!task) continue;
      const set = async (to: TaskState, note: string | null = null) => {
        const fields: Record<string, unknown> = { note };
        if (to !== 'scheduled') fields.end_date = now.toISOString();
        const res = await store.transitionTi(ti, ['none'], to, fields);
        if (res.ok) {
          changed = true;
          ti.state = to;
        }
      };
      // A branch upstream that did not choose this task skips it, whatever its trigger rule (as Airflow).
      const unchosen = task.upstream_task_ids.find((u) => {
        const up = tasks.get(u);
        if (!up?.operator_args.branch) return false;
        const uti = byTask.get(u)?.[0] as (TaskInstanceRecord & { follow_task_ids?: string[] | null }) | undefined;
        return uti?.state === 'success' && Array.isArray(uti.follow_task_ids) && !uti.follow_task_ids.includes(task.task_id);
      });
      if (unchosen) {
        await set('skipped', `branch '${unchosen}' did not choose this task`);
        continue;
      }
      const upstreamStates: TaskState[] = [];
      for (const u of task.upstream_task_ids) for (const uti of byTask.get(u) ?? []) upstreamStates.push(uti.state);
      const decision = task.upstream_task_ids.length === 0 ? 'run' : decide(task.trigger_rule, summarize(upstreamStates), ti.map_index);
      if (decision === 'wait') continue;
      if (decision === 'skip') {
        await set('skipped', `trigger rule ${task.trigger_rule} not met by upstream states`);
        continue;
      }
      if (decision === 'upstream_failed') {
        await set('upstream_failed', 'an upstream task failed');
        continue;
      }
      if ((task.depends_on_past || task.wait_for_downstream) && !(await this.pastAllows(dag, run, ti, task))) continue;
      if (task.expand && ti.map_index === -1) {
        expanded = (await this.expand(dag, run, task, ti, now)) || expanded;
        continue;
      }
      await set('scheduled');
    }
    return expanded ? 'expanded' : changed ? 'states' : 'none';
  }

  /**
   * depends_on_past: the same task in the previous run (by logical date) must have succeeded or
   * been skipped. wait_for_downstream (which implies it, as in Airflow): so must that task's
   * direct downstream instances in the previous run.
   */
  private async pastAllows(dag: DagSpec, run: DagRunRecord, ti: TaskInstanceRecord, task: TaskSpec): Promise<boolean> {
    const { store } = this.o;
    const ids = await store.redis.zrevrangebyscore(store.keys.runs(dag.dag_id), `(${Date.parse(run.logical_date)}`, '-inf', 'LIMIT', 0, 1);
    if (ids.length === 0) return true;
    const done = (t: TaskInstanceRecord | null) => !t || t.state === 'success' || t.state === 'skipped';
    const prev = await store.getTi({ dag_id: dag.dag_id, dag_run_id: ids[0], task_id: ti.task_id, map_index: ti.map_index });
    if (!done(prev)) return false;
    if (!task.wait_for_downstream || task.downstream_task_ids.length === 0) return true;
    const below = new Set(task.downstream_task_ids);
    return (await store.listTis(dag.dag_id, ids[0])).filter((t) => below.has(t.task_id)).every(done);
  }

  private async expand(dag: DagSpec, run: DagRunRecord, task: TaskSpec, ti: TaskInstanceRecord, now: Date): Promise<boolean> {
    const { store } = this.o;
    const spec = task.expand!;
    let count: number;
    if (spec.kind === 'literal') count = spec.values.length;
    else {
      const value = await pullXcom(store, run, spec.task_id, spec.key);
      if (!Array.isArray(value)) {
        const res = await store.transitionTi(ti, ['none'], 'failed', {
          end_date: now.toISOString(),
          note: `task '${task.task_id}' expands over the '${spec.key}' XCom of '${spec.task_id}', which is ${JSON.stringify(value)?.slice(0, 80)}, not a list; return a list from '${spec.task_id}'`,
        });
        return res.ok;
      }
      count = value.length;
    }
    if (count > spec.max_map_length) {
      const res = await store.transitionTi(ti, ['none'], 'failed', {
        end_date: now.toISOString(),
        note: `task '${task.task_id}' would expand into ${count} instances, more than max_map_length ${spec.max_map_length}; raise max_map_length or pass fewer values`,
      });
      return res.ok;
    }
    if (count === 0) {
      const res = await store.transitionTi(ti, ['none'], 'skipped', { end_date: now.toISOString(), note: 'expanded over an empty list' });
      return res.ok;
    }
    return store.expandTi(dag, run.dag_run_id, task.task_id, count, ti.priority_weight);
  }

  /**
   * Queue ready task instances, highest priority weight first, within pools and limits. The
   * compare-and-sets go out in batches (one round trip per batch) and the jobs in one addBulk.
   */
  private async queueCandidates(candidates: Candidate[]): Promise<void> {
    const { store, logger } = this.o;
    candidates.sort((a, b) => b.ti.priority_weight - a.ti.priority_weight || a.logical - b.logical || (a.ti.task_id < b.ti.task_id ? -1 : 1));
    const fullPools = new Set<string>();
    const fullDags = new Set<string>();
    let parallelismFull = false;
    const BATCH = 64;
    for (let i = 0; i < candidates.length && !parallelismFull; i += BATCH) {
      const batch = candidates.slice(i, i + BATCH).filter((c) => !fullPools.has(c.ti.pool) && !fullDags.has(c.dag.dag_id));
      const queuedWhen = new Date().toISOString();
      // Batched in order: Redis runs them one after another, so limits are still checked atomically per task.
      const results = await Promise.all(
        batch.map((c) =>
          store.transitionTi(
            c.ti,
            ['scheduled'],
            'queued',
            { try_number: c.ti.try_number + 1, queued_when: queuedWhen },
            { expectTry: c.ti.try_number, limits: { parallelism: this.o.parallelism, max_active_tasks: c.dag.max_active_tasks } },
          ),
        ),
      );
      const jobs = [];
      for (let j = 0; j < batch.length; j++) {
        const c = batch[j];
        const res = results[j];
        if (res.ok) {
          jobs.push({ data: { ...keyOf(c.ti), try_number: c.ti.try_number + 1, kind: 'run' as const }, priority: c.ti.priority_weight });
          continue;
        }
        if (res.reason !== 'limit') continue;
        if (res.limit === 'parallelism') parallelismFull = true;
        else if (res.limit === 'max_active_tasks') fullDags.add(c.dag.dag_id);
        else {
          fullPools.add(c.ti.pool);
          if (res.limit === 'no_such_pool') {
            await store.updateTi(c.ti, { note: `pool '${c.ti.pool}' does not exist; create it with \`podflow pools set ${c.ti.pool} <slots>\`` });
            logger.warn({ dag_id: c.dag.dag_id, task_id: c.task.task_id, pool: c.ti.pool }, `task waits for pool '${c.ti.pool}', which does not exist`);
          }
        }
      }
      await enqueueTasks(this.o.queue, jobs);
    }
  }

  /**
   * A queued, retrying or rescheduled task instance whose job is overdue is sent again. Job ids
   * are derived from the try, so if the job exists this is a no-op; if a crash lost it, this
   * restores it.
   */
  private async resendLostJob(ti: TaskInstanceRecord, now: Date): Promise<void> {
    const t = now.getTime();
    if (ti.state === 'queued' && ti.queued_when && t - Date.parse(ti.queued_when) > REQUEUE_AFTER_MS) {
      await enqueueTask(this.o.queue, { ...keyOf(ti), try_number: ti.try_number, kind: 'run' }, { priority: ti.priority_weight });
    } else if (ti.state === 'up_for_retry' && ti.next_attempt_at !== null && t - ti.next_attempt_at > REQUEUE_AFTER_MS) {
      await enqueueTask(this.o.queue, { ...keyOf(ti), try_number: ti.try_number + 1, kind: 'retry' }, { priority: ti.priority_weight });
    } else if (ti.state === 'up_for_reschedule' && ti.next_attempt_at !== null && t - ti.next_attempt_at > REQUEUE_AFTER_MS) {
      const poke = Number((await this.o.store.redis.hget(this.o.store.keys.ti(ti), 'poke_count')) ?? 0);
      await enqueueTask(this.o.queue, { ...keyOf(ti), try_number: ti.try_number, kind: 'reschedule', poke }, { priority: ti.priority_weight });
    }
  }

  private async failRunOnTimeout(dag: DagSpec, run: DagRunRecord, now: Date): Promise<void> {
    const { store, logger } = this.o;
    if (!(await store.transitionRun(dag.dag_id, run.dag_run_id, ['running'], 'failed', { end_date: now.toISOString(), note: `dagrun_timeout of ${dag.dagrun_timeout_ms! / 1000}s exceeded` }))) return;
    for (const ti of await store.listTis(dag.dag_id, run.dag_run_id)) {
      if (FINISHED_TASK_STATES.has(ti.state)) continue;
      // Airflow marks unfinished tasks of a timed-out run as skipped; running ones are stopped.
      const res = await store.transitionTi(ti, [ti.state], ti.state === 'running' ? 'failed' : 'skipped', { end_date: now.toISOString(), note: 'the run exceeded dagrun_timeout' });
      if (res.ok && ti.state === 'running') await store.redis.publish(store.keys.kills(), store.keys.ti(ti));
    }
    logger.warn({ dag_id: dag.dag_id, run_id: run.dag_run_id }, `run ${run.dag_run_id} of ${dag.dag_id} failed: dagrun_timeout exceeded`);
    await this.dagCallback(dag, run, 'failed', 'timed_out', now);
    try {
      this.o.hooks?.runFinished?.(dag, { ...run, state: 'failed', end_date: now.toISOString() });
    } catch (e) {
      logger.error({ err: e }, 'runFinished hook failed (ignored)');
    }
  }

  /** DAG-level callbacks run in a worker (they are user code); one job per run end. */
  private async dagCallback(dag: DagSpec, run: DagRunRecord, state: 'success' | 'failed', reason: string, now: Date): Promise<void> {
    if (!dag.extra[state === 'success' ? 'has_success_callback' : 'has_failure_callback']) return;
    try {
      await enqueueDagCallback(this.o.queue, { dag_id: dag.dag_id, dag_run_id: run.dag_run_id, state, reason, ended_at: now.toISOString() });
    } catch (e) {
      this.o.logger.error({ err: e, dag_id: dag.dag_id, run_id: run.dag_run_id }, `could not enqueue the ${state} callback of DAG '${dag.dag_id}'`);
    }
  }

  /** Delete finished runs older than the retention period, with their task instances, XComs and logs. */
  private async sweepRetention(dags: Map<string, DagSpec>, now: Date): Promise<void> {
    const { store } = this.o;
    const cutoff = now.getTime() - this.o.retentionDays * 86_400_000;
    let removed = 0;
    for (const dagId of dags.keys()) {
      const old = await store.redis.zrangebyscore(store.keys.runs(dagId), '-inf', cutoff);
      for (const runId of old) {
        const run = await store.getRun(dagId, runId);
        if (run && (run.state === 'success' || run.state === 'failed') && run.end_date && Date.parse(run.end_date) < cutoff) {
          await store.deleteRun(dagId, runId);
          removed++;
        }
      }
    }
    if (removed) this.o.logger.info({ removed }, `retention: deleted ${removed} finished run(s) older than ${this.o.retentionDays} days`);
  }
}

function keyOf(ti: TaskInstanceRecord) {
  return { dag_id: ti.dag_id, dag_run_id: ti.dag_run_id, task_id: ti.task_id, map_index: ti.map_index };
}

/**
 * The `sensor` operator: runs a task built with `d.sensor(id, type, args, options)` by poking
 * the sensor of that type from the {@link SensorRegistry} until its condition holds.
 *
 * - `poke` mode keeps the worker slot and sleeps between pokes inside one try.
 * - `reschedule` mode pokes once per try and returns `up_for_reschedule` with the time of
 *   the next poke; the worker frees the slot and enqueues a delayed job.
 * - The timeout is measured from the first poke, across retries and reschedules: the first
 *   poke time is kept in the task instance's `sensor_started_at`. A timeout fails the task
 *   at once without retry (`fatal`), or skips it with `soft_fail`.
 * - A done poke's `xcom` becomes the task's `return_value`.
 * - String arguments are templates, as Airflow's templated sensor fields:
 *   `{ path: '{{ params.report_input }}' }`, `{{ ds }}`, `{{ conf.key }}` …
 */
import type { Json, TaskOutcome } from '../dag/types.ts';
import type { AbortReason, Operator, OperatorRunRequest } from '../executor/operator.ts';
import type { StateStore } from '../state/store.ts';
import type { SensorRegistry } from './registry.ts';
import { parseSensorArgs, pokeSensor, SensorFailure, type PokeContext } from './sensor.ts';
import { nextPokeDelayMs, sensorRemainingMs } from './timing.ts';
import { renderTemplate, type TemplateContext } from '../util/template.ts';

/** The operator_args `d.sensor(...)` writes (see src/dag/dag.ts). */
export interface SensorOperatorArgs {
  sensor: string;
  args: Record<string, Json>;
  mode: 'poke' | 'reschedule';
  poke_interval_ms: number;
  timeout_ms: number | null;
  soft_fail: boolean;
  exponential_backoff: boolean;
  max_wait_ms: number | null;
}

export interface SensorOperatorOptions {
  sensors: SensorRegistry;
  store: StateStore;
  /** Current time; injectable for tests. */
  now?: () => Date;
}

/** Read a task's sensor settings, filling the defaults `d.sensor` would have written. */
export function sensorOperatorArgs(raw: Record<string, Json>): SensorOperatorArgs {
  const num = (v: Json | undefined, d: number | null) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  return {
    sensor: typeof raw.sensor === 'string' ? raw.sensor : '',
    args: raw.args && typeof raw.args === 'object' && !Array.isArray(raw.args) ? (raw.args as Record<string, Json>) : {},
    mode: raw.mode === 'reschedule' ? 'reschedule' : 'poke',
    poke_interval_ms: num(raw.poke_interval_ms, 60_000) ?? 60_000,
    timeout_ms: raw.timeout_ms === null ? null : num(raw.timeout_ms, 7 * 24 * 3600_000),
    soft_fail: raw.soft_fail === true,
    exponential_backoff: raw.exponential_backoff === true,
    max_wait_ms: num(raw.max_wait_ms, null),
  };
}

/**
 * Runs sensor tasks (operator type `sensor`).
 *
 * @example
 * operators.register(new SensorOperator({ sensors: new SensorRegistry(), store }));
 */
export class SensorOperator implements Operator {
  readonly type = 'sensor';

  constructor(private readonly o: SensorOperatorOptions) {}

  private now(): Date {
    return this.o.now ? this.o.now() : new Date();
  }

  async execute(req: OperatorRunRequest): Promise<TaskOutcome> {
    const { dag, task, ti, run, log, signal } = req;
    const a = sensorOperatorArgs(task.operator_args);
    const where = `DAG '${dag.dag_id}' (${dag.file}) task '${task.task_id}'`;
    const sensor = this.o.sensors.get(a.sensor);
    if (!sensor) {
      return {
        state: 'failed',
        fatal: true,
        error: `${where}: no sensor of type '${a.sensor}' is registered (known: ${this.o.sensors.types().join(', ')}); fix the type or install the plugin that adds it`,
      };
    }
    try {
      a.args = renderArgs(a.args, req.context) as Record<string, Json>;
      parseSensorArgs(sensor, a.args, { dag_id: dag.dag_id, task_id: task.task_id });
    } catch (e) {
      return { state: 'failed', fatal: true, error: e instanceof SensorFailure ? e.message : `${where}: sensor arguments: ${(e as Error).message}` };
    }

    // The first poke of this task instance starts the timeout clock, across retries and reschedules.
    let startedAt = ti.sensor_started_at;
    if (startedAt === null || startedAt === undefined) {
      startedAt = this.now().getTime();
      await this.o.store.updateTi(ti, { sensor_started_at: startedAt });
    }
    // Pokes made before this try: the worker counts reschedules in the TI's poke_count field.
    let pokes = Number((ti as unknown as { poke_count?: number }).poke_count ?? 0);

    const ctx: PokeContext = {
      dag_id: dag.dag_id,
      run_id: run.dag_run_id,
      task_id: task.task_id,
      map_index: ti.map_index,
      logical_date: new Date(run.logical_date),
      data_interval_start: new Date(run.data_interval_start),
      data_interval_end: new Date(run.data_interval_end),
      redis: this.o.store.redis,
      prefix: this.o.store.keys.prefix,
      log,
      signal,
      now: () => this.now(),
    };

    for (;;) {
      let res;
      try {
        res = await pokeSensor(sensor, a.args, ctx);
      } catch (e) {
        if (signal.aborted) return aborted(signal);
        if (e instanceof SensorFailure) return { state: 'failed', fatal: e.fatal, error: `${where}: ${e.message}` };
        // Anything else (network error, bug in a plugin sensor) fails this try; retries apply.
        return { state: 'failed', error: `${where}: sensor '${a.sensor}' poke failed: ${(e as Error).message}` };
      }
      pokes += 1;
      if (res.done) {
        log.info(`sensor '${a.sensor}' condition met after ${pokes} ${pokes === 1 ? 'poke' : 'pokes'}`);
        return { state: 'success', return_value: res.xcom };
      }
      const now = this.now();
      const remaining = sensorRemainingMs({ started_at: startedAt, timeout_ms: a.timeout_ms, now });
      if (remaining !== null && remaining <= 0) {
        const msg = `${where}: sensor '${a.sensor}' timed out: its condition did not hold within ${a.timeout_ms! / 1000}s of the first poke (${new Date(startedAt).toISOString()})${res.detail ? `; last poke: ${res.detail}` : ''}`;
        if (a.soft_fail) {
          log.warn(`${msg}; soft_fail is set, so the task is skipped`);
          return { state: 'skipped', error: msg };
        }
        return { state: 'failed', fatal: true, error: `${msg}. Raise the sensor's timeout or check what it waits for.` };
      }
      const delay = nextPokeDelayMs({
        poke_interval_ms: a.poke_interval_ms,
        exponential_backoff: a.exponential_backoff,
        max_wait_ms: a.max_wait_ms,
        poke_count: pokes,
        remaining_ms: remaining,
        jitter_key: `${dag.dag_id}.${task.task_id}.${run.dag_run_id}.${ti.map_index}`,
      });
      log.info(`poke ${pokes}: ${res.detail ?? 'condition not met'}; next poke in ${Math.round(delay / 100) / 10}s`);
      if (a.mode === 'reschedule') {
        return { state: 'up_for_reschedule', reschedule_at: now.getTime() + delay };
      }
      if (!(await sleep(delay, signal))) return aborted(signal);
    }
  }
}

/** Render `{{ … }}` in every string of a JSON value. */
function renderArgs(v: Json, ctx: TemplateContext): Json {
  if (typeof v === 'string') return v.includes('{{') ? renderTemplate(v, ctx) : v;
  if (Array.isArray(v)) return v.map((x) => renderArgs(x, ctx));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renderArgs(x, ctx)]));
  return v;
}

function aborted(signal: AbortSignal): TaskOutcome {
  const reason = signal.reason as AbortReason | undefined;
  return { state: 'failed', error: `sensor stopped while waiting: ${reason?.message ?? 'aborted'}` };
}

/** Wait `ms`; false when `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

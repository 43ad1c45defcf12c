/**
 * Sensor-triggered DAGs: a DAG whose `extra.trigger` names a sensor is started when that
 * sensor's condition holds, once per distinct event.
 *
 * Authoring form (in the DAG options):
 * ```ts
 * export default dag({
 *   dag_id: 'score_new_files',
 *   schedule: null,
 *   extra: { trigger: { sensor: 'file', args: { path: '/data/incoming/*.csv' }, interval_seconds: 30 } },
 * }, (d) => { … ctx.conf has the sensor's payload … });
 * ```
 * - `sensor`: any registered sensor type (file, http, redis_key, external_task, time,
 *   metric_threshold, or one from a plugin); `args`: its arguments.
 * - `interval_seconds` (default 60): how often the scheduler pokes it. With several
 *   schedulers, one of them pokes per interval (a Redis lease).
 * - When a poke is done, a run of type `sensor_triggered` is created with conf = the poke's
 *   XCom (an object as is, anything else as `{ payload }`) plus `trigger_event_key`.
 * - Each event fires once: its `event_key` (e.g. `path@mtime` for the file sensor; the hash
 *   of the payload when the sensor gives none) is remembered in Redis with SET NX for the
 *   retention period, so a scheduler restart does not fire old events again.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { DagRunRecord, DagSpec, Json } from '../dag/types.ts';
import type { TaskLogger } from '../executor/operator.ts';
import { zodIssuesDetail } from '../api/problem.ts';
import type { StateStore } from '../state/store.ts';
import type { SensorRegistry } from '../sensors/registry.ts';
import { pokeSensor, type PokeContext } from '../sensors/sensor.ts';
import { triggerAtNow } from './trigger-run.ts';

/** The shape of `extra.trigger`. */
export const sensorTriggerSchema = z.strictObject({
  sensor: z.string().min(1),
  args: z.record(z.string(), z.json()).default({}),
  interval_seconds: z.number().positive().default(60),
});
export type SensorTriggerSpec = z.output<typeof sensorTriggerSchema>;

/** Longest a poke from the scheduler may take; the scheduler tick waits for it. */
const MAX_POKE_MS = 10_000;

export interface SensorTriggerOptions {
  store: StateStore;
  sensors: SensorRegistry;
  logger: Logger;
  /** How long a fired event key is remembered (default 30 days). */
  seenTtlSec?: number;
  now?: () => Date;
}

/** The DAG's trigger spec, or null when it has none; throws with the DAG named when it is malformed. */
export function sensorTriggerOf(dag: DagSpec): SensorTriggerSpec | null {
  const raw = dag.extra?.trigger;
  if (raw === undefined || raw === null) return null;
  const r = sensorTriggerSchema.safeParse(raw);
  if (r.success) return r.data;
  throw new Error(
    `DAG '${dag.dag_id}' (${dag.file}): extra.trigger is invalid: ${zodIssuesDetail(r.error.issues)}. Write it as { sensor: 'file', args: { path: '…' }, interval_seconds: 30 }.`,
  );
}

/** Pokes the trigger sensors of DAGs that have one; call {@link SensorTriggers.check} on each scheduler tick. */
export class SensorTriggers {
  constructor(private readonly o: SensorTriggerOptions) {}

  private now(): Date {
    return this.o.now ? this.o.now() : new Date();
  }

  /** Check every unpaused DAG with `extra.trigger` whose interval has passed; returns the runs created. */
  async check(dags: readonly DagSpec[]): Promise<DagRunRecord[]> {
    const created: DagRunRecord[] = [];
    for (const dag of dags) {
      if (dag.extra?.trigger === undefined || dag.extra.trigger === null) continue;
      try {
        if ((await this.o.store.getDagMeta(dag.dag_id))?.is_paused) continue;
        const run = await this.checkDag(dag);
        if (run) created.push(run);
      } catch (e) {
        this.o.logger.error({ dag_id: dag.dag_id, err: e }, (e as Error).message);
      }
    }
    return created;
  }

  /** Poke one DAG's trigger if its interval lease is free; a run when a new event fired. */
  async checkDag(dag: DagSpec): Promise<DagRunRecord | null> {
    const { store, logger } = this.o;
    let spec: SensorTriggerSpec | null;
    let specError: Error | undefined;
    try {
      spec = sensorTriggerOf(dag);
    } catch (e) {
      spec = null;
      specError = e as Error;
    }
    if (!spec && !specError) return null;
    // One poke per interval across all schedulers; a malformed spec is reported once a minute.
    const intervalMs = Math.max(1, Math.round((spec?.interval_seconds ?? 60) * 1000));
    const lease = await store.redis.set(store.keys.triggerCheck(dag.dag_id), String(Date.now()), 'PX', intervalMs, 'NX');
    if (lease !== 'OK') return null;
    if (specError) throw specError;
    const sensor = this.o.sensors.get(spec!.sensor);
    if (!sensor) {
      throw new Error(
        `DAG '${dag.dag_id}' (${dag.file}): extra.trigger names sensor '${spec!.sensor}', which is not registered (known: ${this.o.sensors.types().join(', ')}); fix the type or install its plugin`,
      );
    }
    const now = this.now();
    const ctx: PokeContext = {
      dag_id: dag.dag_id,
      run_id: 'trigger',
      task_id: 'trigger',
      logical_date: now,
      data_interval_start: now,
      data_interval_end: now,
      redis: store.redis,
      prefix: store.keys.prefix,
      log: pinoTaskLogger(logger.child({ dag_id: dag.dag_id, trigger: spec!.sensor })),
      signal: AbortSignal.timeout(Math.min(intervalMs, MAX_POKE_MS)),
      now: () => this.now(),
    };
    let res;
    try {
      res = await pokeSensor(sensor, spec!.args, ctx);
    } catch (e) {
      throw new Error(`DAG '${dag.dag_id}' (${dag.file}): trigger sensor '${spec!.sensor}' failed to poke: ${(e as Error).message}`);
    }
    if (!res.done) return null;
    const eventKey = res.event_key ?? `payload:${sha256(JSON.stringify(res.xcom ?? null))}`;
    const seenKey = store.keys.triggerSeen(dag.dag_id, sha256(eventKey).slice(0, 40));
    const first = await store.redis.set(seenKey, eventKey, 'EX', this.o.seenTtlSec ?? 30 * 86_400, 'NX');
    if (first !== 'OK') return null; // this event already started a run
    const xcom = res.xcom;
    const conf: Record<string, Json> =
      xcom !== null && typeof xcom === 'object' && !Array.isArray(xcom) ? { ...xcom, trigger_event_key: eventKey } : { payload: xcom ?? null, trigger_event_key: eventKey };
    let run: DagRunRecord;
    try {
      run = await triggerAtNow(store, dag, { run_type: 'sensor_triggered', conf, note: `sensor '${spec!.sensor}' event ${eventKey}` });
    } catch (e) {
      await store.redis.del(seenKey).catch(() => {}); // let the next poke fire it again
      throw e;
    }
    logger.info({ dag_id: dag.dag_id, run_id: run.dag_run_id, event_key: eventKey }, `sensor trigger '${spec!.sensor}' started run ${run.dag_run_id} of ${dag.dag_id} for event ${eventKey}`);
    return run;
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** A TaskLogger writing to pino (trigger pokes have no task log). */
function pinoTaskLogger(log: Logger): TaskLogger {
  return {
    debug: (m, f) => log.debug(f ?? {}, m),
    info: (m, f) => log.debug(f ?? {}, m), // a poke per interval is noise at info
    warn: (m, f) => log.warn(f ?? {}, m),
    error: (m, f) => log.error(f ?? {}, m),
    raw: (line) => log.debug(line),
  };
}

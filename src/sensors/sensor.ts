/**
 * The sensor plugin kind: a task that waits for a condition by "poking" it until it holds.
 * Built-in sensors (file, http, redis_key, external_task, time, metric_threshold) and
 * sensors from plugins share this one interface; the worker wraps a sensor into an
 * operator (type `sensor`, with the sensor's type in operator_args.sensor) and owns poke vs reschedule mode, timeout and soft_fail.
 *
 * @example A user sensor in a plugin
 * ```ts
 * import { z } from 'zod';
 * export const queueEmpty: Sensor<{ queue: string }> = {
 *   type: 'queue_empty',
 *   argsSchema: z.strictObject({ queue: z.string() }),
 *   async poke(args, ctx) {
 *     return (await ctx.redis.llen(args.queue)) === 0;
 *   },
 * };
 * ```
 */
import type { Redis } from 'ioredis';
import type { ZodType } from 'zod';
import type { Json } from '../dag/types.ts';
import type { TaskLogger } from '../executor/operator.ts';
import { zodIssuesDetail } from '../api/problem.ts';
import type { TaskStateReader } from './task-state-reader.ts';

/**
 * What one poke found. `true`/`{ done: true }`: the condition holds; `xcom` becomes the
 * sensor's return value and `event_key` names the event (e.g. `path@mtime`) so a trigger
 * fires once per distinct event. `false`/`{ done: false }`: poke again later; `detail`
 * says what is still missing and goes to the task log.
 */
export type PokeResult = boolean | { done: true; xcom?: Json; event_key?: string } | { done: false; detail?: string };

/** A poke result in one shape. */
export type PokeOutcome = { done: true; xcom?: Json; event_key?: string } | { done: false; detail?: string };

export interface PokeContext {
  dag_id: string;
  run_id: string;
  task_id: string;
  map_index?: number;
  logical_date: Date;
  data_interval_start: Date;
  data_interval_end: Date;
  /** Podflow's Redis. */
  redis: Redis;
  /** Podflow's key prefix (keys are `${prefix}:…`). */
  prefix: string;
  log: TaskLogger;
  /** Aborted when the try is killed, times out or the worker shuts down. */
  signal: AbortSignal;
  /** Current time; injectable so tests need no clock games. */
  now(): Date;
  /** How to read other task instances and runs; default reads Podflow's Redis keys directly. */
  tasks?: TaskStateReader;
}

export interface Sensor<A> {
  /** Sensor type, as written in `d.sensor(id, type, args)`; the task's operator is `sensor`. */
  type: string;
  /** Validates and defaults the task's `operator_args`. */
  argsSchema: ZodType<A>;
  /** Check the condition once. Throw {@link SensorFailure} to fail the task instead of waiting. */
  poke(args: A, ctx: PokeContext): Promise<PokeResult>;
}

/**
 * A poke found a state the sensor can never recover from (the external task failed, the
 * key has the wrong type…). `fatal`: the task fails without retry.
 */
export class SensorFailure extends Error {
  readonly code = 'SENSOR_FAILURE';
  readonly fatal: boolean;
  constructor(message: string, opts: { fatal?: boolean } = {}) {
    super(message);
    this.name = 'SensorFailure';
    this.fatal = opts.fatal ?? true;
  }
}

/** The task's sensor arguments do not fit the sensor's schema; never retried. */
export class SensorArgsError extends SensorFailure {
  constructor(message: string) {
    super(message, { fatal: true });
    this.name = 'SensorArgsError';
  }
}

/** Normalize a {@link PokeResult}. */
export function normalizePokeResult(r: PokeResult): PokeOutcome {
  if (r === true) return { done: true };
  if (r === false) return { done: false };
  return r;
}

/**
 * Validate `args` with the sensor's schema, or throw {@link SensorArgsError} naming the
 * DAG, task and each bad field.
 */
export function parseSensorArgs<A>(sensor: Sensor<A>, args: unknown, where: { dag_id: string; task_id: string }): A {
  const r = sensor.argsSchema.safeParse(args ?? {});
  if (r.success) return r.data;
  throw new SensorArgsError(
    `DAG '${where.dag_id}' task '${where.task_id}': arguments of sensor '${sensor.type}' are invalid: ${zodIssuesDetail(r.error.issues)}. Fix them in the DAG file.`,
  );
}

/** Validate the arguments and poke once; the result normalized. */
export async function pokeSensor<A>(sensor: Sensor<A>, args: unknown, ctx: PokeContext): Promise<PokeOutcome> {
  const parsed = parseSensorArgs(sensor, args, ctx);
  return normalizePokeResult(await sensor.poke(parsed, ctx));
}

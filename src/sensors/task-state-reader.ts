import type { Redis } from 'ioredis';
import type { TaskState } from '../dag/types.ts';

/**
 * What the external-task and metric-threshold sensors read about other DAGs' runs.
 * {@link RedisTaskStateReader} reads Podflow's keys directly; the state store can be
 * adapted to it instead (it has the same operations).
 */
export interface TaskStateReader {
  /** Run id of `dag_id`'s run at this logical date, or null if there is none. */
  runIdForLogicalDate(dag_id: string, logical_date: Date): Promise<string | null>;
  /** Run id of `dag_id`'s run with the latest logical date, or null if it has no runs. */
  latestRun(dag_id: string): Promise<string | null>;
  /** State of one task instance, or null if it does not exist. */
  taskState(dag_id: string, run_id: string, task_id: string, map_index: number): Promise<TaskState | null>;
  /** A metric the task instance recorded, or null if it recorded none by that name. */
  metric(dag_id: string, run_id: string, task_id: string, map_index: number, name: string): Promise<number | null>;
}

/**
 * Reads Podflow's state keys: `${prefix}:runs_by_date:${dag}` (ISO logical date → run id),
 * `${prefix}:runs:${dag}` (sorted set of run ids by logical date), the task instance hash
 * `${prefix}:ti:${dag}:${run}:${task}:${map_index}` (field `state`) and the metrics hash
 * `${prefix}:metrics:${dag}:${run}:${task}:${map_index}` (metric name → number).
 */
export class RedisTaskStateReader implements TaskStateReader {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  runIdForLogicalDate(dag_id: string, logical_date: Date): Promise<string | null> {
    return this.redis.hget(`${this.prefix}:runs_by_date:${dag_id}`, logical_date.toISOString());
  }

  async latestRun(dag_id: string): Promise<string | null> {
    const [id] = await this.redis.zrevrange(`${this.prefix}:runs:${dag_id}`, 0, 0);
    if (id !== undefined) return id;
    // Fall back to the by-date hash: ISO dates in one format sort as strings.
    const byDate = await this.redis.hgetall(`${this.prefix}:runs_by_date:${dag_id}`);
    const latest = Object.keys(byDate).sort().pop();
    return latest === undefined ? null : byDate[latest];
  }

  async taskState(dag_id: string, run_id: string, task_id: string, map_index: number): Promise<TaskState | null> {
    const s = await this.redis.hget(`${this.prefix}:ti:${dag_id}:${run_id}:${task_id}:${map_index}`, 'state');
    return (s as TaskState | null) ?? null;
  }

  async metric(dag_id: string, run_id: string, task_id: string, map_index: number, name: string): Promise<number | null> {
    const v = await this.redis.hget(`${this.prefix}:metrics:${dag_id}:${run_id}:${task_id}:${map_index}`, name);
    if (v === null) return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
}

/** The reader a sensor should use: the context's, else one over the context's Redis. */
export function readerOf(ctx: { tasks?: TaskStateReader; redis: Redis; prefix: string }): TaskStateReader {
  return ctx.tasks ?? new RedisTaskStateReader(ctx.redis, ctx.prefix);
}

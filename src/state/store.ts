import type { Redis } from 'ioredis';
import type {
  DagRunRecord,
  DagRunState,
  DagSpec,
  Json,
  TaskInstanceKey,
  TaskInstanceRecord,
  TaskState,
} from '../dag/types.ts';
import { Keys, parseTiMember, tiMember } from './keys.ts';
import { CREATE_RUN, EXPAND_TI, TRANSITION_RUN, TRANSITION_TI } from './scripts.ts';

/** Delete marker for a field in a transition's `fields`. */
export const DELETE = '\u0000';

export interface ImportErrorRecord {
  import_error_id: number;
  filename: string;
  dag_id: string | null;
  stack_trace: string;
  timestamp: string;
}

export interface PoolRecord {
  name: string;
  slots: number;
  description: string | null;
}

export interface DagMeta {
  is_paused: boolean;
  file: string;
  file_hash: string;
  last_parsed_time: string | null;
}

export interface Limits {
  parallelism?: number;
  max_active_tasks?: number;
}

export type TransitionResult =
  | { ok: true; previous: TaskState }
  | { ok: false; reason: 'state'; current: TaskState | 'missing'; try_number: number }
  | { ok: false; reason: 'limit'; limit: string };

/** A DAG run creation that was refused because the id or the logical date is taken. */
export class DagRunExistsError extends Error {
  readonly code = 'DAG_RUN_EXISTS';
  constructor(
    readonly dag_id: string,
    readonly field: 'run_id' | 'logical_date',
    readonly existing_run_id: string,
    value: string,
  ) {
    super(
      field === 'run_id'
        ? `DAG '${dag_id}' already has a run with id '${value}'; pick another run id (CLI --run-id, API field dag_run_id)`
        : `DAG '${dag_id}' already has a run for logical date ${value} ('${existing_run_id}'); pick another logical date (CLI --logical-date, API field logical_date) or clear that run`,
    );
  }
}

function enc(record: object): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record)) {
    if (v === undefined) continue;
    out[k] = k === 'state' ? String(v) : v === DELETE ? DELETE : JSON.stringify(v);
  }
  return out;
}

function dec<T>(h: Record<string, string>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) out[k] = k === 'state' ? v : JSON.parse(v);
  return out as T;
}

/**
 * The one place that reads and writes Podflow's state in Redis. The scheduler, workers and
 * API call named operations here, never raw hash commands.
 */
export class StateStore {
  readonly keys: Keys;

  constructor(
    readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new Keys(prefix);
    redis.defineCommand('pfTransitionTi', { numberOfKeys: 5, lua: TRANSITION_TI });
    redis.defineCommand('pfTransitionRun', { numberOfKeys: 2, lua: TRANSITION_RUN });
    redis.defineCommand('pfCreateRun', { numberOfKeys: 5, lua: CREATE_RUN });
    redis.defineCommand('pfExpandTi', { numberOfKeys: 2, lua: EXPAND_TI });
  }

  private get r(): Redis & Record<string, (...args: unknown[]) => Promise<unknown>> {
    return this.redis as Redis & Record<string, (...args: unknown[]) => Promise<unknown>>;
  }

  // ---- DAGs ------------------------------------------------------------------------------

  async putDag(spec: DagSpec): Promise<void> {
    await this.redis
      .multi()
      .set(this.keys.dagSpec(spec.dag_id), JSON.stringify(spec))
      .sadd(this.keys.dags(), spec.dag_id)
      .hset(this.keys.dagMeta(spec.dag_id), {
        file: spec.file,
        file_hash: spec.file_hash,
        last_parsed_time: new Date().toISOString(),
      })
      .hsetnx(this.keys.dagMeta(spec.dag_id), 'is_paused', '0')
      .exec();
  }

  /** The DAG is no longer defined by any file; its runs stay readable. */
  async removeDag(dagId: string): Promise<void> {
    await this.redis.multi().srem(this.keys.dags(), dagId).del(this.keys.dagSpec(dagId)).exec();
  }

  async getDag(dagId: string): Promise<DagSpec | null> {
    const raw = await this.redis.get(this.keys.dagSpec(dagId));
    return raw ? (JSON.parse(raw) as DagSpec) : null;
  }

  private readonly dagCache = new Map<string, DagSpec>();

  /**
   * The DAG spec, parsed once per file version: a worker runs many tasks of one DAG and the
   * spec of a wide DAG is large. Checks the (small) file hash each call.
   */
  async getDagCached(dagId: string): Promise<DagSpec | null> {
    const hash = await this.redis.hget(this.keys.dagMeta(dagId), 'file_hash');
    const cached = this.dagCache.get(dagId);
    if (cached && hash !== null && cached.file_hash === hash && (await this.redis.exists(this.keys.dagSpec(dagId)))) return cached;
    const spec = await this.getDag(dagId);
    if (spec) this.dagCache.set(dagId, spec);
    else this.dagCache.delete(dagId);
    return spec;
  }

  async dagIds(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.dags())).sort();
  }

  async getDagMeta(dagId: string): Promise<DagMeta | null> {
    const h = await this.redis.hgetall(this.keys.dagMeta(dagId));
    if (!h.file) return null;
    return { is_paused: h.is_paused === '1', file: h.file, file_hash: h.file_hash, last_parsed_time: h.last_parsed_time ?? null };
  }

  async setPaused(dagId: string, paused: boolean): Promise<void> {
    await this.redis.hset(this.keys.dagMeta(dagId), 'is_paused', paused ? '1' : '0');
  }

  // ---- Import errors ---------------------------------------------------------------------

  async setImportError(filename: string, dagId: string | null, message: string): Promise<void> {
    const rec: Omit<ImportErrorRecord, 'import_error_id'> = {
      filename,
      dag_id: dagId,
      stack_trace: message,
      timestamp: new Date().toISOString(),
    };
    await this.redis.hset(this.keys.importErrors(), filename, JSON.stringify(rec));
  }

  async clearImportError(filename: string): Promise<void> {
    await this.redis.hdel(this.keys.importErrors(), filename);
  }

  async importErrors(): Promise<ImportErrorRecord[]> {
    const h = await this.redis.hgetall(this.keys.importErrors());
    return Object.keys(h)
      .sort()
      .map((f, i) => ({ import_error_id: i + 1, ...(JSON.parse(h[f]) as Omit<ImportErrorRecord, 'import_error_id'>) }));
  }

  // ---- DAG runs --------------------------------------------------------------------------

  /**
   * Create a run with one task instance per task (a mapped task gets a placeholder at map
   * index -1, expanded when its input is known). Throws DagRunExistsError when the run id or
   * the logical date is taken.
   */
  async createRun(dag: DagSpec, run: DagRunRecord, priorityWeights: Map<string, number>): Promise<void> {
    const tis = dag.tasks.map((t) => ({
      task_id: t.task_id,
      map_index: -1,
      fields: enc(this.newTi(dag, run.dag_run_id, t.task_id, -1, priorityWeights.get(t.task_id) ?? t.priority_weight)),
    }));
    const res = (await this.r.pfCreateRun(
      this.keys.run(run.dag_id, run.dag_run_id),
      this.keys.runs(run.dag_id),
      this.keys.runsByDate(run.dag_id),
      this.keys.activeRuns(),
      this.keys.tis(run.dag_id, run.dag_run_id),
      run.dag_run_id,
      run.logical_date,
      String(Date.parse(run.logical_date)),
      JSON.stringify(enc(run)),
      `${run.dag_id}|${run.dag_run_id}`,
      `${this.keys.prefix}:ti:${run.dag_id}:${run.dag_run_id}:`,
      JSON.stringify(tis),
      this.keys.events(),
    )) as [number, string, string?];
    if (res[0] !== 1) {
      throw new DagRunExistsError(run.dag_id, res[1] as 'run_id' | 'logical_date', res[2] ?? run.dag_run_id, res[1] === 'run_id' ? run.dag_run_id : run.logical_date);
    }
  }

  newTi(dag: DagSpec, runId: string, taskId: string, mapIndex: number, priorityWeight: number): TaskInstanceRecord {
    const t = dag.tasks.find((x) => x.task_id === taskId)!;
    return {
      dag_id: dag.dag_id,
      dag_run_id: runId,
      task_id: taskId,
      map_index: mapIndex,
      state: 'none',
      try_number: 0,
      max_tries: t.retries + 1,
      start_date: null,
      end_date: null,
      duration: null,
      hostname: null,
      pool: t.pool,
      pool_slots: t.pool_slots,
      priority_weight: priorityWeight,
      operator: t.operator,
      queued_when: null,
      next_attempt_at: null,
      sensor_started_at: null,
      note: null,
    };
  }

  async getRun(dagId: string, runId: string): Promise<DagRunRecord | null> {
    const h = await this.redis.hgetall(this.keys.run(dagId, runId));
    return h.state ? dec<DagRunRecord>(h) : null;
  }

  /** Runs of a DAG, newest logical date first. */
  async listRuns(dagId: string, opts: { offset?: number; limit?: number } = {}): Promise<DagRunRecord[]> {
    const offset = opts.offset ?? 0;
    const limit = opts.limit ?? 100;
    const ids = await this.redis.zrevrange(this.keys.runs(dagId), offset, offset + limit - 1);
    return this.getRuns(dagId, ids);
  }

  async countRuns(dagId: string): Promise<number> {
    return this.redis.zcard(this.keys.runs(dagId));
  }

  async getRuns(dagId: string, ids: string[]): Promise<DagRunRecord[]> {
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetall(this.keys.run(dagId, id));
    const res = (await p.exec()) ?? [];
    return res.map(([, h]) => h as Record<string, string>).filter((h) => h.state).map((h) => dec<DagRunRecord>(h));
  }

  /** The latest run by logical date of a given run type (scheduled runs drive the cron clock). */
  async latestRun(dagId: string, runTypes?: string[]): Promise<DagRunRecord | null> {
    let offset = 0;
    for (;;) {
      const page = await this.listRuns(dagId, { offset, limit: 50 });
      if (page.length === 0) return null;
      const hit = page.find((r) => !runTypes || runTypes.includes(r.run_type));
      if (hit) return hit;
      offset += page.length;
    }
  }

  /** Record that a cron run exists for this logical date (idempotent). */
  async markScheduled(dagId: string, runId: string, logicalDate: string): Promise<void> {
    await this.redis.zadd(this.keys.scheduledRuns(dagId), Date.parse(logicalDate), runId);
  }

  /** Logical date of the latest cron run, without scanning manual runs. */
  async latestScheduledLogicalDate(dagId: string): Promise<Date | null> {
    const res = await this.redis.zrevrange(this.keys.scheduledRuns(dagId), 0, 0, 'WITHSCORES');
    return res.length === 2 ? new Date(Number(res[1])) : null;
  }

  async runIdForLogicalDate(dagId: string, logicalDate: string): Promise<string | null> {
    return this.redis.hget(this.keys.runsByDate(dagId), logicalDate);
  }

  async activeRuns(): Promise<{ dag_id: string; dag_run_id: string }[]> {
    const members = await this.redis.smembers(this.keys.activeRuns());
    return members.map((m) => {
      const i = m.indexOf('|');
      return { dag_id: m.slice(0, i), dag_run_id: m.slice(i + 1) };
    });
  }

  async transitionRun(
    dagId: string,
    runId: string,
    from: DagRunState[] | '*',
    to: DagRunState,
    fields: Partial<Record<keyof DagRunRecord, unknown>> = {},
  ): Promise<boolean> {
    const res = (await this.r.pfTransitionRun(
      this.keys.run(dagId, runId),
      this.keys.activeRuns(),
      from === '*' ? '*' : from.join(','),
      to,
      JSON.stringify(enc(fields)),
      `${dagId}|${runId}`,
      this.keys.events(),
      `run|${dagId}|${runId}|${to}`,
    )) as [number, string];
    return res[0] === 1;
  }

  async updateRun(dagId: string, runId: string, fields: Partial<Record<keyof DagRunRecord, unknown>>): Promise<void> {
    await this.redis.hset(this.keys.run(dagId, runId), enc(fields));
  }

  /** Delete a run with its task instances, XComs, metrics and logs. */
  async deleteRun(dagId: string, runId: string): Promise<boolean> {
    const run = await this.getRun(dagId, runId);
    if (!run) return false;
    const tis = await this.listTis(dagId, runId);
    const m = this.redis.multi();
    for (const ti of tis) {
      m.del(this.keys.ti(ti), this.keys.xcom(ti), this.keys.metrics(ti));
      for (let t = 1; t <= ti.try_number; t++) m.del(this.keys.log(ti, t));
      m.zrem(this.keys.occupancy(), this.keys.ti(ti));
      m.zrem(this.keys.dagOccupancy(dagId), this.keys.ti(ti));
      m.zrem(this.keys.poolOccupancy(ti.pool), this.keys.ti(ti));
    }
    m.del(this.keys.tis(dagId, runId), this.keys.run(dagId, runId));
    m.zrem(this.keys.runs(dagId), runId);
    m.zrem(this.keys.scheduledRuns(dagId), runId);
    m.hdel(this.keys.runsByDate(dagId), run.logical_date);
    m.srem(this.keys.activeRuns(), `${dagId}|${runId}`);
    await m.exec();
    return true;
  }

  // ---- Task instances --------------------------------------------------------------------

  async getTi(k: TaskInstanceKey): Promise<TaskInstanceRecord | null> {
    const h = await this.redis.hgetall(this.keys.ti(k));
    return h.state ? dec<TaskInstanceRecord>(h) : null;
  }

  async listTis(dagId: string, runId: string): Promise<TaskInstanceRecord[]> {
    const members = await this.redis.smembers(this.keys.tis(dagId, runId));
    if (members.length === 0) return [];
    const p = this.redis.pipeline();
    const keys = members.map((m) => ({ dag_id: dagId, dag_run_id: runId, ...parseTiMember(m) }));
    for (const k of keys) p.hgetall(this.keys.ti(k));
    const res = (await p.exec()) ?? [];
    return res
      .map(([, h]) => h as Record<string, string>)
      .filter((h) => h.state)
      .map((h) => dec<TaskInstanceRecord>(h))
      .sort((a, b) => (a.task_id === b.task_id ? a.map_index - b.map_index : a.task_id < b.task_id ? -1 : 1));
  }

  /**
   * Move a task instance from one of `from` to `to`, atomically, setting `fields` too. With
   * `expectTry`, the try number must match as well. With `limits`, entering queued/running
   * also checks pool slots, the DAG's max_active_tasks and global parallelism.
   */
  async transitionTi(
    ti: TaskInstanceKey & { pool?: string; pool_slots?: number },
    from: TaskState[] | '*',
    to: TaskState,
    fields: Partial<Record<keyof TaskInstanceRecord | string, unknown>> = {},
    opts: { expectTry?: number; limits?: Limits; pool?: string; poolSlots?: number } = {},
  ): Promise<TransitionResult> {
    const key = this.keys.ti(ti);
    let pool = opts.pool ?? ti.pool;
    let slots = opts.poolSlots ?? ti.pool_slots;
    if (pool === undefined || slots === undefined) {
      const [p, s] = await this.redis.hmget(key, 'pool', 'pool_slots');
      pool = p ? (JSON.parse(p) as string) : 'default_pool';
      slots = s ? Number(s) : 1;
    }
    const res = (await this.r.pfTransitionTi(
      key,
      this.keys.occupancy(),
      this.keys.dagOccupancy(ti.dag_id),
      this.keys.poolOccupancy(pool),
      this.keys.pools(),
      from === '*' ? '*' : from.join(','),
      to,
      opts.expectTry === undefined ? '' : JSON.stringify(opts.expectTry),
      JSON.stringify(enc(fields)),
      key,
      pool,
      String(slots),
      opts.limits ? JSON.stringify(opts.limits) : '',
      this.keys.events(),
      `ti|${ti.dag_id}|${ti.dag_run_id}|${ti.task_id}|${ti.map_index}|${to}`,
    )) as [number, string, string];
    if (res[0] === 1) return { ok: true, previous: res[1] as TaskState };
    if (res[0] === -1) return { ok: false, reason: 'limit', limit: res[1] };
    return { ok: false, reason: 'state', current: res[1] as TaskState | 'missing', try_number: res[2] ? Number(res[2]) : 0 };
  }

  async updateTi(k: TaskInstanceKey, fields: Partial<Record<keyof TaskInstanceRecord | string, unknown>>): Promise<void> {
    await this.redis.hset(this.keys.ti(k), enc(fields));
  }

  /** Expand a mapped task's placeholder into `values.length` instances; false if already done. */
  async expandTi(dag: DagSpec, runId: string, taskId: string, count: number, priorityWeight: number): Promise<boolean> {
    const list = Array.from({ length: count }, (_, i) => enc(this.newTi(dag, runId, taskId, i, priorityWeight)));
    const res = await this.r.pfExpandTi(
      this.keys.ti({ dag_id: dag.dag_id, dag_run_id: runId, task_id: taskId, map_index: -1 }),
      this.keys.tis(dag.dag_id, runId),
      `${this.keys.prefix}:ti:${dag.dag_id}:${runId}:`,
      taskId,
      JSON.stringify(list),
    );
    return res === 1;
  }

  /** Add a fresh task instance (used when a cleared run gains a task added to the DAG later). */
  async addTi(dag: DagSpec, runId: string, taskId: string, mapIndex: number, priorityWeight: number): Promise<void> {
    const k = { dag_id: dag.dag_id, dag_run_id: runId, task_id: taskId, map_index: mapIndex };
    await this.redis
      .multi()
      .hset(this.keys.ti(k), enc(this.newTi(dag, runId, taskId, mapIndex, priorityWeight)))
      .sadd(this.keys.tis(dag.dag_id, runId), tiMember(taskId, mapIndex))
      .exec();
  }

  // ---- XCom, metrics, logs ---------------------------------------------------------------

  async pushXcom(k: TaskInstanceKey, key: string, value: Json): Promise<void> {
    await this.redis.hset(this.keys.xcom(k), key, JSON.stringify(value));
  }

  async getXcom(k: TaskInstanceKey, key: string): Promise<Json | null> {
    const raw = await this.redis.hget(this.keys.xcom(k), key);
    return raw === null ? null : (JSON.parse(raw) as Json);
  }

  async getXcoms(k: TaskInstanceKey): Promise<Record<string, Json>> {
    const h = await this.redis.hgetall(this.keys.xcom(k));
    return Object.fromEntries(Object.entries(h).map(([key, v]) => [key, JSON.parse(v) as Json]));
  }

  async clearXcoms(k: TaskInstanceKey): Promise<void> {
    await this.redis.del(this.keys.xcom(k));
  }

  async recordMetric(k: TaskInstanceKey, name: string, value: number): Promise<void> {
    await this.redis.hset(this.keys.metrics(k), name, String(value));
  }

  async getMetrics(k: TaskInstanceKey): Promise<Record<string, number>> {
    const h = await this.redis.hgetall(this.keys.metrics(k));
    return Object.fromEntries(Object.entries(h).map(([n, v]) => [n, Number(v)]));
  }

  async appendLog(k: TaskInstanceKey, tryNumber: number, lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    await this.redis.rpush(this.keys.log(k, tryNumber), ...lines);
  }

  /** Keep the last `maxLines` lines of a try's log, the first of them replaced by `note`. */
  async keepLogTail(k: TaskInstanceKey, tryNumber: number, maxLines: number, note: string): Promise<void> {
    const key = this.keys.log(k, tryNumber);
    await this.redis.multi().ltrim(key, -maxLines, -1).lset(key, 0, note).exec();
  }

  async readLog(k: TaskInstanceKey, tryNumber: number, from = 0): Promise<string[]> {
    return this.redis.lrange(this.keys.log(k, tryNumber), from, -1);
  }

  // ---- Pools -----------------------------------------------------------------------------

  /**
   * Create or resize a pool. A `description` left undefined keeps the pool's current one
   * (resizing from the CLI must not wipe it); `null` clears it.
   */
  async putPool(pool: Omit<PoolRecord, 'description'> & { description?: string | null }): Promise<void> {
    let description = pool.description;
    if (description === undefined) {
      const raw = await this.redis.hget(this.keys.pools(), pool.name);
      description = raw ? ((JSON.parse(raw) as { description?: string | null }).description ?? null) : null;
    }
    await this.redis.hset(this.keys.pools(), pool.name, JSON.stringify({ slots: pool.slots, description }));
  }

  async deletePool(name: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.pools(), name)) === 1;
  }

  async getPool(name: string): Promise<(PoolRecord & { occupied_slots: number }) | null> {
    const raw = await this.redis.hget(this.keys.pools(), name);
    if (!raw && name !== 'default_pool') return null;
    const def = raw ? (JSON.parse(raw) as { slots: number; description: string | null }) : { slots: 128, description: 'Default pool' };
    const rows = await this.redis.zrange(this.keys.poolOccupancy(name), 0, -1, 'WITHSCORES');
    let used = 0;
    for (let i = 1; i < rows.length; i += 2) used += Number(rows[i]);
    return { name, slots: def.slots, description: def.description, occupied_slots: used };
  }

  async listPools(): Promise<(PoolRecord & { occupied_slots: number })[]> {
    const names = new Set([...(await this.redis.hkeys(this.keys.pools())), 'default_pool']);
    const out = [];
    for (const n of [...names].sort()) out.push((await this.getPool(n))!);
    return out;
  }

  /** Expire a finished run's keys after the retention period. */
  async expireRun(dagId: string, runId: string, seconds: number): Promise<void> {
    const tis = await this.listTis(dagId, runId);
    const m = this.redis.multi();
    for (const ti of tis) {
      m.expire(this.keys.xcom(ti), seconds).expire(this.keys.metrics(ti), seconds);
      for (let t = 1; t <= ti.try_number; t++) m.expire(this.keys.log(ti, t), seconds);
    }
    await m.exec();
  }
}

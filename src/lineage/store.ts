/**
 * Lineage records in Redis, with retention, indexed by run and by artifact/dataset URI.
 *
 * Keys (all under `<prefix>:lineage:`):
 * - `try:<try id>`                 string, the TryRecord as JSON
 * - `run:<dag_id>:<run_id>`        zset of try ids, scored by start (ms)
 * - `dag:<dag_id>`                 zset of try ids, scored by end (ms)
 * - `all`                          zset of try ids, scored by end (ms)
 * - `produced:<uri>`               zset of try ids that produced the URI (outlets, artifacts), by end
 * - `consumed:<uri>`               zset of try ids that read the URI (inlets), by start
 * - `ok:<dag_id>:<run_id>`         hash `<task_id>\u0000<map_index>` -> id of the task's latest successful try
 * Every key expires `retentionDays` after its last write; index entries older than the
 * retention are trimmed on write, and entries whose record has expired are skipped (and removed) on read.
 */
import type { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { normalizeUri } from './artifacts.ts';
import type { ResourceCost, TryRecord } from './records.ts';

const DAY_MS = 86_400_000;

/** Resolves on 'drain'; rejects when the stream errors or closes first (a closed pipe must not hang an export). */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (err: Error) => done(new Error(`lineage export: the output stream failed: ${err.message}`));
    const onClose = () => done(new Error('lineage export: the output stream closed before the export finished'));
    out.on('drain', onDrain);
    out.on('error', onError);
    out.on('close', onClose);
  });
}

export interface ExportFilter {
  dag_id?: string;
  /** Only tries that ended at or after this time (ISO string, Date or epoch ms). */
  since?: string | Date | number;
}

export class LineageStore {
  private readonly base: string;
  private readonly retentionMs: number;

  /**
   * @param prefix the deployment's key prefix (`PODFLOW_PREFIX`); keys go under `<prefix>:lineage:`.
   * @param opts.retentionDays how long records are kept (default 30, as `PODFLOW_RETENTION_DAYS`).
   */
  constructor(
    private readonly redis: Redis,
    prefix: string,
    opts: { retentionDays?: number } = {},
  ) {
    this.base = `${prefix.replace(/:+$/, '')}:lineage:`;
    const days = opts.retentionDays ?? 30;
    if (!(days > 0)) throw new Error(`lineage retention must be more than 0 days, got ${days}; set PODFLOW_RETENTION_DAYS to a positive number`);
    this.retentionMs = days * DAY_MS;
  }

  private k(...parts: string[]): string {
    return this.base + parts.join(':');
  }

  /** The Redis key of a URI's producer index (exposed for tests and tools). */
  producedKey(uri: string): string {
    return this.k('produced', normalizeUri(uri));
  }

  /**
   * Store one try's record and index it by run, DAG, produced URIs (outlets and artifacts)
   * and consumed URIs (inlets), in one MULTI. Recording the same try again replaces it.
   */
  async recordTry(rec: TryRecord): Promise<void> {
    const ttlS = Math.ceil(this.retentionMs / 1000);
    const startMs = Date.parse(rec.start) || Date.now();
    const endMs = Date.parse(rec.end) || startMs;
    const cutoff = Date.now() - this.retentionMs;
    const produced = new Set<string>([...rec.outlets, ...rec.artifacts.filter((a) => !a.error).map((a) => a.uri)].map((u) => normalizeUri(u)));
    // a failed try declared its outlets but produced nothing
    if (rec.state !== 'success') produced.clear();
    const consumed = new Set(rec.inlets.map((u) => normalizeUri(u)));
    const m = this.redis.multi();
    m.set(this.k('try', rec.id), JSON.stringify(rec), 'EX', ttlS);
    const indexes: [string, number][] = [
      [this.k('run', rec.dag_id, rec.run_id), startMs],
      [this.k('dag', rec.dag_id), endMs],
      [this.k('all'), endMs],
      ...[...produced].map((u) => [this.k('produced', u), endMs] as [string, number]),
      ...[...consumed].map((u) => [this.k('consumed', u), startMs] as [string, number]),
    ];
    if (rec.state === 'success') {
      const ok = this.k('ok', rec.dag_id, rec.run_id);
      m.hset(ok, `${rec.task_id}\u0000${rec.map_index}`, rec.id);
      m.expire(ok, ttlS);
    }
    for (const [key, score] of indexes) {
      m.zadd(key, score, rec.id);
      m.zremrangebyscore(key, '-inf', `(${cutoff}`);
      m.expire(key, ttlS);
    }
    const res = await m.exec();
    const failed = res?.find(([err]) => err);
    if (failed) throw new Error(`lineage: storing try ${rec.id} in Redis failed: ${failed[0]?.message}`);
  }

  /** One try by id, or null when unknown or past retention. */
  async getTry(id: string): Promise<TryRecord | null> {
    const raw = await this.redis.get(this.k('try', id));
    return raw ? (JSON.parse(raw) as TryRecord) : null;
  }

  private async load(indexKey: string, ids: string[]): Promise<TryRecord[]> {
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.k('try', id)));
    const out: TryRecord[] = [];
    const gone: string[] = [];
    raws.forEach((raw, i) => (raw ? out.push(JSON.parse(raw) as TryRecord) : gone.push(ids[i])));
    if (gone.length) await this.redis.zrem(indexKey, ...gone);
    return out;
  }

  private async fromIndex(key: string, newestFirst = false, limit?: number): Promise<TryRecord[]> {
    const stop = limit === undefined ? -1 : Math.max(0, limit - 1);
    const ids = newestFirst ? await this.redis.zrevrange(key, 0, stop) : await this.redis.zrange(key, 0, stop);
    return this.load(key, ids);
  }

  /** All recorded tries of a run (every try of every task), in start order. */
  tries(dag_id: string, run_id: string): Promise<TryRecord[]> {
    return this.fromIndex(this.k('run', dag_id, run_id));
  }

  /** Successful tries that produced `uri` (as outlet or artifact), newest first; at most `limit` when given. */
  producersOf(uri: string, limit?: number): Promise<TryRecord[]> {
    return this.fromIndex(this.k('produced', normalizeUri(uri)), true, limit);
  }

  /** Tries that declared `uri` as an inlet, newest first; at most `limit` when given. */
  consumersOf(uri: string, limit?: number): Promise<TryRecord[]> {
    return this.fromIndex(this.k('consumed', normalizeUri(uri)), true, limit);
  }

  /**
   * Ids of the latest successful try of each of `task_ids` in a run (every map index of a
   * mapped task), without loading the records: how a try finds the upstream tries it followed.
   */
  async successfulTries(dag_id: string, run_id: string, task_ids: string[]): Promise<string[]> {
    const wanted = new Set(task_ids);
    const all = await this.redis.hgetall(this.k('ok', dag_id, run_id));
    return Object.entries(all)
      .map(([field, id]) => {
        const [task, idx] = field.split('\u0000');
        return { task, idx: Number(idx), id };
      })
      .filter((e) => wanted.has(e.task))
      .sort((a, b) => task_ids.indexOf(a.task) - task_ids.indexOf(b.task) || a.idx - b.idx)
      .map((e) => e.id);
  }

  /** CPU-, memory- and GPU-seconds asked by all tries of a run (retries included: they cost too). */
  async runCost(dag_id: string, run_id: string): Promise<ResourceCost> {
    const total: ResourceCost = { cpu_seconds: 0, memory_gib_seconds: 0, gpu_seconds: 0 };
    for (const t of await this.tries(dag_id, run_id)) {
      total.cpu_seconds += t.cost.cpu_seconds;
      total.memory_gib_seconds += t.cost.memory_gib_seconds;
      total.gpu_seconds += t.cost.gpu_seconds;
    }
    const round = (x: number) => Math.round(x * 1000) / 1000;
    return { cpu_seconds: round(total.cpu_seconds), memory_gib_seconds: round(total.memory_gib_seconds), gpu_seconds: round(total.gpu_seconds) };
  }

  /**
   * Write records as newline-delimited JSON, oldest first (by end time), honouring the
   * stream's backpressure. Returns how many records were written.
   */
  async exportNdjson(out: Writable, filter: ExportFilter = {}): Promise<number> {
    const key = filter.dag_id !== undefined ? this.k('dag', filter.dag_id) : this.k('all');
    const since = filter.since === undefined ? '-inf' : String(typeof filter.since === 'number' ? filter.since : new Date(filter.since).getTime());
    if (since === 'NaN') throw new Error(`lineage export: 'since' ${JSON.stringify(filter.since)} is not a date; use an ISO time such as 2026-01-31T00:00:00Z`);
    const BATCH = 500;
    let written = 0;
    for (let offset = 0; ; offset += BATCH) {
      const ids = await this.redis.zrangebyscore(key, since, '+inf', 'LIMIT', offset, BATCH);
      if (ids.length === 0) break;
      const raws = await this.redis.mget(ids.map((id) => this.k('try', id)));
      for (const raw of raws) {
        if (!raw) continue;
        if (!out.write(raw + '\n')) await drained(out);
        written++;
      }
      if (ids.length < BATCH) break;
    }
    return written;
  }
}

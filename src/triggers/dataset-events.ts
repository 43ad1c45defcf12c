/**
 * Dataset (asset) events in Redis. A task with `outlets` that succeeds records one event per
 * URI; external systems post events through `POST /api/v1/datasets/events` or
 * `podflow datasets event <uri>`. Datasets and events share one id sequence, so event ids
 * are totally ordered and a consumer's position is one number per URI.
 *
 * Keys (see src/state/keys.ts): `datasets` (URI -> dataset), `dataset_latest` (URI -> id of
 * its newest event), `dataset_events` and `dataset_events_of:<uri>` (sorted sets of events
 * by id, trimmed to the newest {@link MAX_EVENTS_PER_DATASET}).
 */
import type { Redis } from 'ioredis';
import type { DagSpec, DatasetCondition, Json } from '../dag/types.ts';
import type { StateStore } from '../state/store.ts';

/** A dataset as Airflow's stable REST API returns it. */
export interface DatasetRecord {
  id: number;
  uri: string;
  extra: Record<string, Json>;
  created_at: string;
  updated_at: string;
}

/** A dataset event, with Airflow's field names. */
export interface DatasetEvent {
  id: number;
  dataset_id: number;
  dataset_uri: string;
  extra: Record<string, Json>;
  source_dag_id: string | null;
  source_task_id: string | null;
  source_run_id: string | null;
  source_map_index: number;
  timestamp: string;
}

export interface DatasetEventSource {
  source_dag_id?: string | null;
  source_task_id?: string | null;
  source_run_id?: string | null;
  source_map_index?: number;
}

/** Events kept per dataset (and ×10 in the global list); older ones are trimmed. */
export const MAX_EVENTS_PER_DATASET = 1000;

const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/\S+$|^[^\s:]+$/;

/** A dataset URI that is empty, too long or has spaces; the message names it and the fix. */
export class DatasetUriError extends Error {
  readonly code = 'DATASET_URI_INVALID';
}

/** Throw {@link DatasetUriError} unless `uri` looks like `scheme://path` (or a plain name). */
export function checkDatasetUri(uri: string): void {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > 3000 || !URI_RE.test(uri)) {
    throw new DatasetUriError(
      `dataset URI ${JSON.stringify(uri)} is invalid: write it as scheme://path without spaces (e.g. dataset://podflow/iris/labels or s3://bucket/key), at most 3000 characters`,
    );
  }
}

/** Every URI a dataset condition names, in order of first appearance. */
export function conditionUris(c: DatasetCondition | null): string[] {
  const out: string[] = [];
  const walk = (x: DatasetCondition) => {
    if ('uri' in x) {
      if (!out.includes(x.uri)) out.push(x.uri);
    } else for (const y of 'all' in x ? x.all : x.any) walk(y);
  };
  if (c) walk(c);
  return out;
}

/** Whether `c` holds given the set of URIs updated since the DAG's last dataset-triggered run. */
export function conditionHolds(c: DatasetCondition, updated: ReadonlySet<string>): boolean {
  if ('uri' in c) return updated.has(c.uri);
  if ('all' in c) return c.all.every((x) => conditionHolds(x, updated));
  return c.any.some((x) => conditionHolds(x, updated));
}

/**
 * KEYS: 1 id sequence, 2 events of the URI, 3 all events, 4 latest id by URI, 5 datasets hash
 * ARGV: 1 URI, 2 the event's JSON without its opening brace, 3 events kept per URI,
 *       4 dataset record JSON, 5 events channel, 6 payload. Returns the event id.
 */
const RECORD_EVENT = `
local id = redis.call('INCR', KEYS[1])
local member = '{"id":' .. id .. ',' .. ARGV[2]
local keep = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], id, member)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -keep - 1)
redis.call('ZADD', KEYS[3], id, member)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -keep * 10 - 1)
redis.call('HSET', KEYS[4], ARGV[1], id)
redis.call('HSET', KEYS[5], ARGV[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return id
`;

/** Reads and writes dataset events. */
export class DatasetEvents {
  constructor(private readonly store: StateStore) {}

  private get redis(): Redis {
    return this.store.redis;
  }

  private get keys() {
    return this.store.keys;
  }

  /** The dataset record for `uri`, created (with a fresh id) on first sight. */
  async ensureDataset(uri: string): Promise<DatasetRecord> {
    checkDatasetUri(uri);
    const raw = await this.redis.hget(this.keys.datasets(), uri);
    if (raw) return JSON.parse(raw) as DatasetRecord;
    const id = await this.redis.incr(this.keys.datasetSeq());
    const now = new Date().toISOString();
    const rec: DatasetRecord = { id, uri, extra: {}, created_at: now, updated_at: now };
    // HSETNX: two processes seeing a new URI at once keep the first record.
    await this.redis.hsetnx(this.keys.datasets(), uri, JSON.stringify(rec));
    return JSON.parse((await this.redis.hget(this.keys.datasets(), uri))!) as DatasetRecord;
  }

  /**
   * Record that `uri` was updated. Publishes on the scheduler's events channel so
   * dataset-scheduled DAGs are checked at once.
   */
  async record(uri: string, source: DatasetEventSource = {}, extra: Record<string, Json> = {}): Promise<DatasetEvent> {
    const ds = await this.ensureDataset(uri);
    const now = new Date().toISOString();
    const rest: Omit<DatasetEvent, 'id'> = {
      dataset_id: ds.id,
      dataset_uri: uri,
      extra,
      source_dag_id: source.source_dag_id ?? null,
      source_task_id: source.source_task_id ?? null,
      source_run_id: source.source_run_id ?? null,
      source_map_index: source.source_map_index ?? -1,
      timestamp: now,
    };
    // One script: the id, the event lists and the URI's latest id change together, so a
    // consumer never sees a latest id older than an event already listed (two writers racing).
    const id = (await this.redis.eval(
      RECORD_EVENT,
      5,
      this.keys.datasetSeq(),
      this.keys.datasetEventsOf(uri),
      this.keys.datasetEvents(),
      this.keys.datasetLatest(),
      this.keys.datasets(),
      uri,
      JSON.stringify(rest).slice(1),
      String(MAX_EVENTS_PER_DATASET),
      JSON.stringify({ ...ds, updated_at: now }),
      this.keys.events(),
      `dataset|${uri}`,
    )) as number;
    return { id, ...rest };
  }

  async getDataset(uri: string): Promise<DatasetRecord | null> {
    const raw = await this.redis.hget(this.keys.datasets(), uri);
    return raw ? (JSON.parse(raw) as DatasetRecord) : null;
  }

  /** Datasets that have had events or were registered, by URI. */
  async listDatasets(): Promise<DatasetRecord[]> {
    const h = await this.redis.hgetall(this.keys.datasets());
    return Object.values(h)
      .map((v) => JSON.parse(v) as DatasetRecord)
      .sort((a, b) => a.uri.localeCompare(b.uri));
  }

  /** Id of the newest event of each URI (0 when it has none). */
  async latestIds(uris: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (uris.length === 0) return out;
    const vals = await this.redis.hmget(this.keys.datasetLatest(), ...uris);
    uris.forEach((u, i) => out.set(u, Number(vals[i] ?? 0)));
    return out;
  }

  /** Events of `uri` with ids in (afterId, upToId], oldest first, at most `limit` (the newest ones). */
  async eventsOf(uri: string, afterId: number, upToId: number | '+inf' = '+inf', limit = 100): Promise<DatasetEvent[]> {
    const rows = await this.redis.zrevrangebyscore(this.keys.datasetEventsOf(uri), upToId, `(${afterId}`, 'LIMIT', 0, limit);
    return rows.map((r) => JSON.parse(r) as DatasetEvent).reverse();
  }

  /**
   * Events, newest first, filtered as Airflow's `GET /datasets/events` does; with the total
   * count of matches.
   */
  async listEvents(
    f: { dataset_uri?: string; source_dag_id?: string; source_task_id?: string; source_run_id?: string; source_map_index?: number; offset?: number; limit?: number } = {},
  ): Promise<{ events: DatasetEvent[]; total: number }> {
    const key = f.dataset_uri ? this.keys.datasetEventsOf(f.dataset_uri) : this.keys.datasetEvents();
    const rows = (await this.redis.zrevrange(key, 0, -1)).map((r) => JSON.parse(r) as DatasetEvent);
    const hits = rows.filter(
      (e) =>
        (f.source_dag_id === undefined || e.source_dag_id === f.source_dag_id) &&
        (f.source_task_id === undefined || e.source_task_id === f.source_task_id) &&
        (f.source_run_id === undefined || e.source_run_id === f.source_run_id) &&
        (f.source_map_index === undefined || e.source_map_index === f.source_map_index),
    );
    const offset = f.offset ?? 0;
    return { events: hits.slice(offset, offset + (f.limit ?? 100)), total: hits.length };
  }

  /** The events that started a dataset-triggered run (Airflow's upstreamDatasetEvents). */
  async runEvents(dagId: string, runId: string): Promise<DatasetEvent[]> {
    const raw = await this.redis.hget(this.keys.datasetRunEvents(dagId), runId);
    return raw ? (JSON.parse(raw) as DatasetEvent[]) : [];
  }
}

/** Which DAGs consume (schedule on) and which tasks produce (outlets) a dataset. */
export function datasetUsage(uri: string, dags: readonly DagSpec[]) {
  const consuming_dags = dags
    .filter((d) => conditionUris(d.schedule.datasets).includes(uri))
    .map((d) => ({ dag_id: d.dag_id, created_at: null, updated_at: null }));
  const producing_tasks = dags.flatMap((d) =>
    d.tasks.filter((t) => t.outlets.includes(uri)).map((t) => ({ dag_id: d.dag_id, task_id: t.task_id, created_at: null, updated_at: null })),
  );
  return { consuming_dags, producing_tasks };
}

/** Every dataset URI the DAGs mention (outlets, inlets, dataset schedules). */
export function referencedUris(dags: readonly DagSpec[]): string[] {
  const set = new Set<string>();
  for (const d of dags) {
    for (const u of conditionUris(d.schedule.datasets)) set.add(u);
    for (const t of d.tasks) for (const u of [...t.outlets, ...t.inlets]) set.add(u);
  }
  return [...set].sort();
}

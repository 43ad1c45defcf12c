/**
 * Queries over lineage records: the graph around an artifact or dataset (upstream: who made
 * it from what, recursively; downstream: who read it), a run's whole provenance, and
 * renderers for the terminal. The JSON shapes here are what `GET /api/v1/lineage` returns.
 */
import { stat } from 'node:fs/promises';
import type { Json } from '../dag/types.ts';
import { localPathOf, mediaTypeOf, normalizeUri, sha256File, type ArtifactRecord } from './artifacts.ts';
import type { ResourceCost, ResourcesAsked, TryRecord } from './records.ts';
import type { LineageStore } from './store.ts';

/** An artifact or dataset in the lineage graph. */
export interface DatasetNode {
  kind: 'dataset';
  uri: string;
  sha256: string | null;
  size: number | null;
  media_type: string | null;
  etag: string | null;
  version_id: string | null;
  /** Upstream: the try that produced this version (more with `allProducers`). */
  produced_by: TryNode[];
  /** Downstream: tries that read this version. */
  consumed_by: TryNode[];
}

/** A task try in the lineage graph. */
export interface TryNode {
  kind: 'try';
  id: string;
  dag_id: string;
  run_id: string;
  task_id: string;
  map_index: number;
  try_number: number;
  state: string;
  start: string;
  end: string;
  dag_file: string;
  dag_file_hash: string;
  git_commit: string | null;
  operator: string;
  executor: string;
  image: string | null;
  image_digest: string | null;
  params: Record<string, Json>;
  conf: Record<string, Json>;
  metrics: Record<string, number>;
  /** The try's return value when small enough to keep (see XComSummary). */
  return_value: Json | null;
  /** Upstream direction: datasets it read (inlets) … */
  inputs: DatasetNode[];
  /** … and the tries of its upstream tasks in the same run (data passed by XCom, or ordering). */
  upstream: TryNode[];
  /** Datasets it produced: walked on to their readers downstream; leaves (without readers) upstream. */
  outputs: DatasetNode[];
  /** Downstream direction (and for the root's producer): the tries in the same run that list it as upstream. */
  downstream: TryNode[];
  /** Set when this try is already expanded elsewhere in the tree, or the depth limit was reached. */
  elided?: 'seen' | 'depth';
}

export type LineageNode = DatasetNode | TryNode;

export interface LineageQueryOptions {
  /** How many try levels to follow in each direction (default 10). */
  depth?: number;
  /** Show every recorded producer of the root instead of only the one of its current version. */
  allProducers?: boolean;
  /** At most this many consumers per dataset (newest kept, default 20). */
  maxFanout?: number;
  /** Which way to walk: both (default), upstream only or downstream only. */
  direction?: 'both' | 'upstream' | 'downstream';
}

const ms = (iso: string) => Date.parse(iso) || 0;

// a dataset shared by many runs (a raw table read daily) must not make one query load every record
const SCAN_LIMIT = 500;

function datasetFrom(uri: string, a: ArtifactRecord | undefined | null): DatasetNode {
  return {
    kind: 'dataset',
    uri,
    sha256: a?.sha256 ?? null,
    size: a?.size ?? null,
    media_type: a?.media_type ?? null,
    etag: a?.etag ?? null,
    version_id: a?.version_id ?? null,
    produced_by: [],
    consumed_by: [],
  };
}

function tryNodeFrom(t: TryRecord): TryNode {
  return {
    kind: 'try',
    id: t.id,
    dag_id: t.dag_id,
    run_id: t.run_id,
    task_id: t.task_id,
    map_index: t.map_index,
    try_number: t.try_number,
    state: t.state,
    start: t.start,
    end: t.end,
    dag_file: t.dag_file,
    dag_file_hash: t.dag_file_hash,
    git_commit: t.git_commit,
    operator: t.operator,
    executor: t.executor,
    image: t.image,
    image_digest: t.image_digest,
    params: t.params,
    conf: t.conf,
    metrics: t.metrics,
    return_value: t.return_value?.value !== undefined ? t.return_value.value : null,
    inputs: [],
    upstream: [],
    outputs: [],
    downstream: [],
  };
}

/** What a try recorded about `uri` among its outputs (artifacts), if anything. */
function outputRecord(t: TryRecord, uri: string): ArtifactRecord | undefined {
  return t.artifacts.find((a) => a.uri === uri && !a.error);
}

/** What a successful try produced: its described artifacts and its outlets, once each. */
function producedUris(t: TryRecord): string[] {
  if (t.state !== 'success') return [];
  return [...new Set([...t.artifacts.filter((a) => !a.error).map((a) => a.uri), ...t.outlets])];
}

function inputRecord(t: TryRecord, uri: string): ArtifactRecord | undefined {
  return t.inputs?.find((a) => a.uri === uri && !a.error);
}

class Walker {
  private readonly seenUp = new Set<string>();
  private readonly seenDown = new Set<string>();
  private readonly cache = new Map<string, Promise<TryRecord | null>>();

  constructor(
    private readonly store: LineageStore,
    private readonly depth: number,
    private readonly maxFanout: number,
  ) {}

  private getTry(id: string): Promise<TryRecord | null> {
    let p = this.cache.get(id);
    if (!p) this.cache.set(id, (p = this.store.getTry(id)));
    return p;
  }

  /**
   * The producer of the version of `uri` that `consumer` read: the one with the same hash when
   * hashes are known; else one from the consumer's own run; else the newest that ended before
   * the consumer started. Within a run, clocks of different workers and the moment a worker
   * stamps a try's end make "ended before" unreliable, so the run decides there.
   */
  async producerFor(uri: string, sha: string | null, consumer: TryRecord): Promise<TryRecord | undefined> {
    const producers = await this.store.producersOf(uri, SCAN_LIMIT);
    const start = ms(consumer.start);
    const byHash = sha ? producers.filter((p) => outputRecord(p, uri)?.sha256 === sha) : [];
    if (byHash.length) return byHash.find((p) => ms(p.end) <= start) ?? byHash.find((p) => ms(p.start) <= start) ?? byHash[byHash.length - 1];
    return (
      producers.find((p) => p.dag_id === consumer.dag_id && p.run_id === consumer.run_id && ms(p.start) <= start) ??
      producers.find((p) => ms(p.end) <= start)
    );
  }

  /** Upstream from `t`: what it read, the tries it followed, and (as leaves) what else it wrote besides `from`. */
  async up(t: TryRecord, level: number, from?: string): Promise<TryNode> {
    const node = tryNodeFrom(t);
    if (this.seenUp.has(t.id)) return { ...node, elided: 'seen' };
    if (level >= this.depth) return { ...node, elided: 'depth' };
    this.seenUp.add(t.id);
    const viaInputs = new Set<string>();
    for (const uri of t.inlets) {
      const read = inputRecord(t, uri);
      const ds = datasetFrom(uri, read);
      const producer = await this.producerFor(uri, read?.sha256 ?? null, t);
      if (producer) {
        if (!read) Object.assign(ds, datasetFrom(uri, outputRecord(producer, uri)), { produced_by: [] });
        viaInputs.add(producer.id);
        ds.produced_by.push(await this.up(producer, level + 1, uri));
      }
      node.inputs.push(ds);
    }
    for (const id of t.upstream_tries ?? []) {
      // already shown as the producer of an input
      if (viaInputs.has(id)) continue;
      const u = await this.getTry(id);
      if (u) node.upstream.push(await this.up(u, level + 1));
    }
    // a step that hands data on by XCom often registers it as an artifact: its hash belongs in the chain
    for (const uri of producedUris(t)) if (uri !== from) node.outputs.push(datasetFrom(uri, outputRecord(t, uri)));
    return node;
  }

  /** Tries of the same run that list `t` among their upstream tries, walked downstream. */
  async dependents(t: TryRecord, level: number): Promise<TryNode[]> {
    const out: TryNode[] = [];
    for (const d of await this.store.tries(t.dag_id, t.run_id)) {
      if (d.upstream_tries?.includes(t.id)) out.push(await this.down(d, level + 1));
    }
    return out;
  }

  /**
   * Tries that read the version `sha` of `uri` that `producer` wrote (any version without a
   * producer): same hash when both are known; else tries of the producer's run that started
   * after it started, and tries of other runs that started after it ended.
   */
  async consumersFor(uri: string, sha: string | null, producer: TryRecord | undefined): Promise<TryRecord[]> {
    const consumers = await this.store.consumersOf(uri, SCAN_LIMIT);
    return consumers
      .filter((c) => {
        const read = inputRecord(c, uri);
        if (read?.sha256 && sha) return read.sha256 === sha;
        if (!producer) return true;
        if (c.dag_id === producer.dag_id && c.run_id === producer.run_id) return ms(c.start) >= ms(producer.start) && c.id !== producer.id;
        return ms(c.start) >= ms(producer.end);
      })
      .slice(0, this.maxFanout)
      .reverse();
  }

  async down(t: TryRecord, level: number): Promise<TryNode> {
    const node = tryNodeFrom(t);
    if (this.seenDown.has(t.id)) return { ...node, elided: 'seen' };
    if (level >= this.depth) return { ...node, elided: 'depth' };
    this.seenDown.add(t.id);
    for (const uri of producedUris(t)) {
      const rec = outputRecord(t, uri);
      const ds = datasetFrom(uri, rec);
      for (const c of await this.consumersFor(uri, rec?.sha256 ?? null, t)) ds.consumed_by.push(await this.down(c, level + 1));
      node.outputs.push(ds);
    }
    node.downstream = await this.dependents(t, level);
    return node;
  }
}

async function currentHash(uri: string): Promise<{ sha256: string; size: number } | null> {
  const path = localPathOf(uri);
  if (!path) return null;
  try {
    const st = await stat(path);
    if (!st.isFile()) return null;
    return { sha256: await sha256File(path), size: st.size };
  } catch {
    return null;
  }
}

/**
 * The lineage graph around an artifact or dataset URI (a local path is accepted too).
 *
 * Upstream: the try that produced the root's current version (for a local file, the producer
 * whose recorded SHA-256 matches the file on disk; else the newest), then recursively the
 * datasets it read (each resolved to the producer of the version read) and the tries of its
 * upstream tasks in the same run, so a model reaches back to its data set through steps that
 * passed data by XCom. Downstream: the tries that read that version, what they produced, and
 * the tries downstream of them in their run.
 *
 * @example const g = await lineageGraph(store, 'artifacts/iris/model.json'); console.log(renderTree(g));
 */
export async function lineageGraph(store: LineageStore, uri: string, opts: LineageQueryOptions = {}): Promise<DatasetNode> {
  const root = normalizeUri(uri);
  const walker = new Walker(store, opts.depth ?? 10, opts.maxFanout ?? 20);
  const direction = opts.direction ?? 'both';
  const producers = await store.producersOf(root, SCAN_LIMIT);
  const onDisk = await currentHash(root);
  let chosen: TryRecord[];
  if (opts.allProducers) chosen = producers.slice(0, opts.maxFanout ?? 20);
  else {
    const match = onDisk ? producers.find((p) => outputRecord(p, root)?.sha256 === onDisk.sha256) : undefined;
    chosen = match ? [match] : producers.slice(0, 1);
  }
  const described = chosen[0] ? outputRecord(chosen[0], root) : undefined;
  const node = datasetFrom(root, described);
  if (onDisk) Object.assign(node, { sha256: onDisk.sha256, size: onDisk.size, media_type: node.media_type ?? mediaTypeOf(root) });
  for (const p of direction === 'downstream' ? [] : chosen) {
    const pn = await walker.up(p, 0, root);
    // steps after the producer in its run used the artifact when data moves by XCom (evaluate, publish …)
    if (direction === 'both') pn.downstream = await walker.dependents(p, 0);
    node.produced_by.push(pn);
  }
  if (direction !== 'upstream') {
    for (const c of await walker.consumersFor(root, node.sha256, chosen[0])) node.consumed_by.push(await walker.down(c, 0));
  }
  return node;
}

/** An artifact or dataset as listed in a run's provenance. */
export interface DatasetRef {
  uri: string;
  sha256: string | null;
  size: number | null;
  media_type: string | null;
  etag: string | null;
  version_id: string | null;
}

export interface TryProvenance {
  id: string;
  task_id: string;
  map_index: number;
  try_number: number;
  state: string;
  start: string;
  end: string;
  duration_s: number;
  operator: string;
  executor: string;
  image: string | null;
  image_digest: string | null;
  argv: string[] | null;
  resources: ResourcesAsked;
  node: string | null;
  gpu_model: string | null;
  exit_code: number | null;
  error: string | null;
  metrics: Record<string, number>;
  return_value: Json | null;
  inputs: DatasetRef[];
  outputs: DatasetRef[];
  upstream_tries: string[];
  cost: ResourceCost;
}

/** Everything about one run's provenance, for `podflow runs show --lineage`. */
export interface RunProvenance {
  dag_id: string;
  run_id: string;
  run_type: string | null;
  logical_date: string | null;
  dag_file: string;
  dag_file_hash: string;
  git_commit: string | null;
  conf: Record<string, Json>;
  params: Record<string, Json>;
  start: string;
  end: string;
  /** Datasets the run read that it did not produce itself. */
  inputs: DatasetRef[];
  /** Datasets and artifacts the run produced (successful tries only). */
  outputs: DatasetRef[];
  /** The final metrics of the run: each task's last try, merged in task order. */
  metrics: Record<string, number>;
  cost: ResourceCost;
  tries: TryProvenance[];
}

function ref(uri: string, a: ArtifactRecord | undefined): DatasetRef {
  return {
    uri,
    sha256: a?.sha256 ?? null,
    size: a?.size ?? null,
    media_type: a?.media_type ?? null,
    etag: a?.etag ?? null,
    version_id: a?.version_id ?? null,
  };
}

/**
 * The whole provenance of one run: code (DAG file hash, git commit), settings (conf,
 * params), every try with its inputs, outputs, metrics and cost, and the run's external
 * inputs and produced outputs. Null when no lineage is recorded for the run (never ran
 * a task, or past retention).
 */
export async function runProvenance(store: LineageStore, dag_id: string, run_id: string): Promise<RunProvenance | null> {
  const tries = await store.tries(dag_id, run_id);
  if (tries.length === 0) return null;
  const last = tries.reduce((a, b) => (ms(b.end) >= ms(a.end) ? b : a));
  const produced = new Map<string, DatasetRef>();
  const read = new Map<string, DatasetRef>();
  const metrics: Record<string, number> = {};
  const tp: TryProvenance[] = tries.map((t) => {
    const outputs =
      t.state === 'success'
        ? [...new Set([...t.artifacts.filter((a) => !a.error).map((a) => a.uri), ...t.outlets])].map((u) => ref(u, outputRecord(t, u)))
        : [];
    const inputs = t.inlets.map((u) => ref(u, inputRecord(t, u)));
    for (const o of outputs) produced.set(o.uri, o);
    for (const i of inputs) if (!read.has(i.uri)) read.set(i.uri, i);
    Object.assign(metrics, t.metrics);
    return {
      id: t.id,
      task_id: t.task_id,
      map_index: t.map_index,
      try_number: t.try_number,
      state: t.state,
      start: t.start,
      end: t.end,
      duration_s: t.duration_s,
      operator: t.operator,
      executor: t.executor,
      image: t.image,
      image_digest: t.image_digest,
      argv: t.argv,
      resources: t.resources,
      node: t.node,
      gpu_model: t.gpu_model,
      exit_code: t.exit_code,
      error: t.error,
      metrics: t.metrics,
      return_value: t.return_value?.value !== undefined ? t.return_value.value : null,
      inputs,
      outputs,
      upstream_tries: t.upstream_tries ?? [],
      cost: t.cost,
    };
  });
  return {
    dag_id,
    run_id,
    run_type: last.run_type,
    logical_date: last.logical_date,
    dag_file: last.dag_file,
    dag_file_hash: last.dag_file_hash,
    git_commit: last.git_commit,
    conf: last.conf,
    params: last.params,
    start: tries.reduce((a, t) => (ms(t.start) < ms(a) ? t.start : a), tries[0].start),
    end: last.end,
    inputs: [...read.values()].filter((r) => !produced.has(r.uri)),
    outputs: [...produced.values()],
    metrics,
    cost: await store.runCost(dag_id, run_id),
    tries: tp,
  };
}

// rendering lives in render.ts; re-exported so callers find the query and its printer together
export { renderProvenance, renderTree, shortHash } from './render.ts';

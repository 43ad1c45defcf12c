/**
 * The lineage facade the worker and scheduler call. It never throws into them and never makes
 * a task wait on a lineage receiver: records go to Redis, OpenLineage events to a bounded queue.
 *
 * @example
 * const lineage = createLineage({ redis, prefix: config.prefix, env: config.env, logger, retentionDays: config.retentionDays });
 * lineage.runStarted({ dag, run });
 * lineage.tryStarted({ dag, task, run, ti, executor: 'local' });
 * const rec = await lineage.tryFinished({ dag, task, run, ti, executor: 'local', outcome, artifacts_registered, metrics });
 * lineage.runFinished({ dag, run, state: 'success' });
 * await lineage.close();
 */
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { DagRunRecord, DagSpec, Json, TaskInstanceRecord, TaskOutcome, TaskSpec } from '../dag/types.ts';
import type { AbortReason, ArtifactMeta } from '../executor/operator.ts';
import { describeArtifactSafe, isRemoteUri, normalizeUri, type ArtifactRecord } from './artifacts.ts';
import { createEmitterFromEnv, type EmitterOptions, type EmitterStats, type LineageEmitter, type OpenLineageConfig } from './emitter.ts';
import { dagRunEvent, openLineageContext, taskRunEvent, type OpenLineageContext, type RunEvent, type RunEventType } from './openlineage.ts';
import {
  costOf,
  gitInfoOf,
  resourcesAsked,
  summarizeXCom,
  tryId,
  type GitInfo,
  type ResourcesAsked,
  type TryRecord,
} from './records.ts';
import { LineageStore } from './store.ts';

/** What the worker knows when a try starts. */
export interface TryStartInfo {
  dag: DagSpec;
  task: TaskSpec;
  run: DagRunRecord;
  /** The task instance, with the try_number of this try and map_index. */
  ti: TaskInstanceRecord;
  /** Executor that runs the try ("local", "kubernetes" …). */
  executor: string;
  /** The command line actually run, when there is one (command and pod operators). */
  argv?: string[] | null;
  /** ISO start time; default `started_at`, then `ti.start_date`, else now. */
  start?: string;
  /** Start time as the worker measured it (used when `start` is not given). */
  started_at?: Date;
  /** The DAGs folder (for its git commit); default the DAG file's folder. */
  dags_folder?: string;
}

/** What the worker knows when a try ends. */
export interface TryEndInfo extends TryStartInfo {
  outcome: TaskOutcome;
  /** Artifacts the task registered from code (`ctx.artifact(uri, meta)`). */
  artifacts_registered: { uri: string; meta?: ArtifactMeta }[];
  /**
   * Try ids ({@link tryId}) of the upstream tasks' tries this try followed. When omitted, the
   * latest successful try of each of `task.upstream_task_ids` in the run is looked up in the store.
   */
  upstream_tries?: string[];
  /** Metrics the try recorded (`ctx.metric`). */
  metrics?: Record<string, number>;
  /** ISO end time; default `ended_at`, then `ti.end_date`, else now. */
  end?: string;
  /** End time as the worker measured it (used when `end` is not given). */
  ended_at?: Date;
  /** `signal.reason` when the try was aborted: killed (mark failed, cancel) or shutdown give ABORT. */
  abort_reason?: AbortReason;
  /** Resources asked, when the executor knows better than the operator arguments. */
  resources?: ResourcesAsked;
  /** Effective params the task saw; default the DAG's params overridden by the run's conf. */
  params?: Record<string, Json>;
}

export interface RunInfo {
  dag: DagSpec;
  run: DagRunRecord;
  dags_folder?: string;
}

export interface Lineage {
  store: LineageStore;
  emitter: LineageEmitter;
  /** The OpenLineage settings in force. */
  config: OpenLineageConfig;
  /** Emits START for the try (queued; synchronous, never throws). */
  tryStarted(info: TryStartInfo): void;
  /**
   * Describes declared and registered artifacts (hashing local files) and local inlets, stores
   * the try record, and emits COMPLETE, FAIL or ABORT. Never throws: a lineage failure is
   * logged and the record is still returned. A reschedule-mode sensor poke
   * (`up_for_reschedule`) is not a finished try: nothing is stored or emitted.
   */
  tryFinished(info: TryEndInfo): Promise<TryRecord>;
  runStarted(info: RunInfo): void;
  runFinished(info: RunInfo & { state: 'success' | 'failed'; error?: string }): void;
  /** Emission counters (emitted, delivered, dropped, failed, queued). */
  stats(): EmitterStats;
  /** Wait until queued events are delivered or given up on; false on timeout. */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Flush (up to `timeoutMs`, default 5000) and stop. */
  close(timeoutMs?: number): Promise<void>;
}

export interface CreateLineageOptions {
  redis: Redis;
  prefix: string;
  env: Record<string, string | undefined>;
  logger: Logger;
  retentionDays?: number;
  /** Folder relative artifact and inlet paths are resolved against (default the working directory). */
  cwd?: string;
  /** Emitter tuning (backoff …), mainly for tests; queue size and retries come from the environment. */
  emitter?: Partial<EmitterOptions>;
}

const MAX_PENDING_STARTS = 10_000;
const HASH_CONCURRENCY = 4;

function str(v: Json | undefined): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function strArray(v: Json | undefined): string[] | null {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
}

function argvOf(info: TryStartInfo): string[] | null {
  if (info.argv) return info.argv;
  const a = info.task.operator_args;
  const argv = strArray(a.argv);
  if (argv) return argv;
  const cmd = strArray(a.cmds) ?? strArray(a.command);
  const args = strArray(a.arguments) ?? strArray(a.args);
  return cmd || args ? [...(cmd ?? []), ...(args ?? [])] : null;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  });
  await Promise.all(workers);
  return out;
}

function eventTypeOf(info: TryEndInfo): RunEventType {
  if (info.outcome.state === 'success' || info.outcome.state === 'skipped') return 'COMPLETE';
  if (info.abort_reason && (info.abort_reason.kind === 'killed' || info.abort_reason.kind === 'shutdown')) return 'ABORT';
  return 'FAIL';
}

class LineageImpl implements Lineage {
  readonly store: LineageStore;
  readonly emitter: LineageEmitter;
  readonly config: OpenLineageConfig;
  private readonly ctx: OpenLineageContext;
  private readonly logger: Logger;
  private readonly cwd: string;
  private readonly starts = new Map<string, string>();
  // every event goes through this chain so events leave in the order the hooks were called
  private chain: Promise<void> = Promise.resolve();

  constructor(opts: CreateLineageOptions) {
    this.logger = opts.logger;
    this.cwd = opts.cwd ?? process.cwd();
    this.store = new LineageStore(opts.redis, opts.prefix, { retentionDays: opts.retentionDays });
    const { emitter, config } = createEmitterFromEnv(opts.env, opts.logger, opts.emitter);
    this.emitter = emitter;
    this.config = config;
    this.ctx = openLineageContext(config.namespace);
  }

  private folderOf(info: { dag: DagSpec; dags_folder?: string }): string {
    return info.dags_folder ?? dirname(resolve(this.cwd, info.dag.file));
  }

  private enqueue(what: string, build: () => Promise<RunEvent> | RunEvent): void {
    if (!this.emitter.enabled) return;
    this.chain = this.chain
      .then(build)
      .then(
        (ev) => this.emitter.emit(ev),
        (err: unknown) => this.logger.error({ err }, `lineage: building the OpenLineage event for ${what} failed; the event is skipped`),
      );
  }

  tryStarted(info: TryStartInfo): void {
    try {
      const k = { dag_id: info.dag.dag_id, run_id: info.run.dag_run_id, task_id: info.task.task_id, map_index: info.ti.map_index, try_number: info.ti.try_number };
      const id = tryId(k);
      const start = info.start ?? info.started_at?.toISOString() ?? info.ti.start_date ?? new Date().toISOString();
      if (this.starts.size >= MAX_PENDING_STARTS) this.starts.delete(this.starts.keys().next().value as string);
      this.starts.set(id, start);
      const folder = this.folderOf(info);
      this.enqueue(`START of ${id}`, async () =>
        taskRunEvent(
          this.ctx,
          'START',
          {
            ...k,
            data_interval_start: info.run.data_interval_start,
            data_interval_end: info.run.data_interval_end,
            dag_file: info.dag.file,
            git: await gitInfoOf(folder),
            inputs: info.task.inlets.map((u) => normalizeUri(u, this.cwd)),
            outputs: [...info.task.outlets, ...info.task.artifacts].map((u) => normalizeUri(u, this.cwd)),
          },
          start,
        ),
      );
    } catch (err) {
      this.logger.error({ err, dag_id: info.dag?.dag_id, task_id: info.task?.task_id }, 'lineage: tryStarted failed; the task is not affected');
    }
  }

  private baseRecord(info: TryEndInfo): TryRecord {
    const { dag, task, run, ti, outcome } = info;
    const k = { dag_id: dag.dag_id, run_id: run.dag_run_id, task_id: task.task_id, map_index: ti.map_index, try_number: ti.try_number };
    const id = tryId(k);
    const end = info.end ?? info.ended_at?.toISOString() ?? ti.end_date ?? new Date().toISOString();
    const start = info.start ?? info.started_at?.toISOString() ?? this.starts.get(id) ?? ti.start_date ?? end;
    const duration_s = Math.max(0, (Date.parse(end) - Date.parse(start)) / 1000) || 0;
    const facts = outcome.facts ?? {};
    // what the pod really asked for (after templates and capacity profiles) beats the task's arguments
    const podResources = facts.resources !== null && typeof facts.resources === 'object' && !Array.isArray(facts.resources) ? facts.resources : null;
    const resources = info.resources ?? resourcesAsked(podResources ? { resources: podResources } : task.operator_args);
    return {
      id,
      ...k,
      run_type: run.run_type ?? null,
      logical_date: run.logical_date ?? null,
      data_interval_start: run.data_interval_start ?? null,
      data_interval_end: run.data_interval_end ?? null,
      dag_file: dag.file,
      dag_file_hash: dag.file_hash,
      git_commit: null,
      operator: task.operator,
      executor: info.executor,
      image: str(facts.image) ?? str(task.operator_args.image),
      image_digest: str(facts.image_digest) ?? str(facts.imageID) ?? str(facts.image_id),
      argv: argvOf(info),
      resources,
      node: str(facts.node) ?? str(facts.node_name),
      gpu_model: str(facts.gpu_model) ?? str(facts.gpu_product),
      hostname: ti.hostname,
      start,
      end,
      duration_s: Math.round(duration_s * 1000) / 1000,
      exit_code: outcome.exit_code ?? null,
      state: outcome.state,
      error: outcome.error ?? null,
      conf: run.conf ?? {},
      params: info.params ?? { ...dag.params, ...run.conf },
      inlets: task.inlets.map((u) => normalizeUri(u, this.cwd)),
      outlets: task.outlets.map((u) => normalizeUri(u, this.cwd)),
      inputs: [],
      artifacts: [],
      metrics: info.metrics ?? {},
      return_value: summarizeXCom(outcome.return_value),
      cost: costOf(resources, duration_s),
      upstream_tries: info.upstream_tries ?? [],
      facts,
    };
  }

  private async upstreamTries(info: TryEndInfo): Promise<string[]> {
    if (info.upstream_tries) return info.upstream_tries;
    if (info.task.upstream_task_ids.length === 0) return [];
    return this.store.successfulTries(info.dag.dag_id, info.run.dag_run_id, info.task.upstream_task_ids);
  }

  private async describeAll(info: TryEndInfo, rec: TryRecord): Promise<void> {
    const opts = { baseDir: this.cwd };
    const localInlets = rec.inlets.filter((u) => !isRemoteUri(u));
    rec.inputs = await mapLimit(localInlets, HASH_CONCURRENCY, (u) => describeArtifactSafe(u, undefined, opts));
    if (rec.state !== 'success') return;
    // declared artifacts, registered ones (with what the task reported) and local outlets; one record per URI
    const wanted = new Map<string, ArtifactMeta | undefined>();
    for (const a of info.task.artifacts) wanted.set(normalizeUri(a, this.cwd), undefined);
    for (const r of info.artifacts_registered) wanted.set(normalizeUri(r.uri, this.cwd), r.meta ?? wanted.get(normalizeUri(r.uri, this.cwd)));
    const outletsOnly = rec.outlets.filter((u) => !wanted.has(u) && !isRemoteUri(u));
    const described = await mapLimit([...wanted.entries()], HASH_CONCURRENCY, ([u, meta]) => describeArtifactSafe(u, meta, opts));
    const outletRecords: ArtifactRecord[] = (await mapLimit(outletsOnly, HASH_CONCURRENCY, (u) => describeArtifactSafe(u, undefined, opts))).filter(
      (a) => !a.error, // an outlet naming a dataset, not a file, is not an error
    );
    rec.artifacts = [...described, ...outletRecords];
    for (const a of described) {
      if (a.error) this.logger.warn({ dag_id: rec.dag_id, task_id: rec.task_id, run_id: rec.run_id, uri: a.uri }, `lineage: ${a.error}`);
    }
  }

  async tryFinished(info: TryEndInfo): Promise<TryRecord> {
    let rec: TryRecord;
    try {
      rec = this.baseRecord(info);
    } catch (err) {
      this.logger.error({ err }, 'lineage: cannot build the try record (malformed hook arguments); nothing recorded');
      return {} as TryRecord;
    }
    this.starts.delete(rec.id);
    if (rec.state === 'up_for_reschedule') return rec;
    const folder = this.folderOf(info);
    let git: GitInfo | null = null;
    // three independent lookups: one failing must not lose the others
    const [g, ups, described] = await Promise.allSettled([gitInfoOf(folder), this.upstreamTries(info), this.describeAll(info, rec)]);
    if (g.status === 'fulfilled') {
      git = g.value;
      rec.git_commit = g.value?.commit ?? null;
    }
    if (ups.status === 'fulfilled') rec.upstream_tries = ups.value;
    for (const r of [g, ups, described]) {
      if (r.status === 'rejected') this.logger.error({ err: r.reason, try_id: rec.id }, 'lineage: describing the try failed in part; the record is stored with what is known');
    }
    try {
      await this.store.recordTry(rec);
    } catch (err) {
      this.logger.error({ err, try_id: rec.id }, `lineage: storing the record of try ${rec.id} failed; the task is not affected`);
    }
    const type = eventTypeOf(info);
    const abortMsg = info.abort_reason ? info.abort_reason.message : null;
    // the worker appends stack lines to the error: the facet keeps them apart
    const [message, ...stack] = (rec.error ?? abortMsg ?? '').split('\n');
    this.enqueue(`${type} of ${rec.id}`, () =>
      taskRunEvent(
        this.ctx,
        type,
        {
          ...rec,
          git,
          inputs: rec.inlets.map((u) => rec.inputs.find((a) => a.uri === u && !a.error) ?? u),
          // a skipped try ends COMPLETE but produced nothing
          outputs: rec.state === 'success' ? [...rec.outlets, ...rec.artifacts.filter((a) => !a.error)] : [],
          error: message || null,
          stack: stack.length ? stack.join('\n') : null,
        },
        rec.end,
      ),
    );
    return rec;
  }

  runStarted(info: RunInfo): void {
    try {
      const folder = this.folderOf(info);
      const { dag, run } = info;
      const at = run.start_date ?? new Date().toISOString();
      this.enqueue(`START of run ${dag.dag_id}/${run.dag_run_id}`, async () =>
        dagRunEvent(
          this.ctx,
          'START',
          {
            dag_id: dag.dag_id,
            run_id: run.dag_run_id,
            data_interval_start: run.data_interval_start,
            data_interval_end: run.data_interval_end,
            dag_file: dag.file,
            git: await gitInfoOf(folder),
          },
          at,
        ),
      );
    } catch (err) {
      this.logger.error({ err }, 'lineage: runStarted failed; the run is not affected');
    }
  }

  runFinished(info: RunInfo & { state: 'success' | 'failed'; error?: string }): void {
    try {
      const folder = this.folderOf(info);
      const { dag, run } = info;
      const at = run.end_date ?? new Date().toISOString();
      this.enqueue(`${info.state} of run ${dag.dag_id}/${run.dag_run_id}`, async () =>
        dagRunEvent(
          this.ctx,
          info.state === 'success' ? 'COMPLETE' : 'FAIL',
          {
            dag_id: dag.dag_id,
            run_id: run.dag_run_id,
            data_interval_start: run.data_interval_start,
            data_interval_end: run.data_interval_end,
            dag_file: dag.file,
            git: await gitInfoOf(folder),
            error: info.state === 'failed' ? (info.error ?? `DAG run ${run.dag_run_id} of ${dag.dag_id} failed`) : null,
          },
          at,
        ),
      );
    } catch (err) {
      this.logger.error({ err }, 'lineage: runFinished failed; the run is not affected');
    }
  }

  stats(): EmitterStats {
    return this.emitter.stats();
  }

  async flush(timeoutMs = 5000): Promise<boolean> {
    await this.chain;
    return this.emitter.flush(timeoutMs);
  }

  async close(timeoutMs = 5000): Promise<void> {
    await this.chain;
    await this.emitter.close(timeoutMs);
  }
}

/**
 * Create the lineage facade. OpenLineage emission is configured from `env`
 * (PODFLOW_OPENLINEAGE_TRANSPORT none|http|file|console, default none); throws at startup
 * when that configuration is inconsistent (e.g. http without PODFLOW_OPENLINEAGE_URL).
 */
export function createLineage(opts: CreateLineageOptions): Lineage {
  return new LineageImpl(opts);
}

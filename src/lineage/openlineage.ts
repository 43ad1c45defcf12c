/**
 * OpenLineage RunEvents (spec 2-0-2) for task tries and DAG runs.
 *
 * Jobs: a DAG run is job `<dag_id>`, a task try is job `<dag_id>.<task_id>` whose run carries a
 * `parent` facet pointing at the DAG run. Run ids are UUIDs derived deterministically (v5,
 * SHA-1 over the try's identity), so a try's START and COMPLETE share one id in any process,
 * and a retry (new try number) is a new OpenLineage run. Datasets are named by the OpenLineage
 * naming conventions (https://openlineage.io/docs/spec/naming).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { localPathOf, type ArtifactRecord } from './artifacts.ts';
import type { GitInfo } from './records.ts';

export const OPENLINEAGE_SCHEMA_URL = 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent';

const FACET_SCHEMAS = {
  parent: 'https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet',
  nominalTime: 'https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet',
  processing_engine: 'https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet',
  errorMessage: 'https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet',
  jobType: 'https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet',
  sourceCodeLocation: 'https://openlineage.io/spec/facets/1-1-0/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet',
  version: 'https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet',
  outputStatistics: 'https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet',
} as const;

export type RunEventType = 'START' | 'RUNNING' | 'COMPLETE' | 'ABORT' | 'FAIL' | 'OTHER';

export interface Facet {
  _producer: string;
  _schemaURL: string;
  [key: string]: unknown;
}

export interface OLDataset {
  namespace: string;
  name: string;
  facets?: Record<string, Facet>;
  inputFacets?: Record<string, Facet>;
  outputFacets?: Record<string, Facet>;
}

export interface RunEvent {
  eventType: RunEventType;
  eventTime: string;
  producer: string;
  schemaURL: string;
  run: { runId: string; facets: Record<string, Facet> };
  job: { namespace: string; name: string; facets: Record<string, Facet> };
  inputs: OLDataset[];
  outputs: OLDataset[];
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Podflow's version, from package.json. */
export const PODFLOW_VERSION = packageVersion();

/** Who emits the events (`producer` and every facet's `_producer`). */
export interface OpenLineageContext {
  /** Job namespace (`PODFLOW_OPENLINEAGE_NAMESPACE`, default `podflow`). */
  namespace: string;
  /** Producer URI; default `urn:podflow:<version>`. */
  producer: string;
  /** Podflow version for the processing_engine facet. */
  version: string;
}

/** The default context: namespace `podflow`, producer `urn:podflow:<version>`. */
export function openLineageContext(namespace = 'podflow'): OpenLineageContext {
  return { namespace, producer: `urn:podflow:${PODFLOW_VERSION}`, version: PODFLOW_VERSION };
}

// RFC 4122 URL namespace: our names are URL-like, and any fixed namespace keeps ids stable.
const URL_NAMESPACE = Buffer.from('6ba7b8119dad11d180b400c04fd430c8', 'hex');

/** A name-based (version 5, SHA-1) UUID: the same name always gives the same id. */
export function uuidV5(name: string, namespace: Buffer = URL_NAMESPACE): string {
  const h = createHash('sha1').update(namespace).update(name, 'utf8').digest();
  const b = Buffer.from(h.subarray(0, 16));
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** The OpenLineage run id of a DAG run. */
export function dagRunUuid(namespace: string, dag_id: string, run_id: string): string {
  return uuidV5(`podflow:${JSON.stringify([namespace, dag_id, run_id])}`);
}

/** The OpenLineage run id of one task try (shared by its START and its COMPLETE/FAIL/ABORT). */
export function taskRunUuid(
  namespace: string,
  k: { dag_id: string; run_id: string; task_id: string; map_index: number; try_number: number },
): string {
  return uuidV5(`podflow:${JSON.stringify([namespace, k.dag_id, k.run_id, k.task_id, k.map_index, k.try_number])}`);
}

const OBJECT_STORES = new Set(['s3', 's3a', 's3n', 'gs', 'gcs', 'abfss', 'abfs', 'wasbs', 'wasb', 'oss', 'r2']);
const SQL = new Set(['postgres', 'postgresql', 'mysql', 'mssql', 'sqlserver', 'redshift', 'trino', 'clickhouse', 'oracle', 'db2']);

/**
 * OpenLineage dataset namespace and name for a URI:
 * `file:///a/b.csv` -> (`file`, `/a/b.csv`); `s3://bucket/k/x.parquet` -> (`s3://bucket`, `k/x.parquet`);
 * `postgres://h:5432/db/schema/table` -> (`postgres://h:5432`, `db.schema.table`);
 * `https://host/p` -> (`https://host`, `/p`); `x-dataset:name` -> (`x-dataset`, `name`).
 */
export function datasetName(uri: string): { namespace: string; name: string } {
  const local = localPathOf(uri);
  if (local !== null) return { namespace: 'file', name: local };
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(uri);
  if (!m) {
    const i = uri.indexOf(':');
    return i > 0 ? { namespace: uri.slice(0, i), name: uri.slice(i + 1) || uri } : { namespace: 'podflow', name: uri };
  }
  const scheme = m[1].toLowerCase();
  const authority = m[2];
  const path = m[3] || '/';
  const ns = `${scheme}://${authority}`;
  if (OBJECT_STORES.has(scheme)) return { namespace: ns, name: path.replace(/^\/+/, '') || '/' };
  if (SQL.has(scheme)) return { namespace: ns, name: path.replace(/^\/+/, '').split('/').join('.') || '/' };
  return { namespace: ns, name: path };
}

/** What a task event needs to know; a TryRecord (plus git info) has all of it. */
export interface TaskEventData {
  dag_id: string;
  run_id: string;
  task_id: string;
  map_index: number;
  try_number: number;
  data_interval_start: string | null;
  data_interval_end: string | null;
  dag_file: string;
  git: GitInfo | null;
  /** Inlets: URIs, or described records (with a hash) when known. */
  inputs: (string | ArtifactRecord)[];
  /** Outlets and artifacts: URIs (START) or described records (COMPLETE). */
  outputs: (string | ArtifactRecord)[];
  error?: string | null;
  stack?: string | null;
}

export interface DagRunEventData {
  dag_id: string;
  run_id: string;
  data_interval_start: string | null;
  data_interval_end: string | null;
  dag_file: string;
  git: GitInfo | null;
  error?: string | null;
}

function facet(ctx: OpenLineageContext, schema: keyof typeof FACET_SCHEMAS, body: Record<string, unknown>): Facet {
  return { _producer: ctx.producer, _schemaURL: FACET_SCHEMAS[schema], ...body };
}

function httpRepoUrl(remote: string): string | null {
  // git@github.com:org/repo.git -> https://github.com/org/repo
  const ssh = /^git@([^:]+):(.+?)(?:\.git)?$/.exec(remote);
  if (ssh) return `https://${ssh[1]}/${ssh[2]}`;
  const http = /^https?:\/\/(?:[^@/]+@)?(.+?)(?:\.git)?$/.exec(remote);
  return http ? `https://${http[1]}` : null;
}

function sourceCodeFacet(ctx: OpenLineageContext, dagFile: string, git: GitInfo | null): Record<string, Facet> {
  if (!git) return {};
  const abs = resolve(dagFile);
  const path = relative(git.toplevel, abs).split('\\').join('/');
  const web = git.remote ? httpRepoUrl(git.remote) : null;
  // a browsable URL when the origin is a web host; otherwise the file itself
  const url = web ? `${web}/blob/${git.commit}/${path}` : pathToFileURL(abs).href;
  return {
    sourceCodeLocation: facet(ctx, 'sourceCodeLocation', {
      type: 'git',
      url,
      ...(git.remote ? { repoUrl: git.remote } : {}),
      path,
      version: git.commit,
    }),
  };
}

function nominalTime(ctx: OpenLineageContext, start: string | null, end: string | null): Record<string, Facet> {
  if (!start) return {};
  return { nominalTime: facet(ctx, 'nominalTime', { nominalStartTime: start, ...(end ? { nominalEndTime: end } : {}) }) };
}

function engine(ctx: OpenLineageContext): Record<string, Facet> {
  return { processing_engine: facet(ctx, 'processing_engine', { name: 'podflow', version: ctx.version, openlineageAdapterVersion: ctx.version }) };
}

function versionOf(a: ArtifactRecord): string | null {
  return a.sha256 ?? a.version_id ?? a.etag ?? null;
}

function dataset(ctx: OpenLineageContext, item: string | ArtifactRecord, output: boolean): OLDataset {
  const a = typeof item === 'string' ? null : item;
  const ds: OLDataset = datasetName(a ? a.uri : (item as string));
  const v = a && !a.error ? versionOf(a) : null;
  if (v) ds.facets = { version: facet(ctx, 'version', { datasetVersion: v }) };
  if (output && a && !a.error && a.size !== null) {
    ds.outputFacets = {
      outputStatistics: facet(ctx, 'outputStatistics', {
        size: a.size,
        ...(a.file_count !== undefined ? { fileCount: a.file_count } : {}),
      }),
    };
  }
  return ds;
}

function dedupe(items: (string | ArtifactRecord)[]): (string | ArtifactRecord)[] {
  // a URI declared as outlet and registered as artifact is one dataset; keep the described one
  const by = new Map<string, string | ArtifactRecord>();
  for (const it of items) {
    const uri = typeof it === 'string' ? it : it.uri;
    const prev = by.get(uri);
    if (!prev || typeof prev === 'string') by.set(uri, it);
  }
  return [...by.values()];
}

/** One RunEvent for a task try. `eventTime` defaults to now. */
export function taskRunEvent(ctx: OpenLineageContext, eventType: RunEventType, d: TaskEventData, eventTime: string = new Date().toISOString()): RunEvent {
  const parentRunId = dagRunUuid(ctx.namespace, d.dag_id, d.run_id);
  const parentJob = { namespace: ctx.namespace, name: d.dag_id };
  const runFacets: Record<string, Facet> = {
    parent: facet(ctx, 'parent', {
      run: { runId: parentRunId },
      job: parentJob,
      root: { run: { runId: parentRunId }, job: parentJob },
    }),
    ...nominalTime(ctx, d.data_interval_start, d.data_interval_end),
    ...engine(ctx),
  };
  if ((eventType === 'FAIL' || eventType === 'ABORT') && d.error) {
    runFacets.errorMessage = facet(ctx, 'errorMessage', {
      message: d.error,
      programmingLanguage: 'JavaScript',
      ...(d.stack ? { stackTrace: d.stack } : {}),
    });
  }
  return {
    eventType,
    eventTime,
    producer: ctx.producer,
    schemaURL: OPENLINEAGE_SCHEMA_URL,
    run: { runId: taskRunUuid(ctx.namespace, d), facets: runFacets },
    job: {
      namespace: ctx.namespace,
      name: `${d.dag_id}.${d.task_id}`,
      facets: {
        jobType: facet(ctx, 'jobType', { processingType: 'BATCH', integration: 'PODFLOW', jobType: 'TASK' }),
        ...sourceCodeFacet(ctx, d.dag_file, d.git),
      },
    },
    inputs: dedupe(d.inputs).map((i) => dataset(ctx, i, false)),
    // a failed or aborted try produced nothing trustworthy
    outputs: eventType === 'FAIL' || eventType === 'ABORT' ? [] : dedupe(d.outputs).map((o) => dataset(ctx, o, true)),
  };
}

/** One RunEvent for a DAG run (job `<dag_id>`, jobType DAG). */
export function dagRunEvent(ctx: OpenLineageContext, eventType: RunEventType, d: DagRunEventData, eventTime: string = new Date().toISOString()): RunEvent {
  const runFacets: Record<string, Facet> = { ...nominalTime(ctx, d.data_interval_start, d.data_interval_end), ...engine(ctx) };
  if ((eventType === 'FAIL' || eventType === 'ABORT') && d.error) {
    runFacets.errorMessage = facet(ctx, 'errorMessage', { message: d.error, programmingLanguage: 'JavaScript' });
  }
  return {
    eventType,
    eventTime,
    producer: ctx.producer,
    schemaURL: OPENLINEAGE_SCHEMA_URL,
    run: { runId: dagRunUuid(ctx.namespace, d.dag_id, d.run_id), facets: runFacets },
    job: {
      namespace: ctx.namespace,
      name: d.dag_id,
      facets: {
        jobType: facet(ctx, 'jobType', { processingType: 'BATCH', integration: 'PODFLOW', jobType: 'DAG' }),
        ...sourceCodeFacet(ctx, d.dag_file, d.git),
      },
    },
    inputs: [],
    outputs: [],
  };
}

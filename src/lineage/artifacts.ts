/**
 * Describing artifacts and datasets for lineage: a local file or folder is hashed (SHA-256,
 * streamed), a remote object is described by what the task reported about it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ArtifactMeta } from '../executor/operator.ts';
import type { Json } from '../dag/types.ts';

/** What lineage knows about one artifact or dataset at one point in time. */
export interface ArtifactRecord {
  /** Normalized URI: local paths become absolute `file://` URIs. */
  uri: string;
  kind: 'file' | 'directory' | 'remote';
  /** Bytes; for a directory, the sum over its files. */
  size: number | null;
  media_type: string | null;
  /** Hex SHA-256 of the content; for a directory, of its sorted manifest (see {@link describeArtifact}). */
  sha256: string | null;
  /** ISO time of last modification (local files and folders). */
  mtime: string | null;
  /** Object store ETag, as reported by the task. */
  etag: string | null;
  /** Object store version id, as reported by the task. */
  version_id: string | null;
  /** Directories only: how many files the manifest lists. */
  file_count?: number;
  /** Other metadata the task reported (rows, schema, framework …). */
  meta?: Record<string, Json>;
  /** Set when the artifact could not be described (e.g. the file does not exist). */
  error?: string;
}

/** Thrown when a local artifact cannot be read; the message names the path and the fix. */
export class ArtifactNotFoundError extends Error {
  readonly code = 'ARTIFACT_NOT_FOUND';
  constructor(
    readonly uri: string,
    readonly path: string,
    cause: string,
  ) {
    super(
      `artifact ${uri}: cannot read ${path} (${cause}); make sure the task writes it before it ends, ` +
        `or declare a path the worker can see (artifacts of pods must live on a shared volume or be remote URIs)`,
    );
  }
}

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]+):/;

/** True for `s3://…`, `gs://…`, `https://…`, `postgres://…`, `x-dataset:name`; false for paths and `file:` URIs. */
export function isRemoteUri(uri: string): boolean {
  const m = SCHEME.exec(uri);
  return m !== null && m[1].toLowerCase() !== 'file';
}

/**
 * Normalize a path or URI so the same artifact always has the same key:
 * a local path (relative to `baseDir`, default the working directory) or a `file:` URI becomes
 * an absolute `file:///…` URI; the scheme of any other URI is lower-cased; a trailing slash is dropped.
 *
 * @example normalizeUri('data/iris.csv', '/srv') // 'file:///srv/data/iris.csv'
 */
export function normalizeUri(uriOrPath: string, baseDir: string = process.cwd()): string {
  const s = uriOrPath.trim();
  const m = SCHEME.exec(s);
  if (!m) return pathToFileURL(resolve(baseDir, s)).href;
  const scheme = m[1].toLowerCase();
  if (scheme === 'file') {
    // file:relative or file:///abs; both to an absolute, canonical file URL
    try {
      const p = /^file:\/\//i.test(s) ? fileURLToPath('file://' + s.slice(7)) : s.slice(5);
      return pathToFileURL(isAbsolute(p) ? resolve(p) : resolve(baseDir, p)).href;
    } catch {
      // file://otherhost/… is not a path on this machine: keep it as written
      return 'file' + s.slice(4);
    }
  }
  const rest = s.slice(m[1].length);
  return (scheme + rest).replace(/([^/])\/$/, '$1');
}

/** The local path of a normalized `file://` URI, or null for a remote one. */
export function localPathOf(uri: string): string | null {
  if (!uri.startsWith('file://')) return null;
  try {
    return fileURLToPath(uri);
  } catch {
    return null;
  }
}

const MEDIA_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.jsonl': 'application/x-ndjson',
  '.ndjson': 'application/x-ndjson',
  '.csv': 'text/csv',
  '.tsv': 'text/tab-separated-values',
  '.txt': 'text/plain',
  '.log': 'text/plain',
  '.md': 'text/markdown',
  '.html': 'text/html',
  '.xml': 'application/xml',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.parquet': 'application/vnd.apache.parquet',
  '.arrow': 'application/vnd.apache.arrow.file',
  '.feather': 'application/vnd.apache.arrow.file',
  '.avro': 'application/avro',
  '.orc': 'application/x-orc',
  '.onnx': 'application/onnx',
  '.pt': 'application/x-pytorch',
  '.pth': 'application/x-pytorch',
  '.safetensors': 'application/x-safetensors',
  '.h5': 'application/x-hdf5',
  '.hdf5': 'application/x-hdf5',
  '.pb': 'application/x-protobuf',
  '.tflite': 'application/x-tflite',
  '.pkl': 'application/x-pickle',
  '.pickle': 'application/x-pickle',
  '.joblib': 'application/x-joblib',
  '.npy': 'application/x-npy',
  '.npz': 'application/x-npz',
  '.bin': 'application/octet-stream',
  '.gz': 'application/gzip',
  '.zip': 'application/zip',
  '.tar': 'application/x-tar',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.pdf': 'application/pdf',
};

/** Media type guessed from a path's or URI's extension; `application/octet-stream` when unknown. */
export function mediaTypeOf(pathOrUri: string): string {
  const noQuery = pathOrUri.replace(/[?#].*$/, '');
  return MEDIA_TYPES[extname(noQuery).toLowerCase()] ?? 'application/octet-stream';
}

// Inlets are described on every try: a large data set that did not change must not be re-read
// each time. Keyed by path, size, mtime and inode, as make and rsync decide a file is unchanged;
// like git's "racy clean" rule, a file modified in the last seconds is never trusted to the cache
// (a same-size rewrite within the mtime granularity would otherwise keep a stale hash).
const HASH_CACHE_MAX = 10_000;
const HASH_CACHE_MIN_BYTES = 16 * 1024 * 1024;
const HASH_CACHE_SETTLED_MS = 2000;
const hashCache = new Map<string, string>();

/** Hex SHA-256 of a file, streamed in 1 MiB chunks (never read whole into memory); cached while size and mtime are unchanged. */
export async function sha256File(path: string): Promise<string> {
  const before = await stat(path);
  const key = `${path}\u0000${before.size}\u0000${before.mtimeMs}\u0000${before.ino}`;
  const hit = hashCache.get(key);
  if (hit) return hit;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  const hex = hash.digest('hex');
  const after = await stat(path);
  // a file written while it was read has no single hash worth remembering
  const settled = Date.now() - after.mtimeMs > HASH_CACHE_SETTLED_MS;
  if (after.size >= HASH_CACHE_MIN_BYTES && settled && after.size === before.size && after.mtimeMs === before.mtimeMs) {
    if (hashCache.size >= HASH_CACHE_MAX) hashCache.delete(hashCache.keys().next().value as string);
    hashCache.set(key, hex);
  }
  return hex;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

function splitReported(reported: ArtifactMeta | undefined): { known: ArtifactMeta; rest: Record<string, Json> | undefined } {
  if (!reported) return { known: {}, rest: undefined };
  const { media_type, size, sha256, etag, version_id, ...others } = reported;
  const rest: Record<string, Json> = {};
  for (const [k, v] of Object.entries(others)) if (v !== undefined) rest[k] = v;
  return { known: { media_type, size, sha256, etag, version_id }, rest: Object.keys(rest).length ? rest : undefined };
}

/**
 * Describe one artifact for the lineage record.
 *
 * - Local file (a path, relative to `opts.baseDir`, or a `file:` URI): size, media type (from the
 *   extension unless the task reported one), streamed SHA-256 and mtime.
 * - Local directory: the SHA-256 of its manifest, one line `<sha256>  <relative/posix/path>\n`
 *   per file sorted by path (the `sha256sum` format), so two folders with the same files in the
 *   same places hash the same; size is the sum, `file_count` the number of files.
 * - Remote URI (`s3://`, `gs://`, `http(s)://` …): the metadata the task reported (size, ETag,
 *   version id, sha256, media type); nothing is fetched.
 *
 * @throws ArtifactNotFoundError when a local path does not exist or cannot be read.
 * @example await describeArtifact('artifacts/model.json') // { uri: 'file:///…/artifacts/model.json', size: 1234, sha256: '…', … }
 */
export async function describeArtifact(
  uriOrPath: string,
  reported?: ArtifactMeta,
  opts: { baseDir?: string } = {},
): Promise<ArtifactRecord> {
  const uri = normalizeUri(uriOrPath, opts.baseDir);
  const { known, rest } = splitReported(reported);
  const path = localPathOf(uri);
  if (path === null) {
    return {
      uri,
      kind: 'remote',
      size: typeof known.size === 'number' ? known.size : null,
      media_type: known.media_type ?? mediaTypeOf(uri),
      sha256: known.sha256 ?? null,
      mtime: null,
      etag: known.etag ?? null,
      version_id: known.version_id ?? null,
      ...(rest ? { meta: rest } : {}),
    };
  }
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new ArtifactNotFoundError(uri, path, (err as NodeJS.ErrnoException).code ?? String(err));
  }
  const common = { uri, mtime: st.mtime.toISOString(), etag: known.etag ?? null, version_id: known.version_id ?? null };
  try {
    if (st.isDirectory()) {
      const files = (await listFiles(path)).map((f) => ({ abs: f, rel: relative(path, f).split(sep).join('/') }));
      files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
      const manifest = createHash('sha256');
      let size = 0;
      for (const f of files) {
        manifest.update(`${await sha256File(f.abs)}  ${f.rel}\n`);
        size += (await stat(f.abs)).size;
      }
      return {
        ...common,
        kind: 'directory',
        size,
        media_type: known.media_type ?? 'inode/directory',
        sha256: manifest.digest('hex'),
        file_count: files.length,
        ...(rest ? { meta: rest } : {}),
      };
    }
    return {
      ...common,
      kind: 'file',
      size: st.size,
      media_type: known.media_type ?? mediaTypeOf(path),
      sha256: await sha256File(path),
      ...(rest ? { meta: rest } : {}),
    };
  } catch (err) {
    throw new ArtifactNotFoundError(uri, path, (err as NodeJS.ErrnoException).code ?? String(err));
  }
}

/** Like {@link describeArtifact} but never throws: a failure is kept in the record's `error`. */
export async function describeArtifactSafe(
  uriOrPath: string,
  reported?: ArtifactMeta,
  opts: { baseDir?: string } = {},
): Promise<ArtifactRecord> {
  try {
    return await describeArtifact(uriOrPath, reported, opts);
  } catch (err) {
    let uri = uriOrPath;
    try {
      uri = normalizeUri(uriOrPath, opts.baseDir);
    } catch {
      // keep the raw string: the record must still say what was declared
    }
    return {
      uri,
      kind: isRemoteUri(uri) ? 'remote' : 'file',
      size: null,
      media_type: null,
      sha256: null,
      mtime: null,
      etag: null,
      version_id: null,
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ArtifactNotFoundError,
  describeArtifact,
  describeArtifactSafe,
  isRemoteUri,
  mediaTypeOf,
  normalizeUri,
} from '../../src/lineage/artifacts.ts';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pf-lineage-art-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('describeArtifact', () => {
  it('hashes a local file with its exact sha256, size and media type, and gives it an absolute file URI', async () => {
    const content = 'sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,setosa\n';
    const p = join(dir, 'iris.csv');
    await writeFile(p, content);
    const rec = await describeArtifact(p);
    expect(rec).toEqual({
      uri: pathToFileURL(p).href,
      kind: 'file',
      size: Buffer.byteLength(content),
      media_type: 'text/csv',
      sha256: sha(content),
      mtime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      etag: null,
      version_id: null,
    });
  });

  it('streams a file larger than one read chunk and still hashes it exactly', async () => {
    const big = Buffer.alloc(3 * (1 << 20) + 17, 7);
    const p = join(dir, 'weights.bin');
    await writeFile(p, big);
    const rec = await describeArtifact(p);
    expect([rec.sha256, rec.size, rec.media_type]).toEqual([sha(big), big.length, 'application/octet-stream']);
  });

  it('accepts file:// URIs and relative paths (resolved against baseDir) as the same artifact', async () => {
    await writeFile(join(dir, 'model.json'), '{"trees":3}');
    const a = await describeArtifact(pathToFileURL(join(dir, 'model.json')).href);
    const b = await describeArtifact('model.json', undefined, { baseDir: dir });
    expect(b.uri).toBe(a.uri);
    expect([a.sha256, a.media_type, a.size]).toEqual([sha('{"trees":3}'), 'application/json', 11]);
  });

  it('prefers the media type and extra metadata the task reported', async () => {
    await writeFile(join(dir, 'model.bin'), 'x');
    const rec = await describeArtifact(join(dir, 'model.bin'), { media_type: 'application/x-onnx', framework: 'onnx', rows: 150 });
    expect(rec.media_type).toBe('application/x-onnx');
    expect(rec.meta).toEqual({ framework: 'onnx', rows: 150 });
  });

  it('hashes a directory as the sha256 of its sorted "<sha256>  <path>" manifest', async () => {
    const d = join(dir, 'split');
    await mkdir(join(d, 'sub'), { recursive: true });
    await writeFile(join(d, 'train.csv'), 'a,b\n1,2\n');
    await writeFile(join(d, 'sub', 'test.csv'), 'a,b\n3,4\n');
    await writeFile(join(d, 'README'), 'split');
    const manifest = `${sha('split')}  README\n${sha('a,b\n3,4\n')}  sub/test.csv\n${sha('a,b\n1,2\n')}  train.csv\n`;
    const rec = await describeArtifact(d);
    expect([rec.kind, rec.sha256, rec.size, rec.file_count, rec.media_type]).toEqual(['directory', sha(manifest), 5 + 8 + 8, 3, 'inode/directory']);
  });

  it('describes a remote object by the metadata the task reported, fetching nothing', async () => {
    const rec = await describeArtifact('S3://models/iris/model.onnx', { etag: '"9b2cf535f27731c974343645a3985328"', version_id: 'v3', size: 2048, owner: 'ml' });
    expect(rec).toEqual({
      uri: 's3://models/iris/model.onnx',
      kind: 'remote',
      size: 2048,
      media_type: 'application/onnx',
      sha256: null,
      mtime: null,
      etag: '"9b2cf535f27731c974343645a3985328"',
      version_id: 'v3',
      meta: { owner: 'ml' },
    });
  });

  it('throws ArtifactNotFoundError naming the path and the fix when a local artifact is missing', async () => {
    const p = join(dir, 'nope', 'model.pt');
    const err = await describeArtifact(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArtifactNotFoundError);
    expect((err as Error).message).toBe(
      `artifact ${pathToFileURL(p).href}: cannot read ${p} (ENOENT); make sure the task writes it before it ends, ` +
        'or declare a path the worker can see (artifacts of pods must live on a shared volume or be remote URIs)',
    );
  });

  it('describeArtifactSafe keeps the failure in the record instead of throwing', async () => {
    const p = join(dir, 'missing.parquet');
    const rec = await describeArtifactSafe(p);
    expect([rec.uri, rec.sha256, rec.error?.startsWith(`artifact ${pathToFileURL(p).href}: cannot read`)]).toEqual([pathToFileURL(p).href, null, true]);
  });
});

describe('URIs and media types', () => {
  it('normalizes local paths to absolute file URIs and lower-cases remote schemes', () => {
    expect(normalizeUri('data/../data/iris.csv', '/srv/pf')).toBe('file:///srv/pf/data/iris.csv');
    expect(normalizeUri('file:///srv/pf/./x.json')).toBe('file:///srv/pf/x.json');
    expect(normalizeUri('GS://bucket/path/')).toBe('gs://bucket/path');
    expect(normalizeUri('x-dataset:iris')).toBe('x-dataset:iris');
  });

  it('keeps a file URI of another host as written instead of throwing, and describes it as remote', async () => {
    expect(normalizeUri('FILE://nas/share/iris.csv')).toBe('file://nas/share/iris.csv');
    expect((await describeArtifact('file://nas/share/iris.csv', { size: 10 })).kind).toBe('remote');
  });

  it('tells remote URIs from local paths', () => {
    expect(['s3://b/k', 'https://h/p', 'file:///a', '/a/b', 'rel/c.csv'].map(isRemoteUri)).toEqual([true, true, false, false, false]);
  });

  it('guesses media types from the extension', () => {
    expect(['a.json', 'a.csv', 'a.onnx', 'a.pt', 'a.pkl', 'a.bin', 'a.parquet', 'a.txt', 's3://b/k.CSV?versionId=1', 'a.unknown']
      .map(mediaTypeOf)).toEqual([
      'application/json',
      'text/csv',
      'application/onnx',
      'application/x-pytorch',
      'application/x-pickle',
      'application/octet-stream',
      'application/vnd.apache.parquet',
      'text/plain',
      'text/csv',
      'application/octet-stream',
    ]);
  });
});

describe('hash cache', () => {
  it('re-hashes a small file rewritten with the same size at once (never a stale hash)', async () => {
    const p = join(dir, 'same-size.json');
    await writeFile(p, '{"v":1}');
    const a = await describeArtifact(p);
    await writeFile(p, '{"v":2}');
    const b = await describeArtifact(p);
    expect([a.sha256, b.sha256]).toEqual([sha('{"v":1}'), sha('{"v":2}')]);
  });

  it('re-hashes a large file whose content changed', async () => {
    const p = join(dir, 'big-changing.bin');
    const one = Buffer.alloc(17 * 1024 * 1024, 1);
    await writeFile(p, one);
    // backdate it so it counts as settled and gets cached
    const { utimes } = await import('node:fs/promises');
    await utimes(p, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    expect((await describeArtifact(p)).sha256).toBe(sha(one));
    const two = Buffer.alloc(17 * 1024 * 1024, 2);
    await writeFile(p, two);
    expect((await describeArtifact(p)).sha256).toBe(sha(two));
  });
});

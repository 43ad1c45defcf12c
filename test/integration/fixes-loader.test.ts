import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { DagFolderLoader } from '../../src/loader/dag-loader.ts';
import { StateStore } from '../../src/state/store.ts';
import { dagsFolder } from '../support/podflow.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

const dagFile = (id: string, extra = '') => `import { dag } from 'podflow';\n${extra}\nexport default dag({ dag_id: '${id}', schedule: null }, (d) => { d.task('a', async () => 1); });\n`;
// Busy for a while at import, so that without ordered application this file's result arrives last.
const SLOW = 'const until = Date.now() + 1500; while (Date.now() < until) {}';

describe('DAG folder loader: duplicate DAG ids, error messages', () => {
  let redis: Redis;
  let folder: ReturnType<typeof dagsFolder>;
  let store: StateStore;
  let loader: DagFolderLoader;
  beforeAll(() => {
    redis = new Redis(redisUrl());
  });
  afterAll(() => redis.disconnect());
  const fresh = (files: Record<string, string>) => {
    folder = dagsFolder(files);
    store = new StateStore(redis, uniquePrefix('loader'));
    loader = new DagFolderLoader(store, { folder: folder.dir, importTimeoutMs: 30_000, logger: pino({ level: 'silent' }), concurrency: 2 });
  };
  afterEach(() => folder?.remove());
  const errorOf = async (name: string) => (await store.importErrors()).find((e) => e.filename.endsWith(name));

  it('gives a duplicated DAG id to the first file in path order even when that file parses last', async () => {
    fresh({ 'a.ts': dagFile('x', SLOW), 'b.ts': dagFile('x') });
    await loader.scan();
    expect((await store.getDag('x'))!.file).toBe(join(folder.dir, 'a.ts'));
    expect((await errorOf('b.ts'))!.stack_trace).toMatch(/^.*b\.ts \(DAG 'x'\): DAG id 'x' is already defined in .*a\.ts; rename the DAG in one of the two files$/);
  });

  it('brings a refused duplicate back and clears its error when the owning file is removed', async () => {
    fresh({ 'a.ts': dagFile('x'), 'b.ts': dagFile('x') });
    await loader.scan();
    expect(await errorOf('b.ts')).toBeDefined();
    rmSync(join(folder.dir, 'a.ts'));
    await loader.scan();
    expect((await store.getDag('x'))!.file).toBe(join(folder.dir, 'b.ts'));
    expect(await store.importErrors()).toEqual([]);
  });

  it('brings a refused duplicate back when the owning file stops defining the DAG', async () => {
    fresh({ 'a.ts': dagFile('x'), 'b.ts': dagFile('x') });
    await loader.scan();
    folder.write('a.ts', dagFile('yy'));
    await loader.scan();
    expect((await store.getDag('x'))!.file).toBe(join(folder.dir, 'b.ts'));
    expect((await store.getDag('yy'))!.file).toBe(join(folder.dir, 'a.ts'));
    expect(await store.importErrors()).toEqual([]);
  });

  it('keeps the current owner when a file sorting earlier is added later with the same DAG id', async () => {
    fresh({ 'b.ts': dagFile('x') });
    await loader.scan();
    folder.write('a.ts', dagFile('x'));
    await loader.scan();
    expect((await store.getDag('x'))!.file).toBe(join(folder.dir, 'b.ts'));
    expect((await errorOf('a.ts'))!.stack_trace).toMatch(/a\.ts \(DAG 'x'\): DAG id 'x' is already defined in .*b\.ts;/);
  });

  it('names the file and the DAG once in an invalid DAG import error', async () => {
    fresh({
      'cycle.ts': `import { dag } from 'podflow';\nexport default dag({ dag_id: 'cyclic', schedule: null }, (d) => { const a = d.task('a', async () => 1); a.then(d.task('b', async () => 1)).then(a); });\n`,
    });
    await loader.scan();
    const e = (await errorOf('cycle.ts'))!;
    expect(e.stack_trace).toMatch(/cycle\.ts \(DAG 'cyclic'\): dependencies form a cycle: a -> b -> a; remove one of these edges$/);
    expect(e.stack_trace).not.toContain("DAG 'cyclic': ");
  });

  it('drops stack frames of Node internals (node:events) from an import failure', async () => {
    fresh({
      'emits.ts': `import { dag } from 'podflow';\nimport { EventEmitter } from 'node:events';\nconst e = new EventEmitter();\ne.on('go', () => { throw new Error('handler failed'); });\ne.emit('go');\n`,
    });
    await loader.scan();
    const e = (await errorOf('emits.ts'))!;
    expect(e.stack_trace).toMatch(/Error: handler failed/);
    expect(e.stack_trace).toMatch(/emits\.ts/);
    expect(e.stack_trace.split('\n').filter((l) => /node:/.test(l))).toEqual([]);
  });
});

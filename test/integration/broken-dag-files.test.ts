import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const GOOD = `
import { dag } from 'podflow';
export default dag({ dag_id: 'good', schedule: null }, (d) => {
  d.task('a', async () => 'ok').then(d.command('b', ['node', '-e', 'console.log(1)']));
});
`;

const BROKEN: Record<string, { source: string; error: RegExp; dag_id: string | null }> = {
  'syntax.ts': { source: `import { dag } from 'podflow';\nexport default dag({ dag_id: 'syntax' }, (d) => { d.task('a', async () => { return 1 ) });`, error: /syntax\.ts/, dag_id: null },
  'throws.ts': { source: `import { dag } from 'podflow';\nthrow new Error('config service unreachable');`, error: /Error: config service unreachable/, dag_id: null },
  'loops.ts': { source: `import { dag } from 'podflow';\nwhile (true) {}\nexport default dag({ dag_id: 'loops' });`, error: /took longer than 5s and was stopped/, dag_id: null },
  'exits.ts': { source: `import { dag } from 'podflow';\nprocess.exit(7);`, error: /ended the process while being imported \(exit code 7\)/, dag_id: null },
  'cycle.ts': {
    source: `import { dag } from 'podflow';\nexport default dag({ dag_id: 'cyclic' }, (d) => { const a = d.task('a', async () => 1); a.then(d.task('b', async () => 1)).then(a); });`,
    error: /dependencies form a cycle: a -> b -> a/,
    dag_id: 'cyclic',
  },
  'dup.ts': { source: GOOD, error: /DAG id 'good' is already defined in .*good\.ts; rename the DAG in one of the two files/, dag_id: 'good' },
};

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('broken DAG files are import errors and never stop the others', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'good.ts': GOOD }, env: { PODFLOW_DAG_IMPORT_TIMEOUT_MS: '5000' } });
  });
  afterAll(async () => pf?.close());

  it('lists each broken file dropped in while running, and the good DAG still runs', async () => {
    for (const [name, b] of Object.entries(BROKEN)) pf.folder.write(name, b.source);
    const errors = await until(async () => {
      const errs = await pf.store.importErrors();
      return errs.length === Object.keys(BROKEN).length ? errs : undefined;
    }, 20_000);
    for (const [name, b] of Object.entries(BROKEN)) {
      const e = errors.find((x) => x.filename.endsWith(name));
      expect(e, name).toBeDefined();
      expect(e!.stack_trace, name).toMatch(b.error);
      expect(e!.dag_id, name).toBe(b.dag_id);
    }
    expect(await pf.store.dagIds()).toEqual(['good']);
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('good'))!);
    expect((await pf.waitForRun('good', run.dag_run_id)).state).toBe('success');
  });

  it('clears the import error when the file is fixed or removed', async () => {
    pf.folder.write('throws.ts', `import { dag } from 'podflow';\nexport default dag({ dag_id: 'fixed' }, (d) => { d.task('a', async () => 1); });`);
    rmSync(join(pf.folder.dir, 'syntax.ts'));
    await until(async () => {
      const errs = await pf.store.importErrors();
      return errs.some((e) => e.filename.endsWith('throws.ts') || e.filename.endsWith('syntax.ts')) ? undefined : errs;
    }, 20_000);
    expect(await pf.store.dagIds()).toEqual(['fixed', 'good']);
  });
});

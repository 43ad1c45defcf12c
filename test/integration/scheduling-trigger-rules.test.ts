import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';
import { redisUrl } from '../support/redis.ts';

// 'ok' succeeds, 'bad' fails, 'skp' is skipped by the branch 'br'; one join per rule and case.
const RULES = `
import { dag } from 'podflow';
export default dag({ dag_id: 'rules', schedule: null }, (d) => {
  const br = d.branch('br', () => 'ok');
  const ok = d.task('ok', () => 'ok');
  const skp = d.task('skp', () => 'never');
  const bad = d.task('bad', () => { throw new Error('bad on purpose'); });
  br.then([ok, skp]);
  const up = { ok, bad, skp };
  const join = (rule, ...names) => d.task(rule + '.' + names.join('_'), (ctx) => ctx.task_id, { trigger_rule: rule }).after(...names.map((n) => up[n]));
  join('all_success', 'ok');
  const uf = join('all_success', 'ok', 'bad');
  const sk = join('all_success', 'ok', 'skp');
  join('all_failed', 'bad');
  join('all_failed', 'ok', 'bad');
  join('all_done', 'ok', 'bad', 'skp');
  join('one_success', 'ok', 'bad');
  join('one_success', 'bad');
  join('one_success', 'skp');
  join('one_failed', 'ok', 'bad');
  join('one_failed', 'ok', 'skp');
  join('one_done', 'bad', 'skp');
  join('one_done', 'skp');
  join('none_failed', 'ok', 'skp');
  join('none_failed', 'ok', 'bad');
  join('none_failed_min_one_success', 'ok', 'skp');
  join('none_failed_min_one_success', 'skp');
  join('none_failed_min_one_success', 'bad');
  join('none_skipped', 'ok', 'bad');
  join('none_skipped', 'ok', 'skp');
  join('always', 'bad');
  // Propagation: default all_success below an upstream_failed / skipped task, and all_done below a skipped one.
  uf.then(d.task('after_upstream_failed', () => 1));
  sk.then(d.task('after_skipped', () => 1));
  sk.then(d.task('after_skipped_all_done', () => 1, { trigger_rule: 'all_done' }));
  d.get('after_upstream_failed').then(d.task('two_below_upstream_failed', () => 1));
});
`;

const JOIN = `
import { dag } from 'podflow';
export default dag({ dag_id: 'branch_join', schedule: null }, (d) => {
  const br = d.branch('br', () => 'slow');
  const slow = d.task('slow', async () => { await new Promise((r) => setTimeout(r, 1500)); return 'slow done'; });
  const fast = d.task('fast', () => 'fast done');
  const join = d.task('join', async (ctx) => [await ctx.xcom.pull('slow'), await ctx.xcom.pull('fast')], { trigger_rule: 'none_failed_min_one_success' });
  br.then([slow, fast]);
  join.after(slow, fast);
});
`;

const LEAVES = `
import { dag } from 'podflow';
export const middleFails = dag({ dag_id: 'middle_fails', schedule: null }, (d) => {
  d.task('bad', () => { throw new Error('x'); }).then(d.task('cleanup', () => 'cleaned', { trigger_rule: 'all_done' }));
});
export const leafFails = dag({ dag_id: 'leaf_fails', schedule: null }, (d) => {
  d.task('ok', () => 1).then([d.task('bad', () => { throw new Error('x'); }), d.task('ok2', () => 2)]);
});
export const allSkipped = dag({ dag_id: 'leaves_skipped', schedule: null }, (d) => {
  d.branch('br', () => []).then([d.task('a', () => 1), d.task('b', () => 2)]);
});
`;

// The same DAG twice, once with task groups: groups are for display only.
const GROUPS = `
import { dag } from 'podflow';
const build = (id, group) => dag({ dag_id: id, schedule: null }, (d) => {
  const g = group ? { group: 'train' } : {};
  const a = d.task('a', () => 1);
  const b = d.task('b', () => { throw new Error('x'); }, g);
  const c = d.task('c', () => 3, { ...g, trigger_rule: 'all_done' });
  const e = d.task('e', () => 4, g);
  const f = d.task('f', () => 5);
  a.then([b, e]);
  b.then(c);
  c.then(f);
  e.then(f);
});
export const plain = build('plain', false);
export const grouped = build('grouped', true);
`;

describe('trigger rules, branching and run state end to end', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'rules.ts': RULES, 'join.ts': JOIN, 'leaves.ts': LEAVES, 'groups.ts': GROUPS }, env: { PODFLOW_WORKER_CONCURRENCY: '8' } });
  });
  afterAll(async () => pf?.close());

  async function finalStates(dagId: string): Promise<{ state: string; tis: Record<string, string> }> {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag(dagId))!);
    const done = await pf.waitForRun(dagId, run.dag_run_id);
    const tis = await pf.store.listTis(dagId, run.dag_run_id);
    return { state: done.state, tis: Object.fromEntries(tis.map((t) => [t.task_id, t.state])) };
  }

  it('decides every trigger rule from success, failed and skipped upstreams, and propagates skip and upstream_failed', async () => {
    const { state, tis } = await finalStates('rules');
    expect(tis).toEqual({
      br: 'success',
      ok: 'success',
      skp: 'skipped',
      bad: 'failed',
      'all_success.ok': 'success',
      'all_success.ok_bad': 'upstream_failed',
      'all_success.ok_skp': 'skipped',
      'all_failed.bad': 'success',
      'all_failed.ok_bad': 'skipped',
      'all_done.ok_bad_skp': 'success',
      'one_success.ok_bad': 'success',
      'one_success.bad': 'upstream_failed',
      'one_success.skp': 'skipped',
      'one_failed.ok_bad': 'success',
      'one_failed.ok_skp': 'skipped',
      'one_done.bad_skp': 'success',
      'one_done.skp': 'skipped',
      'none_failed.ok_skp': 'success',
      'none_failed.ok_bad': 'upstream_failed',
      'none_failed_min_one_success.ok_skp': 'success',
      'none_failed_min_one_success.skp': 'skipped',
      'none_failed_min_one_success.bad': 'upstream_failed',
      'none_skipped.ok_bad': 'success',
      'none_skipped.ok_skp': 'skipped',
      'always.bad': 'success',
      after_upstream_failed: 'upstream_failed',
      two_below_upstream_failed: 'upstream_failed',
      after_skipped: 'skipped',
      after_skipped_all_done: 'success',
    });
    // Leaves include upstream_failed ones, so the run failed.
    expect(state).toBe('failed');
  });

  it('a branch join with none_failed_min_one_success waits for the running branch and succeeds once, on try 1', async () => {
    const sub = new Redis(redisUrl());
    const seen: string[] = [];
    await sub.subscribe(pf.store.keys.events());
    sub.on('message', (_c, m: string) => {
      const parts = m.split('|');
      if (parts[0] === 'ti' && parts[1] === 'branch_join' && parts[3] === 'join') seen.push(parts[5]);
    });
    try {
      const run = await triggerDagRun(pf.store, (await pf.store.getDag('branch_join'))!);
      const done = await pf.waitForRun('branch_join', run.dag_run_id);
      expect(done.state).toBe('success');
      const tis = Object.fromEntries((await pf.store.listTis('branch_join', run.dag_run_id)).map((t) => [t.task_id, t]));
      expect([tis.br.state, tis.slow.state, tis.fast.state, tis.join.state, tis.join.try_number]).toEqual(['success', 'success', 'skipped', 'success', 1]);
      // The join was never skipped while 'slow' ran: its only transitions are the ones to success.
      expect(seen).toEqual(['scheduled', 'queued', 'running', 'success']);
      expect(Date.parse(tis.join.start_date!)).toBeGreaterThanOrEqual(Date.parse(tis.slow.end_date!));
      expect(await pf.store.getXcom({ dag_id: 'branch_join', dag_run_id: run.dag_run_id, task_id: 'join', map_index: -1 }, 'return_value')).toEqual(['slow done', null]);
    } finally {
      sub.disconnect();
    }
  });

  it('run state: success when every leaf succeeded or was skipped, failed when a leaf failed', async () => {
    expect(await finalStates('middle_fails')).toEqual({ state: 'success', tis: { bad: 'failed', cleanup: 'success' } });
    expect(await finalStates('leaf_fails')).toEqual({ state: 'failed', tis: { ok: 'success', bad: 'failed', ok2: 'success' } });
    expect(await finalStates('leaves_skipped')).toEqual({ state: 'success', tis: { br: 'success', a: 'skipped', b: 'skipped' } });
  });

  it('task groups are display-only: the grouped DAG ends exactly as the plain one', async () => {
    const plain = await finalStates('plain');
    const grouped = await finalStates('grouped');
    expect(plain).toEqual({ state: 'success', tis: { a: 'success', b: 'failed', c: 'success', e: 'success', f: 'success' } });
    expect(grouped).toEqual(plain);
    const groups = (await pf.store.getDag('grouped'))!.tasks.map((t) => [t.task_id, t.task_group]);
    expect(groups).toEqual([
      ['a', null],
      ['b', 'train'],
      ['c', 'train'],
      ['e', 'train'],
      ['f', null],
    ]);
  });
});

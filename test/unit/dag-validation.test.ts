import { describe, expect, it } from 'vitest';
import { chain, dag } from '../../src/dag/dag.ts';
import { problems } from '../support/dag-problems.ts';


describe('DAG validation', () => {
  it('accepts a valid DAG and records upstream and downstream ids', () => {
    const spec = dag({ dag_id: 'ok' }, (d) => {
      const a = d.task('a', async () => 1);
      const b = d.command('b', ['echo', 'hi']);
      const c = d.task('c', async () => 2);
      const e = d.task('e', async () => 3);
      chain(a, [b, c], e);
    }).toSpec('dags/ok.ts', 'h');
    expect(spec.tasks.map((t) => [t.task_id, t.upstream_task_ids, t.downstream_task_ids])).toEqual([
      ['a', [], ['b', 'c']],
      ['b', ['a'], ['e']],
      ['c', ['a'], ['e']],
      ['e', ['b', 'c'], []],
    ]);
    expect(spec.tasks[1].operator_args).toEqual({ argv: ['echo', 'hi'], env: {}, cwd: null });
  });

  it('rejects a duplicate task id', () => {
    expect(problems(() => dag({ dag_id: 'dup' }, (d) => { d.task('a', async () => 1); d.task('a', async () => 2); }))).toEqual([
      "task id 'a' is used twice; give each task its own id",
    ]);
  });

  it('rejects an unknown upstream and suggests the nearest id', () => {
    expect(problems(() => dag({ dag_id: 'iris_training' }, (d) => { d.task('split', async () => 1); d.task('train', async () => 1).after('split2'); }))).toEqual([
      "task 'train' depends on 'split2', which does not exist in DAG 'iris_training' (did you mean 'split'?)",
    ]);
  });

  it('rejects a cycle and names it in dependency order', () => {
    expect(
      problems(() =>
        dag({ dag_id: 'cyc' }, (d) => {
          const a = d.task('a', async () => 1);
          const b = d.task('b', async () => 1);
          const c = d.task('c', async () => 1);
          a.then(b).then(c).then(a);
        }),
      ),
    ).toEqual(['dependencies form a cycle: a -> b -> c -> a; remove one of these edges']);
  });

  it('rejects a self-dependency as a cycle', () => {
    expect(problems(() => dag({ dag_id: 'self' }, (d) => { const a = d.task('a', async () => 1); a.then(a); }))).toEqual([
      'dependencies form a cycle: a -> a; remove one of these edges',
    ]);
  });

  it('rejects bad ids, bad durations, bad dates and an empty command, all at once', () => {
    const p = problems(() =>
      dag({ dag_id: 'bad id', start_date: 'yesterday', default_args: { retry_delay: 'soon' } }, (d) => {
        d.command('c', []);
      }),
    );
    expect(p).toContain("task 'c': command needs a non-empty array of strings, e.g. ['python', 'train.py']");
    expect(p).toContain(`task 'c': retry_delay "soon" is not a duration: write seconds as a number (30) or a string like "30s", "5m", "1h30m", "250ms"`);
    expect(p).toContain('start_date "yesterday" is not a date; write an ISO date such as "2026-01-01" or "2026-01-01T00:00:00Z"');
    expect(p).toContain(`dag_id "bad id" is invalid: use letters, digits, '-', '_' and '.', at most 250 characters`);
  });

  it('applies default_args and Airflow defaults to every task', () => {
    const spec = dag({ dag_id: 'defaults', default_args: { retries: 2, retry_delay: '30s', execution_timeout: '1h' } }, (d) => {
      d.task('a', async () => 1);
      d.task('b', async () => 1, { retries: 0, pool: 'gpu', pool_slots: 2 });
    }).toSpec();
    expect(spec.tasks.map((t) => [t.retries, t.retry_delay_ms, t.execution_timeout_ms, t.pool, t.pool_slots, t.trigger_rule])).toEqual([
      [2, 30_000, 3_600_000, 'default_pool', 1, 'all_success'],
      [0, 30_000, 3_600_000, 'gpu', 2, 'all_success'],
    ]);
    expect([spec.max_active_runs, spec.max_active_tasks, spec.catchup, spec.schedule]).toEqual([16, 16, false, { cron: null, timezone: 'UTC', datasets: null }]);
  });

  it('toSpec can run twice without doubling problems (reloads)', () => {
    const d = dag({ dag_id: 'twice', default_args: { retry_delay: 'x' } }, (x) => { x.task('a', async () => 1); });
    expect(problems(() => d)).toHaveLength(1);
    expect(problems(() => d)).toHaveLength(1);
  });
});

describe('schedule validation at load time', () => {
  it('reports a bad cron expression and an unknown time zone as DAG problems', () => {
    const p1 = problems(() => dag({ dag_id: 'badcron', schedule: '61 * * * *' }, (d) => { d.task('a', async () => 1); }));
    expect(p1).toHaveLength(1);
    expect(p1[0]).toMatch(/61/);
    const p2 = problems(() => dag({ dag_id: 'badtz', schedule: '@daily', timezone: 'Europe/Berln' }, (d) => { d.task('a', async () => 1); }));
    expect(p2).toHaveLength(1);
    expect(p2[0]).toMatch(/Europe\/Berlin/);
  });

  it('reports an empty dataset schedule', () => {
    expect(problems(() => dag({ dag_id: 'ds', schedule: { any: [] } }, (d) => { d.task('a', async () => 1); }))).toEqual([
      'a dataset schedule needs a list of URIs, or { all: [...] } / { any: [...] } with at least one entry',
    ]);
  });
});

describe('typed trigger and webhook options', () => {
  it('serialize into the DAG spec the scheduler and API read', () => {
    const spec = dag({ dag_id: 'trig', trigger: { sensor: 'file', args: { path: '/in/*.csv' }, interval: '30s' }, webhook_secret_env: 'TRIG_SECRET' }, (d) => {
      d.task('a', async () => 1);
    }).toSpec();
    expect(spec.extra.trigger).toEqual({ sensor: 'file', args: { path: '/in/*.csv' }, interval_seconds: 30 });
    expect(spec.extra.webhook_secret_env).toBe('TRIG_SECRET');
  });
});

import { problems } from '../support/dag-problems.ts';
import { describe, expect, it } from 'vitest';
import {
  dag,
  TASK_DEFAULT_KEYS,
  TASK_OPTION_KEYS,
  type CommandOptions,
  type DagOptions,
  type SensorOptions,
  type TaskDefaults,
  type TaskOptions,
} from '../../src/dag/dag.ts';

/** A misspelt options object, as a JavaScript DAG file (or a cast) can pass one past the compiler. */
function loose<T>(o: Record<string, unknown>): T {
  return o as T;
}


describe('unknown options', () => {
  it('reports a misspelt task option with the nearest known option', () => {
    expect(
      problems(() => dag({ dag_id: 'x' }, (d) => void d.task('train', async () => 1, loose<TaskOptions>({ retires: 3 })))),
    ).toEqual(["task 'train': unknown option 'retires' (did you mean 'retries'?)"]);
  });

  it('reports a misspelt execution_timeout on a command task instead of running without a timeout', () => {
    expect(
      problems(() =>
        dag({ dag_id: 'x' }, (d) => void d.command('load', ['echo', 'hi'], loose<CommandOptions>({ execution_timout: '5m', cwd: '/tmp' }))),
      ),
    ).toEqual(["task 'load': unknown option 'execution_timout' (did you mean 'execution_timeout'?)"]);
  });

  it('reports misspelt default_args', () => {
    expect(
      problems(() =>
        dag({ dag_id: 'x', default_args: loose<TaskDefaults>({ trigger_rul: 'all_done', retries: 1 }) }, (d) => void d.task('a', async () => 1)),
      ),
    ).toEqual(["default_args: unknown option 'trigger_rul' (did you mean 'trigger_rule'?)"]);
  });

  it('reports every misspelt DAG option', () => {
    expect(problems(() => dag(loose<DagOptions>({ dag_id: 'x', schedul: '@daily', catchpu: true })))).toEqual([
      "unknown DAG option 'schedul' (did you mean 'schedule'?)",
      "unknown DAG option 'catchpu' (did you mean 'catchup'?)",
    ]);
  });

  it('reports a misspelt sensor option and accepts the sensor-only options', () => {
    expect(
      problems(() =>
        dag({ dag_id: 'x' }, (d) =>
          void d.sensor('wait', 'file', { path: '/tmp/x' }, loose<SensorOptions>({ mode: 'reschedule', timeout: '1h', poke_intervall: '30s' })),
        ),
      ),
    ).toEqual(["task 'wait': unknown option 'poke_intervall' (did you mean 'poke_interval'?)"]);
  });

  it('reports a misspelt option of d.branch and d.operator', () => {
    expect(
      problems(() =>
        dag({ dag_id: 'x' }, (d) => {
          d.branch('pick', async () => null, loose<TaskOptions>({ pol: 'gpu' }));
          d.operator('run', { operator: 'command', operator_args: { argv: ['true'] } }, loose<TaskOptions>({ outlet: ['s3://b/k'] }));
        }),
      ),
    ).toEqual([
      "task 'pick': unknown option 'pol' (did you mean 'pool'?)",
      "task 'run': unknown option 'outlet' (did you mean 'outlets'?)",
    ]);
  });

  it('lists the known options when nothing is close', () => {
    expect(problems(() => dag({ dag_id: 'x' }, (d) => void d.task('a', async () => 1, loose<TaskOptions>({ env: { A: '1' } }))))).toEqual([
      `task 'a': unknown option 'env' (known options: ${TASK_OPTION_KEYS.join(', ')})`,
    ]);
    expect(TASK_OPTION_KEYS.slice(0, TASK_DEFAULT_KEYS.length)).toEqual([...TASK_DEFAULT_KEYS]);
  });

  it('names the DAG in the error and reports the same problems when toSpec runs again', () => {
    const d = dag({ dag_id: 'typos' }, (b) => void b.task('train', async () => 1, loose<TaskOptions>({ retires: 3 })));
    let message = '';
    for (let i = 0; i < 2; i++) {
      try {
        d.toSpec();
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toBe("DAG 'typos': task 'train': unknown option 'retires' (did you mean 'retries'?)");
    }
  });

  it('accepts every known option of every authoring method', () => {
    const spec = dag(
      {
        dag_id: 'all_known',
        description: 'd',
        schedule: '@daily',
        timezone: 'UTC',
        start_date: '2026-01-01',
        end_date: '2027-01-01',
        catchup: false,
        default_args: { retries: 2, retry_delay: '1m', execution_timeout: '5m', trigger_rule: 'all_done', isolation: 'inline', owner: 'ml' },
        tags: ['t'],
        params: { n: 1 },
        max_active_runs: 1,
        max_active_tasks: 4,
        dagrun_timeout: '1h',
        owner: 'ml',
        webhook_secret_env: 'SECRET',
        extra: {},
      },
      (d) => {
        const a = d.task('a', async () => [1, 2], { pool: 'default_pool', group: 'g', doc: 'x', outlets: ['s3://b/a'] });
        const b = d.command('b', ['echo', '{{ ds }}'], { env: { A: '1' }, cwd: '/tmp', expand: { from: a }, max_map_length: 10 });
        const c = d.sensor('c', 'file', { path: '/tmp/x' }, { mode: 'poke', poke_interval: '1s', timeout: '1m', soft_fail: true, exponential_backoff: false, max_wait: '10s' });
        a.then(c);
        void b;
      },
    ).toSpec();
    expect(spec.tasks.map((t) => [t.task_id, t.retries, t.execution_timeout_ms, t.trigger_rule])).toEqual([
      ['a', 2, 300_000, 'all_done'],
      ['b', 2, 300_000, 'all_done'],
      ['c', 2, 300_000, 'all_done'],
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import type { TaskSpec, WeightRule } from '../../src/dag/types.ts';
import { priorityWeights } from '../../src/scheduler/priority-weights.ts';

function task(task_id: string, upstream: string[], priority_weight = 1, weight_rule: WeightRule = 'downstream'): TaskSpec {
  return {
    task_id, operator: 'inline', operator_args: {}, upstream_task_ids: upstream, downstream_task_ids: [],
    trigger_rule: 'all_success', retries: 0, retry_delay_ms: 0, retry_exponential_backoff: false, max_retry_delay_ms: null,
    execution_timeout_ms: null, pool: 'default_pool', pool_slots: 1, priority_weight, weight_rule, queue: 'default',
    depends_on_past: false, wait_for_downstream: false, task_group: null, inlets: [], outlets: [], artifacts: [], expand: null, doc: null,
  };
}

/** Fills downstream_task_ids from upstream_task_ids, as serialized DAGs carry both. */
function dag(tasks: TaskSpec[]): TaskSpec[] {
  for (const t of tasks) for (const u of t.upstream_task_ids) tasks.find((x) => x.task_id === u)!.downstream_task_ids.push(t.task_id);
  return tasks;
}

const asObject = (m: Map<string, number>) => Object.fromEntries(m);

describe('priorityWeights', () => {
  it('downstream (default) adds the weights of all descendants', () => {
    expect(asObject(priorityWeights(dag([task('a', []), task('b', ['a']), task('c', ['b'])])))).toEqual({ a: 3, b: 2, c: 1 });
  });

  it('upstream adds the weights of all ancestors', () => {
    const r = priorityWeights(dag([task('a', [], 1, 'upstream'), task('b', ['a'], 1, 'upstream'), task('c', ['b'], 1, 'upstream')]));
    expect(asObject(r)).toEqual({ a: 1, b: 2, c: 3 });
  });

  it('absolute keeps the own weight', () => {
    const r = priorityWeights(dag([task('a', [], 5, 'absolute'), task('b', ['a'], 7, 'absolute')]));
    expect(asObject(r)).toEqual({ a: 5, b: 7 });
  });

  it('counts a descendant reached by two paths once (diamond)', () => {
    // a -> b, a -> c, b -> d, c -> d; weights a1 b2 c3 d4
    const r = priorityWeights(dag([task('a', [], 1), task('b', ['a'], 2), task('c', ['a'], 3), task('d', ['b', 'c'], 4)]));
    expect(asObject(r)).toEqual({ a: 10, b: 6, c: 7, d: 4 });
  });

  it('adds the relatives\' own weights, whatever their weight rule', () => {
    const r = priorityWeights(dag([task('a', [], 1), task('b', ['a'], 10, 'absolute'), task('c', ['b'], 100, 'upstream')]));
    expect(asObject(r)).toEqual({ a: 111, b: 10, c: 111 });
  });

  it('uses downstream_task_ids alone when upstream_task_ids are empty', () => {
    const a = task('a', []);
    const b = task('b', []);
    a.downstream_task_ids = ['b'];
    expect(asObject(priorityWeights([a, b]))).toEqual({ a: 2, b: 1 });
  });

  it('ignores edges to unknown tasks', () => {
    expect(asObject(priorityWeights([task('a', ['ghost'], 3)]))).toEqual({ a: 3 });
  });

  it('clamps to the 32-bit range as Airflow does', () => {
    const r = priorityWeights(dag([task('a', [], 2 ** 31 - 1), task('b', ['a'], 5)]));
    expect(r.get('a')).toBe(2147483647);
    const n = priorityWeights(dag([task('x', [], -(2 ** 31), 'upstream'), task('y', ['x'], -5, 'upstream')]));
    expect(n.get('y')).toBe(-2147483648);
  });

  it('handles a wide fan-out: a root above 100 leaves weighs 101', () => {
    const leaves = Array.from({ length: 100 }, (_, i) => task(`leaf${i}`, ['root']));
    const r = priorityWeights(dag([task('root', []), ...leaves]));
    expect(r.get('root')).toBe(101);
    expect(r.get('leaf42')).toBe(1);
  });
});

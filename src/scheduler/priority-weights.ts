/**
 * Effective priority weights, as Airflow's `priority_weight_total` computes them: when pool or
 * concurrency slots are scarce, the queued task instance with the higher weight goes first.
 */
import type { TaskSpec } from '../dag/types.ts';

/** Airflow clamps weights to the 32-bit signed range its database column holds; so do we. */
const MIN_WEIGHT = -(2 ** 31);
const MAX_WEIGHT = 2 ** 31 - 1;

function clamp(n: number): number {
  return Math.min(MAX_WEIGHT, Math.max(MIN_WEIGHT, n));
}

/**
 * The effective weight of every task, by its `weight_rule`:
 * - `downstream` (Airflow's default): own `priority_weight` plus that of every task downstream
 *   of it (all descendants, each counted once), so tasks feeding long chains start first;
 * - `upstream`: own weight plus that of every ancestor, so runs that are further along finish first;
 * - `absolute`: own weight only.
 *
 * Relatives contribute their own `priority_weight`, not their effective weight, as in Airflow.
 * Edges are read from `upstream_task_ids` and `downstream_task_ids` together; ids that name no
 * task are ignored. Mapped instances share their task's weight.
 *
 * @example a(1) >> b(1) >> c(1), all 'downstream' -> { a: 3, b: 2, c: 1 }
 */
export function priorityWeights(tasks: TaskSpec[]): Map<string, number> {
  const byId = new Map(tasks.map((t) => [t.task_id, t]));
  const down = new Map<string, Set<string>>();
  const up = new Map<string, Set<string>>();
  for (const t of tasks) {
    down.set(t.task_id, new Set());
    up.set(t.task_id, new Set());
  }
  for (const t of tasks) {
    for (const u of t.upstream_task_ids) {
      if (!byId.has(u)) continue;
      up.get(t.task_id)!.add(u);
      down.get(u)!.add(t.task_id);
    }
    for (const d of t.downstream_task_ids) {
      if (!byId.has(d)) continue;
      down.get(t.task_id)!.add(d);
      up.get(d)!.add(t.task_id);
    }
  }

  const relatives = (start: string, edges: Map<string, Set<string>>): Set<string> => {
    const seen = new Set<string>();
    const stack = [...edges.get(start)!];
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id) || id === start) continue;
      seen.add(id);
      stack.push(...edges.get(id)!);
    }
    return seen;
  };

  const weights = new Map<string, number>();
  for (const t of tasks) {
    let w = t.priority_weight;
    if (t.weight_rule !== 'absolute') {
      const rel = relatives(t.task_id, t.weight_rule === 'upstream' ? up : down);
      for (const id of rel) w += byId.get(id)!.priority_weight;
    }
    weights.set(t.task_id, clamp(w));
  }
  return weights;
}

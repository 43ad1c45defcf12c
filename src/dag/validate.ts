import type { DagSpec, DatasetCondition } from './types.ts';
import { validateSchedule } from '../schedule/timetable.ts';

/** Airflow's rule for DAG and task ids: letters, digits, '-', '_', '.', at most 250 characters. */
const ID_RE = /^[A-Za-z0-9_.-]{1,250}$/;

/** Every structural problem of a DAG, as messages that say how to fix it. Empty when valid. */
export function validateDagSpec(spec: DagSpec): string[] {
  const problems: string[] = [];
  if (typeof spec.dag_id !== 'string' || !ID_RE.test(spec.dag_id)) {
    problems.push(`dag_id ${JSON.stringify(spec.dag_id)} is invalid: use letters, digits, '-', '_' and '.', at most 250 characters`);
  }
  const ids = new Set(spec.tasks.map((t) => t.task_id));
  for (const t of spec.tasks) {
    if (!ID_RE.test(t.task_id)) {
      problems.push(`task id ${JSON.stringify(t.task_id)} is invalid: use letters, digits, '-', '_' and '.', at most 250 characters`);
    }
    for (const u of t.upstream_task_ids) {
      if (!ids.has(u)) {
        const hint = closest(u, [...ids]);
        problems.push(
          `task '${t.task_id}' depends on '${u}', which does not exist in DAG '${spec.dag_id}'${hint ? ` (did you mean '${hint}'?)` : ''}`,
        );
      }
    }
    if (t.retries < 0 || !Number.isInteger(t.retries)) problems.push(`task '${t.task_id}': retries must be a whole number >= 0`);
    if (t.pool_slots < 1 || !Number.isInteger(t.pool_slots)) problems.push(`task '${t.task_id}': pool_slots must be a whole number >= 1`);
    if (t.expand?.kind === 'xcom' && !t.upstream_task_ids.includes(t.expand.task_id)) {
      problems.push(`task '${t.task_id}' expands over '${t.expand.task_id}', which is not one of its upstream tasks`);
    }
  }
  if (spec.schedule.cron !== null) {
    const err = validateSchedule(spec.schedule.cron, spec.schedule.timezone);
    if (err) problems.push(err);
  }
  if (spec.schedule.datasets) problems.push(...datasetProblems(spec.schedule.datasets));
  const cycle = findCycle(spec);
  if (cycle) problems.push(`dependencies form a cycle: ${cycle.join(' -> ')}; remove one of these edges`);
  if (spec.max_active_runs < 1) problems.push('max_active_runs must be at least 1');
  if (spec.max_active_tasks < 1) problems.push('max_active_tasks must be at least 1');
  if (spec.start_date && spec.end_date && spec.end_date < spec.start_date) problems.push('end_date is before start_date');
  return problems;
}

/** The first cycle found, as a closed path of task ids (a -> b -> a), or null. */
export function findCycle(spec: Pick<DagSpec, 'tasks'>): string[] | null {
  const upstream = new Map(spec.tasks.map((t) => [t.task_id, t.upstream_task_ids]));
  const state = new Map<string, 1 | 2>(); // 1 = on the current path, 2 = done
  const path: string[] = [];
  const visit = (id: string): string[] | null => {
    const s = state.get(id);
    if (s === 2) return null;
    if (s === 1) return [...path.slice(path.indexOf(id)), id].reverse();
    state.set(id, 1);
    path.push(id);
    for (const u of upstream.get(id) ?? []) {
      if (!upstream.has(u)) continue;
      const c = visit(u);
      if (c) return c;
    }
    path.pop();
    state.set(id, 2);
    return null;
  };
  for (const t of [...upstream.keys()].sort()) {
    const c = visit(t);
    if (c) return c;
  }
  return null;
}

/** The id nearest by edit distance, when it is close enough to be a likely typo. */
export function closest(word: string, candidates: string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

function datasetProblems(c: DatasetCondition): string[] {
  if ('uri' in c) {
    return typeof c.uri === 'string' && c.uri.length > 0 && c.uri.length <= 3000
      ? []
      : [`dataset URI ${JSON.stringify(c.uri)} is invalid: use a non-empty string such as "s3://bucket/labels" or "dataset://team/name"`];
  }
  const list = 'all' in c ? c.all : 'any' in c ? c.any : null;
  if (!Array.isArray(list) || list.length === 0) {
    return ['a dataset schedule needs a list of URIs, or { all: [...] } / { any: [...] } with at least one entry'];
  }
  return list.flatMap(datasetProblems);
}

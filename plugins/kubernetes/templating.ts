/**
 * `{{ placeholder }}` substitution in argv elements and env values. Each element is
 * rendered on its own and handed to the container (or child process) as one argument:
 * nothing ever passes through a shell, so a param holding `; rm -rf /` stays a string.
 */
import type { Json } from '../../src/dag/types.ts';

/** Values a template may reference. */
export interface TemplateScope {
  params: Record<string, Json>;
  conf: Record<string, Json>;
  run_id: string;
  dag_id: string;
  task_id: string;
  /** Logical date as YYYY-MM-DD (Airflow's `ds`). */
  ds: string;
  /** Logical date as ISO-8601 (Airflow's `ts`). */
  ts: string;
  try_number: number;
  map_index: number;
  map_value: Json | undefined;
  /** Folder of the DAG file, for scripts shipped next to it. */
  dag_dir: string;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\s*\}\}/g;

function show(v: Json | undefined): string {
  if (typeof v === 'string') return v;
  return JSON.stringify(v ?? null);
}

/** Thrown for an unknown placeholder; the message lists what is available. */
export class TemplateError extends Error {
  constructor(
    readonly expression: string,
    readonly where: string,
  ) {
    super(
      `${where}: unknown placeholder {{ ${expression} }}; use params.<name>, conf.<name>, run_id, dag_id, task_id, ds, ts, try_number, map_index, map_value or dag_dir`,
    );
    this.name = 'TemplateError';
  }
}

function lookup(scope: TemplateScope, expr: string, where: string): string {
  const [head, ...rest] = expr.split('.');
  let value: Json | undefined;
  if (head === 'params' || head === 'conf') {
    if (rest.length === 0) return JSON.stringify(scope[head]);
    value = scope[head] as Json;
    for (const key of rest) {
      if (value === null || typeof value !== 'object' || !(key in value)) {
        throw new TemplateError(expr, where);
      }
      value = (value as Record<string, Json>)[key];
    }
    return show(value);
  }
  if (rest.length > 0 && head === 'map_value') {
    value = scope.map_value;
    for (const key of rest) {
      if (value === null || typeof value !== 'object' || !(key in value)) throw new TemplateError(expr, where);
      value = (value as Record<string, Json>)[key];
    }
    return show(value);
  }
  if (rest.length === 0 && head in scope) return show(scope[head as keyof TemplateScope] as Json);
  throw new TemplateError(expr, where);
}

/** Renders one string; `where` names the field in error messages. */
export function renderString(template: string, scope: TemplateScope, where: string): string {
  return template.replace(PLACEHOLDER, (_m, expr: string) => lookup(scope, expr, where));
}

/** Renders each argv element on its own; never splits or joins. */
export function renderArgv(argv: readonly string[] | undefined, scope: TemplateScope, where: string): string[] | undefined {
  return argv?.map((a, i) => renderString(a, scope, `${where}[${i}]`));
}

import type { Json } from '../dag/types.ts';

/** Values a `{{ … }}` placeholder may name, as in Airflow's template context. */
export interface TemplateContext {
  dag_id: string;
  run_id: string;
  task_id: string;
  try_number: number;
  map_index: number;
  logical_date: Date;
  data_interval_start: Date;
  data_interval_end: Date;
  params: Record<string, Json>;
  conf: Record<string, Json>;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}/g;

/**
 * Replace `{{ ds }}`, `{{ params.lr }}`, `{{ conf.path }}` … in one argv element. Only names
 * are looked up, nothing is evaluated, and the result stays one argument: no shell sees it.
 * An unknown name is an error that lists what is available.
 */
export function renderTemplate(text: string, ctx: TemplateContext): string {
  return text.replace(PLACEHOLDER, (_, name: string) => {
    const v = lookup(name, ctx);
    if (v === undefined) {
      throw new Error(
        `template {{ ${name} }} names nothing known; use ds, ds_nodash, ts, logical_date, data_interval_start, data_interval_end, run_id, dag_id, task_id, try_number, map_index, params.<name> or conf.<name>`,
      );
    }
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}

function lookup(name: string, ctx: TemplateContext): Json | undefined {
  const iso = (d: Date) => d.toISOString();
  const simple: Record<string, Json> = {
    ds: iso(ctx.logical_date).slice(0, 10),
    ds_nodash: iso(ctx.logical_date).slice(0, 10).replaceAll('-', ''),
    ts: iso(ctx.logical_date),
    logical_date: iso(ctx.logical_date),
    data_interval_start: iso(ctx.data_interval_start),
    data_interval_end: iso(ctx.data_interval_end),
    run_id: ctx.run_id,
    dag_id: ctx.dag_id,
    task_id: ctx.task_id,
    try_number: ctx.try_number,
    map_index: ctx.map_index,
  };
  if (name in simple) return simple[name];
  const [head, ...path] = name.split('.');
  let cur: Json | undefined = head === 'params' ? ctx.params : head === 'conf' ? ctx.conf : undefined;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !(p in cur)) return undefined;
    cur = (cur as Record<string, Json>)[p];
  }
  return path.length ? cur : undefined;
}

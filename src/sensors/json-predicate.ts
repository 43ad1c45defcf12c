/**
 * A declarative condition on a JSON document — `{ path: 'a.b.0', op: 'gte', value: 0.9 }` —
 * so DAG files can state what a response must contain without shipping code to evaluate
 * (never eval).
 */
import { z } from 'zod';

export const PREDICATE_OPS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'exists'] as const;
export type PredicateOp = (typeof PREDICATE_OPS)[number];

export const jsonPredicateSchema = z
  .strictObject({
    /** Dot path into the document; numeric segments index arrays; '' or '$' is the whole document. */
    path: z.string(),
    op: z.enum(PREDICATE_OPS),
    value: z.json().optional(),
  })
  .refine((p) => p.op === 'exists' || p.value !== undefined, { message: "needs a value unless op is 'exists'", path: ['value'] });
export type JsonPredicate = z.output<typeof jsonPredicateSchema>;

/** The value at `path`, or undefined if any segment is missing. */
export function valueAt(doc: unknown, path: string): unknown {
  if (path === '' || path === '$') return doc;
  let cur: unknown = doc;
  for (const seg of path.replace(/^\$\./, '').split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else {
      if (!Object.hasOwn(cur, seg)) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    }
  }
  return cur;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Whether `doc` satisfies the predicate. Ordering ops compare two numbers, or two strings
 * (so ISO timestamps compare by time); any other pair is false.
 */
export function evaluatePredicate(doc: unknown, p: JsonPredicate): boolean {
  const v = valueAt(doc, p.path);
  switch (p.op) {
    case 'exists':
      return v !== undefined;
    case 'eq':
      return deepEqual(v, p.value);
    case 'ne':
      return v !== undefined && !deepEqual(v, p.value);
    default: {
      const comparable = (typeof v === 'number' && typeof p.value === 'number') || (typeof v === 'string' && typeof p.value === 'string');
      if (!comparable) return false;
      const [x, y] = [v as number | string, p.value as number | string];
      return p.op === 'gt' ? x > y : p.op === 'gte' ? x >= y : p.op === 'lt' ? x < y : x <= y;
    }
  }
}

/** "status eq \"ready\"" — for log lines. */
export function describePredicate(p: JsonPredicate): string {
  return p.op === 'exists' ? `${p.path || '$'} exists` : `${p.path || '$'} ${p.op} ${JSON.stringify(p.value)}`;
}

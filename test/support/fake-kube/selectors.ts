import { badRequest } from './status.ts';

/** A parsed selector: true when the object matches. */
export type Matcher = (obj: unknown) => boolean;

type LabelRequirement =
  | { op: '=' | '!='; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | '!exists'; key: string };

/** Splits on commas that are not inside `in (a,b)` value lists. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function parseLabelRequirement(text: string): LabelRequirement {
  let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(text);
  if (m) return { op: m[2] as 'in' | 'notin', key: m[1], values: m[3].split(',').map((v) => v.trim()) };
  m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(text);
  if (m) return { op: m[2] === '!=' ? '!=' : '=', key: m[1], value: m[3] };
  m = /^(!?)\s*([\w./-]+)$/.exec(text);
  if (m) return { op: m[1] ? '!exists' : 'exists', key: m[2] };
  throw badRequest(`unable to parse requirement: found '${text}', expected: label selector syntax (k=v, k!=v, k in (a,b), k notin (a,b), k, !k)`);
}

/**
 * Parses a `labelSelector` query value (`app=x,tier!=db,env in (a,b),gpu,!spot`) the way the API
 * server does. An empty selector matches everything.
 */
export function parseLabelSelector(selector: string | null): Matcher {
  if (!selector) return () => true;
  const requirements = splitTopLevel(selector).map(parseLabelRequirement);
  return (obj) => {
    const labels = (obj as { metadata?: { labels?: Record<string, string> } }).metadata?.labels ?? {};
    return requirements.every((r) => {
      const has = Object.hasOwn(labels, r.key);
      switch (r.op) {
        case '=':
          return has && labels[r.key] === r.value;
        case '!=':
          return !has || labels[r.key] !== r.value;
        case 'in':
          return has && r.values.includes(labels[r.key]);
        case 'notin':
          return !has || !r.values.includes(labels[r.key]);
        case 'exists':
          return has;
        case '!exists':
          return !has;
      }
    });
  };
}

function valueAt(obj: unknown, path: string): string {
  let current: unknown = obj;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return '';
    current = (current as Record<string, unknown>)[part];
  }
  return current === undefined || current === null ? '' : String(current);
}

/**
 * Parses a `fieldSelector` query value (`metadata.name=x,status.phase!=Running`). Only the field
 * labels the real API server supports for the resource are accepted; others get 400 as there.
 */
export function parseFieldSelector(selector: string | null, supported: readonly string[], kind: string): Matcher {
  if (!selector) return () => true;
  const requirements = splitTopLevel(selector).map((text) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(text);
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${text}'`);
    if (!supported.includes(m[1])) {
      throw badRequest(`field label not supported: ${m[1]} (${kind} supports: ${supported.join(', ')})`);
    }
    return { field: m[1], negate: m[2] === '!=', value: m[3] };
  });
  return (obj) => requirements.every((r) => (valueAt(obj, r.field) === r.value) !== r.negate);
}

export const POD_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'spec.nodeName',
  'spec.restartPolicy',
  'spec.schedulerName',
  'spec.serviceAccountName',
  'status.phase',
  'status.podIP',
  'status.nominatedNodeName',
] as const;

export const EVENT_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'involvedObject.kind',
  'involvedObject.namespace',
  'involvedObject.name',
  'involvedObject.uid',
  'involvedObject.apiVersion',
  'involvedObject.resourceVersion',
  'involvedObject.fieldPath',
  'reason',
  'reportingComponent',
  'type',
] as const;

export const NODE_FIELDS = ['metadata.name', 'spec.unschedulable'] as const;

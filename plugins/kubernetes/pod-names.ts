/**
 * Kubernetes names and label values derived from Podflow ids.
 *
 * DAG, task and run ids may hold any character a user writes (dots, colons, plus signs,
 * unicode, 200 characters …); Kubernetes allows far less. Every function here is
 * deterministic: the same ids always give the same name, so a restarted worker finds the
 * pod its predecessor created.
 */
import { createHash } from 'node:crypto';

/** Longest pod name we produce (a DNS-1123 label, so it can also be a hostname). */
export const MAX_NAME = 63;
/** Longest label value Kubernetes accepts. */
export const MAX_LABEL_VALUE = 63;

/** Short stable hash used to keep distinct ids distinct after sanitizing or truncation. */
export function shortHash(input: string, length = 8): string {
  return createHash('sha256').update(input).digest('hex').slice(0, length);
}

/** Identity of one pod: a task instance try plus the attempt within that try (re-creations after a free retry). */
export interface PodIdentity {
  dagId: string;
  taskId: string;
  runId: string;
  /** -1 for an unmapped task. */
  mapIndex: number;
  tryNumber: number;
  /** 0 for the first pod of a try; n for the n-th re-creation after a never-started pod was lost. */
  attempt?: number;
}

function dns1123Part(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * A DNS-1123 label (<= 63 characters, `[a-z0-9]([-a-z0-9]*[a-z0-9])?`) unique per DAG run,
 * task, map index, try and attempt, e.g. `iris-training-train-3f2a91c0-t1`.
 *
 * The readable part is truncated; the hash covers the exact ids (run included), so two runs
 * or two ids that sanitize alike never share a name.
 */
export function podName(id: PodIdentity): string {
  const attempt = id.attempt ?? 0;
  const suffix =
    (id.mapIndex >= 0 ? `-m${id.mapIndex}` : '') + `-t${id.tryNumber}` + (attempt > 0 ? `-a${attempt}` : '');
  const hash = shortHash(JSON.stringify([id.dagId, id.runId, id.taskId, id.mapIndex]));
  const room = MAX_NAME - suffix.length - hash.length - 1;
  let readable = dns1123Part(`${id.dagId}-${id.taskId}`).slice(0, Math.max(0, room));
  readable = readable.replace(/-+$/g, '');
  // A name must start with an alphanumeric: the hash (hex) always does, so fall back to it alone.
  const name = readable ? `${readable}-${hash}${suffix}` : `${hash}${suffix}`;
  return name;
}

const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** True when `v` is a valid Kubernetes label value (empty included). */
export function isValidLabelValue(v: string): boolean {
  return v.length <= MAX_LABEL_VALUE && LABEL_VALUE_RE.test(v);
}

const DNS1123_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** True when `v` is a valid DNS-1123 label (pod names we create are). */
export function isValidDns1123Label(v: string): boolean {
  return v.length <= MAX_NAME && DNS1123_RE.test(v);
}

/**
 * A valid label value for any id: unchanged when already valid, otherwise sanitized
 * (anything outside `[A-Za-z0-9-_.]` becomes `_`), trimmed to alphanumerics at both
 * ends, truncated, and suffixed with a hash of the original, so two different ids never
 * map to the same value through sanitizing.
 */
export function labelValue(raw: string): string {
  if (isValidLabelValue(raw)) return raw;
  const hash = shortHash(raw);
  const cleaned = raw.replace(/[^A-Za-z0-9._-]/g, '_');
  let body = cleaned.slice(0, MAX_LABEL_VALUE - hash.length - 1);
  body = body.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
  return body ? `${body}-${hash}` : hash;
}

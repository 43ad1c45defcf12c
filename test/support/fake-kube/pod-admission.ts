import { randomUUID } from 'node:crypto';
import { rfc3339 } from './clock.ts';
import { parseQuantity } from './nodes.ts';
import { qosClass } from './pod-status.ts';
import { badRequest, invalid, type FieldCause } from './status.ts';
import type { PodJson } from './wire.ts';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const QUANTITY = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;
const GENERATE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
/** Resources the scheduler cannot overcommit: limits are required and requests must equal them. */
const EXTENDED_RESOURCE = /^(?!kubernetes\.io\/)[^/]+\.[^/]+\/.+$/;

const SUBDOMAIN_HELP =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_HELP =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/** `generateName` plus five random characters, from the API server's alphabet. */
export function generateName(prefix: string): string {
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += GENERATE_ALPHABET[Math.floor(Math.random() * GENERATE_ALPHABET.length)];
  return `${prefix}${suffix}`;
}

function validateLabelKey(key: string): string | undefined {
  const [prefix, name] = key.includes('/') ? key.split(/\/(.*)/s) : [undefined, key];
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return `prefix part ${SUBDOMAIN_HELP}`;
  if (!name || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') and be at most 63 characters";
  }
  return undefined;
}

/**
 * Rejects what the API server rejects for a pod: 400 for a body it cannot decode (wrong kind,
 * namespace mismatch, malformed quantities), 422 Invalid for field errors (name, labels,
 * containers, restartPolicy, resources). Checks the pod as submitted, before defaulting.
 */
export function validatePod(pod: PodJson, namespace: string): void {
  if (pod === null || typeof pod !== 'object' || Array.isArray(pod)) throw badRequest('the request body must be a JSON Pod object');
  if (pod.kind !== undefined && pod.kind !== 'Pod') throw badRequest(`the API version in the data (${pod.apiVersion}) does not match the expected API version (v1) for kind ${pod.kind}; POST pods expects kind Pod`);
  if (pod.metadata?.namespace && pod.metadata.namespace !== namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  const name = pod.metadata?.name ?? '';
  const causes: FieldCause[] = [];
  if (!name && !pod.metadata?.generateName) {
    causes.push({ field: 'metadata.name', type: 'FieldValueRequired', detail: 'name or generateName is required' });
  } else if (name && (name.length > 253 || !DNS1123_SUBDOMAIN.test(name))) {
    causes.push({ field: 'metadata.name', type: 'FieldValueInvalid', detail: `"${name}": ${SUBDOMAIN_HELP}` });
  }
  for (const [key, value] of Object.entries(pod.metadata?.labels ?? {})) {
    const keyProblem = validateLabelKey(key);
    if (keyProblem) causes.push({ field: 'metadata.labels', type: 'FieldValueInvalid', detail: `"${key}": ${keyProblem}` });
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      causes.push({ field: 'metadata.labels', type: 'FieldValueInvalid', detail: `"${value}": ${String(value).length > 63 ? 'must be no more than 63 characters' : LABEL_HELP}` });
    }
  }
  const containers = pod.spec?.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    causes.push({ field: 'spec.containers', type: 'FieldValueRequired', detail: '' });
  }
  const seen = new Set<string>();
  (Array.isArray(containers) ? containers : []).forEach((c, i) => {
    const at = `spec.containers[${i}]`;
    if (!c.name) causes.push({ field: `${at}.name`, type: 'FieldValueRequired', detail: '' });
    else if (c.name.length > 63 || !DNS1123_LABEL.test(c.name)) {
      causes.push({ field: `${at}.name`, type: 'FieldValueInvalid', detail: `"${c.name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character` });
    } else if (seen.has(c.name)) causes.push({ field: `${at}.name`, type: 'FieldValueDuplicate', detail: `"${c.name}"` });
    if (c.name) seen.add(c.name);
    if (!c.image) causes.push({ field: `${at}.image`, type: 'FieldValueRequired', detail: '' });
    const requests = c.resources?.requests ?? {};
    const limits = c.resources?.limits ?? {};
    for (const [resource, q] of [...Object.entries(requests), ...Object.entries(limits)]) {
      if (!QUANTITY.test(String(q)) || Number.isNaN(parseQuantity(q))) {
        throw badRequest(`Pod in version "v1" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (${at}.resources: ${resource}: "${q}")`);
      }
    }
    for (const [resource, q] of Object.entries(requests)) {
      const limit = limits[resource];
      if (EXTENDED_RESOURCE.test(resource)) {
        if (limit === undefined) {
          causes.push({ field: `${at}.resources.limits`, type: 'FieldValueRequired', detail: 'Limit must be set for non overcommitable resources' });
        } else if (parseQuantity(limit) !== parseQuantity(q)) {
          causes.push({ field: `${at}.resources.requests`, type: 'FieldValueInvalid', detail: `"${q}": must be equal to ${resource} limit of ${limit}` });
        }
      } else if (limit !== undefined && parseQuantity(q) > parseQuantity(limit)) {
        causes.push({ field: `${at}.resources.requests`, type: 'FieldValueInvalid', detail: `"${q}": must be less than or equal to ${resource} limit of ${limit}` });
      }
    }
  });
  const restartPolicy = pod.spec?.restartPolicy;
  if (restartPolicy !== undefined && !['Always', 'OnFailure', 'Never'].includes(restartPolicy)) {
    causes.push({ field: 'spec.restartPolicy', type: 'FieldValueNotSupported', detail: `"${restartPolicy}": supported values: "Always", "OnFailure", "Never"` });
  }
  const deadline = pod.spec?.activeDeadlineSeconds;
  if (deadline !== undefined && (!Number.isInteger(deadline) || deadline <= 0)) {
    causes.push({ field: 'spec.activeDeadlineSeconds', type: 'FieldValueInvalid', detail: `${deadline}: must be between 1 and 2147483647, inclusive` });
  }
  if (causes.length > 0) throw invalid('Pod', name || pod.metadata?.generateName || '', causes);
}

/**
 * What the API server fills in on create: identity (uid, resourceVersion by the store,
 * creationTimestamp), spec defaults (restartPolicy Always, terminationMessagePath
 * /dev/termination-log, imagePullPolicy, default tolerations, requests copied from limits),
 * the ExtendedResourceToleration admission plugin's GPU toleration, and status Pending with a
 * QoS class.
 */
export function defaultPod(input: PodJson, namespace: string, name: string): PodJson {
  const pod = structuredClone(input);
  const metadata = (pod.metadata ??= {});
  metadata.name = name;
  metadata.namespace = namespace;
  metadata.uid = randomUUID();
  metadata.creationTimestamp = rfc3339();
  delete metadata.resourceVersion;
  delete metadata.deletionTimestamp;
  const spec = pod.spec!;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.serviceAccountName ??= spec.serviceAccount ?? 'default';
  spec.serviceAccount ??= spec.serviceAccountName;
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  const extended = new Set<string>();
  for (const c of spec.containers) {
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    const tag = c.image?.includes('@') ? undefined : /:([^/:]+)$/.exec(c.image ?? '')?.[1];
    c.imagePullPolicy ??= c.image?.includes('@') || (tag && tag !== 'latest') ? 'IfNotPresent' : 'Always';
    c.resources ??= {};
    if (c.resources.limits) {
      c.resources.requests = { ...c.resources.limits, ...(c.resources.requests ?? {}) };
      for (const r of Object.keys(c.resources.limits)) if (EXTENDED_RESOURCE.test(r)) extended.add(r);
    }
  }
  const tolerations = (spec.tolerations ??= []);
  for (const resource of extended) {
    if (!tolerations.some((t) => t.key === resource && t.operator === 'Exists' && t.effect === 'NoSchedule')) {
      tolerations.push({ key: resource, operator: 'Exists', effect: 'NoSchedule' });
    }
  }
  for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
    if (!tolerations.some((t) => t.key === key)) tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
  }
  // Same key order as the API server's JSON, so dumps read like `kubectl get -o json`.
  return { kind: 'Pod', apiVersion: 'v1', metadata, spec, status: { phase: 'Pending', qosClass: qosClass(pod) } };
}

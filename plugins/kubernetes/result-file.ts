/**
 * The reserved keys of a pod's result JSON. A container cannot call `ctx.metric()` or
 * `ctx.artifact()`, so a result whose top level holds
 * - `metrics: { name: number, ... }` records those as the task instance's metrics, and
 * - `artifacts: [{ uri, media_type?, size?, sha256?, ... }]` registers those outputs for lineage,
 * as if the task had called `ctx.metric(name, value)` / `ctx.artifact(uri, meta)` for each.
 */
import type { Json } from '../../src/dag/types.ts';
import type { ArtifactMeta, TaskContext, TaskLogger } from '../../src/executor/operator.ts';

function topLevel(value: Json | undefined, key: string): Json | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return value[key];
}

/**
 * Records `value.metrics` (when `value` is an object holding one) through `metric`; entries
 * that are not finite numbers are skipped with a warning in the task log, since a bad metric
 * is no reason to fail a step that succeeded. Returns the metrics recorded.
 *
 * @example
 * // the container wrote {"accuracy": 0.97, "metrics": {"accuracy": 0.97}} to result_file
 * await recordResultMetrics(outcome.return_value, req.context.metric, req.log, where);
 */
export async function recordResultMetrics(value: Json | undefined, metric: TaskContext['metric'] | undefined, log: TaskLogger, where: string): Promise<Record<string, number>> {
  const metrics = topLevel(value, 'metrics');
  if (metrics === undefined) return {};
  if (!metrics || typeof metrics !== 'object' || Array.isArray(metrics)) {
    log.warn(`${where}: result_file's "metrics" is ${JSON.stringify(metrics)}, not an object of numbers; no metrics recorded (write e.g. {"metrics": {"accuracy": 0.97}})`);
    return {};
  }
  if (typeof metric !== 'function') {
    log.warn(`${where}: result_file holds metrics but this task context cannot record them`);
    return {};
  }
  const recorded: Record<string, number> = {};
  for (const [name, v] of Object.entries(metrics)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      log.warn(`${where}: result_file metric '${name}' is ${JSON.stringify(v)}, not a finite number; skipped`);
      continue;
    }
    await metric(name, v);
    recorded[name] = v;
  }
  return recorded;
}

/**
 * Registers `value.artifacts` (a list of `{ uri, ...meta }`) through `artifact`; entries
 * without a string `uri` are skipped with a warning. Returns the URIs registered.
 *
 * @example
 * // {"artifacts": [{"uri": "/data/artifacts/iris_training/model.json", "media_type": "application/json"}]}
 * await recordResultArtifacts(outcome.return_value, req.context.artifact, req.log, where);
 */
export async function recordResultArtifacts(value: Json | undefined, artifact: TaskContext['artifact'] | undefined, log: TaskLogger, where: string): Promise<string[]> {
  const list = topLevel(value, 'artifacts');
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    log.warn(`${where}: result_file's "artifacts" is ${JSON.stringify(list)}, not a list; no artifacts registered (write e.g. {"artifacts": [{"uri": "/data/model.json"}]})`);
    return [];
  }
  if (typeof artifact !== 'function') {
    log.warn(`${where}: result_file lists artifacts but this task context cannot register them`);
    return [];
  }
  const uris: string[] = [];
  for (const entry of list) {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry) || typeof entry.uri !== 'string' || !entry.uri) {
      log.warn(`${where}: result_file artifact ${JSON.stringify(entry)} has no "uri"; skipped`);
      continue;
    }
    const { uri, ...meta } = entry as { uri: string } & ArtifactMeta;
    await artifact(uri, Object.keys(meta).length ? meta : undefined);
    uris.push(uri);
  }
  return uris;
}

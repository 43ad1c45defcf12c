/**
 * Hand-built OperatorRunRequests for calling the pod operator in tests.
 */
import pino from 'pino';
import { Pod } from 'kubernetes-models/v1/Pod';
import { isValidDns1123Label, isValidLabelValue } from '../pod-names.ts';
import type { Json } from '../../../src/dag/types.ts';
import type { AbortReason, OperatorRunRequest, TaskContext, TaskLogger } from '../../../src/executor/operator.ts';
import { dagSpec, runRecord, taskSpec, tiRecord } from '../../../test/support/records.ts';

export const silent = pino({ level: 'silent' });

export interface CollectingLogger extends TaskLogger {
  lines: string[];
  messages: { level: string; msg: string }[];
}

/** A TaskLogger that keeps raw lines and messages. */
export function collectingLogger(): CollectingLogger {
  const lines: string[] = [];
  const messages: { level: string; msg: string }[] = [];
  const at = (level: string) => (msg: string) => void messages.push({ level, msg });
  return { lines, messages, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), raw: (line) => void lines.push(line) };
}

export interface RequestParts {
  dagId?: string;
  taskId?: string;
  runId?: string;
  tryNumber?: number;
  mapIndex?: number;
  args: Record<string, Json>;
  params?: Record<string, Json>;
  conf?: Record<string, Json>;
  file?: string;
}

export interface TestRequest {
  req: OperatorRunRequest;
  log: CollectingLogger;
  controller: AbortController;
  abort(reason: AbortReason): void;
  /** What the operator recorded through `req.context.metric()`. */
  metrics: Record<string, number>;
  /** What the operator registered through `req.context.artifact()`. */
  artifacts: { uri: string; meta?: Record<string, Json | undefined> }[];
}

/** A minimal OperatorRunRequest for a pod task. */
export function podRequest(p: RequestParts): TestRequest {
  const dagId = p.dagId ?? 'gpu_finetune';
  const taskId = p.taskId ?? 'train';
  const runId = p.runId ?? 'manual__2026-12-03T18:00:00+00:00';
  const task = taskSpec(taskId, { operator: 'pod', operator_args: p.args, retries: 3 });
  const dag = dagSpec(dagId, [task], { file: p.file ?? 'dags/gpu_finetune.ts', start_date: '2026-01-01T00:00:00Z', params: p.params ?? {} });
  const at = '2026-12-03T18:00:00.000Z';
  const run = runRecord(dagId, runId, { logical_date: at, data_interval_start: at, data_interval_end: at, conf: p.conf ?? {}, start_date: null });
  const ti = tiRecord(dagId, runId, taskId, { map_index: p.mapIndex ?? -1, try_number: p.tryNumber ?? 1, max_tries: 4, operator: 'pod' });
  const controller = new AbortController();
  const log = collectingLogger();
  const metrics: Record<string, number> = {};
  const artifacts: TestRequest['artifacts'] = [];
  const context = {
    dag_id: dagId,
    run_id: runId,
    task_id: taskId,
    map_index: ti.map_index,
    try_number: ti.try_number,
    logical_date: new Date(run.logical_date),
    data_interval_start: new Date(run.data_interval_start),
    data_interval_end: new Date(run.data_interval_end),
    params: { ...dag.params, ...run.conf },
    conf: run.conf,
    map_value: undefined,
    log,
    signal: controller.signal,
    metric: async (name: string, value: number) => void (metrics[name] = value),
    artifact: async (uri: string, meta?: Record<string, Json | undefined>) => void artifacts.push(meta ? { uri, meta } : { uri }),
  } as unknown as TaskContext;
  return {
    req: { dag, task, run, ti, context, signal: controller.signal, log },
    log,
    controller,
    abort: (reason) => controller.abort(reason),
    metrics,
    artifacts,
  };
}

/** Validates a pod object against the official Kubernetes schema; throws on the first problem. */
export function validatePodSchema(input: unknown): void {
  // Through JSON, as on the wire (the client gives Date objects for timestamps).
  const obj = JSON.parse(JSON.stringify(input)) as unknown;
  new Pod(obj as ConstructorParameters<typeof Pod>[0]).validate();
  // The OpenAPI schema does not check names and label values; the API server does.
  const meta = (obj as { metadata?: { name?: string; labels?: Record<string, string> } }).metadata ?? {};
  if (meta.name !== undefined && !isValidDns1123Label(meta.name)) throw new Error(`metadata.name ${JSON.stringify(meta.name)} is not a DNS-1123 label`);
  for (const [k, v] of Object.entries(meta.labels ?? {})) {
    if (!isValidLabelValue(v)) throw new Error(`metadata.labels.${k}: ${JSON.stringify(v)} is not a valid label value`);
  }
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). */
export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

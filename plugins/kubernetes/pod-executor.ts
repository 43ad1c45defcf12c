/**
 * The `pod` operator: one task try as one Kubernetes pod (or, in local mode, one process).
 *
 * create (or re-attach) -> follow through the shared watch -> stream logs -> classify from
 * status -> clean up. A worker that restarts re-attaches to the live pod of its try; on a
 * graceful shutdown the pod is left running for the next worker; on timeout, "mark failed"
 * or cancel the pod is deleted.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { Counter, register as defaultRegistry, type Registry } from 'prom-client';
import type { Json, TaskOutcome } from '../../src/dag/types.ts';
import type { AbortReason, Operator, OperatorRunRequest } from '../../src/executor/operator.ts';
import type { CapacityProfiles } from './capacity-profiles.ts';
import { KubeApi, KubeApiError, RequestCounter, type RetryOptions } from './kube-api.ts';
import { loadKubeClient } from './kube-client.ts';
import { LogStreamer } from './log-streamer.ts';
import { RedisLogCursorStore, type LogCursorStore } from './log-cursor-store.ts';
import { runLocal } from './local-runner.ts';
import { classifyPod, classifyVanished, DISRUPTION_REASONS, mainContainerOf, podFacts, toOutcome, type PodVerdict } from './outcome.ts';
import { parsePodArgs, POD_ARG_DEFAULTS, type PodArgs } from './pod-args.ts';
import { buildPod, LABELS, podflowEnv, TRY_ANNOTATION, tryAnnotation, tryLabels } from './pod-builder.ts';
import { podName, type PodIdentity } from './pod-names.ts';
import { dagDirOf, resolvePodTemplate } from './pod-template.ts';
import { PodWatcher } from './pod-watcher.ts';
import { recordResultArtifacts, recordResultMetrics } from './result-file.ts';
import { renderArgv, renderString, type TemplateScope } from './templating.ts';

export interface PodOperatorOptions {
  /** `cluster` runs pods (kubeConfig required); `local` runs child processes. */
  mode: 'cluster' | 'local';
  kubeConfig?: KubeConfig;
  /** Namespace of pods whose task gives none (default "default"). */
  namespace?: string;
  /** Capacity profiles (see capacity-profiles.ts); null: spot/on-demand tasks fail with a message. */
  profiles?: CapacityProfiles | null;
  logger: Logger;
  /** Resolves relative DAG file paths (pod_template files, `{{ dag_dir }}`). Default: cwd. */
  dagsFolder?: string;
  /** Kubernetes API retry policy. */
  retry?: RetryOptions;
  /** Extra lineage env vars per try (added to PODFLOW_DAG_FILE_HASH, PODFLOW_LOGICAL_DATE, PODFLOW_RUN_TYPE). */
  lineageEnv?: (req: OperatorRunRequest) => Record<string, string>;
  /** How long to wait for the log stream to end after the pod ended (default 5 s). */
  logFinishGraceMs?: number;
  /** Log stream and watch reconnect delays (default 200 / 250 ms); tests make them short. */
  reconnectDelayMs?: number;
  /** A namespace watch silent this long is reopened (default 330 s; bookmarks keep a healthy one busy). */
  watchIdleTimeoutMs?: number;
  /** prom-client registry for `podflow_kube_api_requests_total` (default: the global one). */
  metricsRegistry?: Registry;
  /**
   * Redis for the log cursors (with `redisPrefix`): a worker re-attaching to a live pod then
   * resumes its log where the previous worker stopped. Without it the log is replayed from the start.
   */
  redis?: Redis;
  /** Key prefix for `redis` (the Podflow prefix, e.g. "podflow:"). */
  redisPrefix?: string;
}

type Cleanup = 'delete' | 'keep_failed' | 'keep_all';

const METRIC = 'podflow_kube_api_requests_total';

function requestsMetric(registry: Registry): Counter<'verb'> {
  const existing = registry.getSingleMetric(METRIC);
  if (existing) return existing as Counter<'verb'>;
  return new Counter({ name: METRIC, help: 'Kubernetes API requests made by the pod operator, by verb', labelNames: ['verb'], registers: [registry] });
}

/** A pod worth adopting: not finished, not being deleted, not disrupted. */
export function isLive(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return false;
  if (pod.status?.reason && DISRUPTION_REASONS.has(pod.status.reason)) return false;
  if (pod.status?.conditions?.some((c) => c.type === 'DisruptionTarget' && c.status === 'True')) return false;
  const main = pod.status?.containerStatuses?.find((s) => s.name === mainContainerOf(pod));
  return !main?.state?.terminated;
}

function shouldDelete(policy: Cleanup, kind: PodVerdict['kind']): boolean {
  if (policy === 'delete') return true;
  if (policy === 'keep_all') return false;
  return kind === 'success' || kind === 'skipped';
}

/** The Operator registered as type "pod". */
export class PodOperator implements Operator {
  readonly type = 'pod';
  /** In cluster mode a try's pod outlives its worker, and another worker re-attaches to it. */
  get reattachable(): boolean {
    return this.opts.mode === 'cluster';
  }
  /** The Kubernetes API (cluster mode), set once `@kubernetes/client-node` has loaded; see {@link kubeApi}. */
  api: KubeApi | null = null;
  private apiReady: Promise<KubeApi> | null = null;
  readonly counter: RequestCounter;
  private readonly watchers = new Map<string, PodWatcher>();
  private readonly cursors: LogCursorStore | undefined;
  private readonly logger: Logger;
  /** Requests per finished pod (most recent 500), e.g. `{ create: 1, log: 1, delete: 1 }`. */
  readonly podRequests = new Map<string, Record<string, number>>();

  constructor(readonly opts: PodOperatorOptions) {
    this.logger = opts.logger.child({ operator: 'pod' });
    const metric = requestsMetric(opts.metricsRegistry ?? defaultRegistry);
    this.counter = new RequestCounter((verb) => metric.inc({ verb }));
    if (opts.mode === 'cluster') {
      if (!opts.kubeConfig) throw new Error('pod operator in cluster mode needs a kubeConfig; set KUBECONFIG or PODFLOW_KUBE_MODE=local');
      // Started now so the first pod task rarely waits; local mode never loads the client.
      void this.kubeApi().catch(() => undefined);
    }
    this.cursors = opts.redis ? new RedisLogCursorStore(opts.redis, opts.redisPrefix ?? '') : undefined;
  }

  /**
   * The Kubernetes API in cluster mode, after loading `@kubernetes/client-node` (once; the
   * import takes seconds, so it happens only here and never in local mode).
   */
  kubeApi(): Promise<KubeApi> {
    if (this.opts.mode !== 'cluster' || !this.opts.kubeConfig) return Promise.reject(new Error('pod operator is in local mode: there is no Kubernetes API'));
    this.apiReady ??= loadKubeClient().then(
      () => (this.api = new KubeApi(this.opts.kubeConfig!, { logger: this.logger, counter: this.counter, ...this.opts.retry })),
      (e: unknown) => {
        this.apiReady = null;
        throw e;
      },
    );
    return this.apiReady;
  }

  /** Stops the shared watches (pods are left as they are). */
  close(): void {
    for (const w of this.watchers.values()) w.stop();
    this.watchers.clear();
  }

  /** The shared watch of a namespace, started and synced. */
  async watcher(namespace: string): Promise<PodWatcher> {
    const api = await this.kubeApi();
    let w = this.watchers.get(namespace);
    if (!w) {
      w = new PodWatcher(api, namespace, { logger: this.logger, reconnectDelayMs: this.opts.reconnectDelayMs, idleTimeoutMs: this.opts.watchIdleTimeoutMs });
      this.watchers.set(namespace, w);
    }
    try {
      await w.start();
    } catch (e) {
      // Let the next task try again with a fresh informer.
      w.stop();
      this.watchers.delete(namespace);
      throw e;
    }
    return w;
  }

  async execute(req: OperatorRunRequest): Promise<TaskOutcome> {
    const where = `${req.dag.file ? `${req.dag.file}: ` : ''}DAG '${req.dag.dag_id}', task '${req.task.task_id}'`;
    let args: PodArgs;
    try {
      args = parsePodArgs(req.task.operator_args, { dagId: req.dag.dag_id, taskId: req.task.task_id, file: req.dag.file || undefined });
      args = this.render(args, req, where);
    } catch (e) {
      return { state: 'failed', fatal: true, error: (e as Error).message };
    }
    const id: PodIdentity = {
      dagId: req.dag.dag_id,
      taskId: req.task.task_id,
      runId: req.run.dag_run_id,
      mapIndex: req.ti.map_index,
      tryNumber: req.ti.try_number,
    };
    const lineage = this.lineageEnv(req);
    const outcome = await this.run(req, args, id, lineage, where);
    // Both modes: a result file's top-level `metrics` and `artifacts` are the task's own (result-file.ts).
    if (outcome.state === 'success') {
      await recordResultMetrics(outcome.return_value, req.context?.metric, req.log, where);
      await recordResultArtifacts(outcome.return_value, req.context?.artifact, req.log, where);
    }
    return outcome;
  }

  private async run(req: OperatorRunRequest, args: PodArgs, id: PodIdentity, lineage: Record<string, string>, where: string): Promise<TaskOutcome> {
    if (this.opts.mode === 'local') {
      const env = Object.fromEntries(podflowEnv(id, lineage).map((e) => [e.name, e.value!]));
      return runLocal({ args, podflowEnv: env, cwd: process.cwd(), log: req.log, signal: req.signal, logger: this.logger, where });
    }
    try {
      return await this.runPod(req, args, id, lineage, where);
    } catch (e) {
      if (e instanceof KubeApiError && (e.status === 400 || e.status === 422)) {
        return { state: 'failed', fatal: true, error: `${where}: the API server rejected the pod: ${e.message}; fix the task's operator_args (or its pod_template)` };
      }
      const hint =
        e instanceof KubeApiError && (e.status === 401 || e.status === 403)
          ? '; check the credentials and RBAC (pods: create/get/list/watch/delete, pods/log: get, events: list)'
          : e instanceof KubeApiError && e.status === null
            ? '; check that the cluster is reachable (KUBECONFIG, network)'
            : '';
      return { state: 'failed', error: `${where}: ${(e as Error).message}${hint}` };
    }
  }

  private lineageEnv(req: OperatorRunRequest): Record<string, string> {
    return {
      PODFLOW_DAG_FILE_HASH: req.dag.file_hash,
      PODFLOW_LOGICAL_DATE: req.run.logical_date,
      PODFLOW_RUN_TYPE: req.run.run_type,
      ...(this.opts.lineageEnv?.(req) ?? {}),
    };
  }

  private dagDir(req: OperatorRunRequest): string {
    return dagDirOf(req.dag.file || 'x', this.opts.dagsFolder ?? process.cwd());
  }

  /** Templates argv and literal env values element-wise. */
  private render(args: PodArgs, req: OperatorRunRequest, where: string): PodArgs {
    const scope: TemplateScope = {
      params: req.context?.params ?? { ...req.dag.params, ...req.run.conf },
      conf: req.run.conf,
      run_id: req.run.dag_run_id,
      dag_id: req.dag.dag_id,
      task_id: req.task.task_id,
      ds: req.run.logical_date.slice(0, 10),
      ts: req.run.logical_date,
      try_number: req.ti.try_number,
      map_index: req.ti.map_index,
      map_value: req.context?.map_value,
      dag_dir: this.dagDir(req),
    };
    const env = args.env
      ? Object.fromEntries(Object.entries(args.env).map(([k, v]) => [k, typeof v === 'string' ? renderString(v, scope, `${where}: env.${k}`) : v]))
      : undefined;
    return {
      ...args,
      command: renderArgv(args.command, scope, `${where}: command`),
      args: renderArgv(args.args, scope, `${where}: args`),
      local_command: renderArgv(args.local_command, scope, `${where}: local_command`),
      ...(env ? { env } : {}),
    };
  }

  private async runPod(req: OperatorRunRequest, args: PodArgs, id: PodIdentity, lineage: Record<string, string>, where: string): Promise<TaskOutcome> {
    const api = await this.kubeApi();
    const namespace = args.namespace ?? this.opts.namespace ?? POD_ARG_DEFAULTS.namespace;
    const cleanup: Cleanup = args.cleanup ?? POD_ARG_DEFAULTS.cleanup;
    let template: V1Pod | null;
    let build: (attempt: number) => V1Pod;
    try {
      template = await resolvePodTemplate(args.pod_template as string | Record<string, unknown> | undefined, this.dagDir(req), where);
      build = (attempt) => buildPod({ args, identity: { ...id, attempt }, namespace, profiles: this.opts.profiles ?? null, template, lineageEnv: lineage });
      build(0);
    } catch (e) {
      return { state: 'failed', fatal: true, error: `${where}: ${(e as Error).message}` };
    }

    const watcher = await this.watcher(namespace);
    if (req.signal.aborted) {
      // Stopped before any pod existed: nothing to leave running or to delete.
      const reason = req.signal.reason as AbortReason | undefined;
      return reason?.kind === 'shutdown'
        ? { state: 'failed', free_retry: true, error: 'worker shut down before the pod was created' }
        : { state: 'failed', error: `${where}: stopped before the pod was created: ${reason?.message ?? 'aborted'}` };
    }
    const annotation = tryAnnotation(id);
    const mine = watcher.find(tryLabels(id)).filter((p) => p.metadata?.annotations?.[TRY_ANNOTATION] === annotation);
    let pod = mine.find(isLive);
    let adopted = Boolean(pod);
    if (!pod) {
      // Finished or evicted pods of this try are never adopted; the next attempt gets a new name.
      let attempt = mine.reduce((m, p) => Math.max(m, Number(p.metadata?.labels?.[LABELS.attempt] ?? 0) + 1), 0);
      for (const stale of mine) {
        if (cleanup === 'delete') await api.deletePod(namespace, stale.metadata!.name!).catch(() => false);
      }
      for (let tries = 0; !pod; tries++) {
        const body = build(attempt);
        try {
          pod = await api.createPod(namespace, body, req.signal);
          watcher.observe(pod);
        } catch (e) {
          if (!(e instanceof KubeApiError) || e.reason !== 'AlreadyExists' || tries >= 5) throw e;
          // Idempotent create: the pod exists (our own earlier request, or a racing worker).
          const cur = await api.readPod(namespace, body.metadata!.name!, req.signal);
          if (cur && cur.metadata?.annotations?.[TRY_ANNOTATION] === annotation && isLive(cur)) {
            pod = cur;
            adopted = true;
          } else attempt++;
        }
      }
    }
    const name = pod.metadata!.name!;
    req.log.info(adopted ? `re-attached to live pod ${namespace}/${name}` : `created pod ${namespace}/${name}`, { pod: name, namespace, adopted });
    return this.follow(req, args, pod, namespace, watcher, cleanup);
  }

  private follow(req: OperatorRunRequest, args: PodArgs, created: V1Pod, namespace: string, watcher: PodWatcher, cleanup: Cleanup): Promise<TaskOutcome> {
    const api = this.api!;
    const name = created.metadata!.name!;
    const main = mainContainerOf(created);
    const scheduleTimeout = args.schedule_timeout_seconds ?? POD_ARG_DEFAULTS.schedule_timeout_seconds;
    const skip = args.skip_on_exit_code === undefined ? [] : ([] as number[]).concat(args.skip_on_exit_code);
    const log = req.log;

    return new Promise<TaskOutcome>((resolve) => {
      let last: V1Pod = watcher.get(name) ?? created;
      let logs: LogStreamer | null = null;
      let done = false;
      let deleting = false;

      const mainTerminated = () => Boolean(last.status?.containerStatuses?.find((s) => s.name === main)?.state?.terminated);
      const startLogs = () => {
        if (logs) return;
        logs = new LogStreamer({
          api,
          namespace,
          pod: name,
          container: main,
          logger: this.logger,
          reconnectDelayMs: this.opts.reconnectDelayMs,
          isTerminated: mainTerminated,
          cursorStore: this.cursors,
          onLine: (line) => log.raw(line, 'stdout'),
        });
        logs.start();
      };

      const stopFollowing = () => {
        done = true;
        unsubscribe();
        clearInterval(timer);
        req.signal.removeEventListener('abort', onAbort);
      };

      const finish = (v: PodVerdict) => {
        if (done) return;
        stopFollowing();
        void (async () => {
          if (!v.neverStarted && !logs && v.reason !== 'PodDeleted') startLogs();
          if (logs) await (logs as LogStreamer).finish(this.opts.logFinishGraceMs ?? 5000);
          const events = v.kind === 'success' ? [] : await api.podEvents(namespace, name);
          const extra: Record<string, Json> = {
            attempt: Number(last.metadata?.labels?.[LABELS.attempt] ?? 0),
            argv: [...(args.command ?? []), ...(args.args ?? [])],
            capacity: args.capacity ?? POD_ARG_DEFAULTS.capacity,
          };
          const gpu = last.spec?.containers.find((c) => c.name === main)?.resources?.limits?.['nvidia.com/gpu'];
          if (gpu && last.spec?.nodeName) {
            const node = await api.readNode(last.spec.nodeName, name);
            const l = node?.metadata?.labels ?? {};
            extra.gpu_model = l['nvidia.com/gpu.product'] ?? l['cloud.google.com/gke-accelerator'] ?? l['karpenter.k8s.aws/instance-gpu-name'] ?? null;
          }
          if (v.reason !== 'PodDeleted' && shouldDelete(cleanup, v.kind)) {
            deleting = true;
            // Nothing running (finished, or never started): remove it at once. Running sidecars get their grace period.
            const running = (last.status?.containerStatuses ?? []).some((c) => c.state?.running);
            await api.deletePod(namespace, name, running ? args.termination_grace_seconds : 0).catch((e) => log.warn(`could not delete pod ${name}: ${(e as Error).message}`));
          }
          const counts = this.counter.forPod(name);
          const total = this.counter.totalForPod(name);
          this.remember(name, counts);
          extra.kube_api_requests = total;
          log.info(`pod ${name} ${v.kind === 'success' ? 'succeeded' : `ended: ${v.reason}`} after ${total} Kubernetes API requests (${Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ')})`, { pod: name, requests: counts });
          resolve(toOutcome(v, { podName: name, events, facts: podFacts(last, extra), resultFile: args.result_file }));
        })().catch((e) => resolve({ state: 'failed', error: `pod ${name}: ${(e as Error).message}` }));
      };

      const evaluate = () => {
        if (done) return;
        const s = last.status?.containerStatuses?.find((c) => c.name === main);
        if (s?.state?.running || s?.state?.terminated?.startedAt) startLogs();
        const v = classifyPod(last, { mainContainer: main, scheduleTimeoutSeconds: scheduleTimeout, skipOnExitCodes: skip, now: Date.now() });
        if (v) finish(v);
      };

      const unsubscribe = watcher.subscribe(name, (type, p) => {
        if (type === 'DELETED') {
          if (deleting || done) return;
          // Deleted by someone else (node lost, preemption, a human): use the last state it had.
          const v = classifyPod(p, { mainContainer: main, scheduleTimeoutSeconds: scheduleTimeout, skipOnExitCodes: skip, now: Date.now() });
          last = p;
          finish(v ?? classifyVanished(p));
          return;
        }
        last = p;
        evaluate();
      });

      // Re-check without events: the schedule timeout is a matter of time, not of change.
      const timer = setInterval(evaluate, Math.max(100, Math.min(5000, (scheduleTimeout * 1000) / 4)));

      const onAbort = async () => {
        if (done) return;
        const reason = req.signal.reason as AbortReason | undefined;
        stopFollowing();
        const shutdown = reason?.kind === 'shutdown';
        await (logs as LogStreamer | null)?.stop(shutdown);
        if (shutdown) {
          log.info(`worker shutting down: pod ${namespace}/${name} left running for the next worker to re-attach`);
          resolve({ state: 'failed', free_retry: true, error: `worker shut down; pod ${name} was left running and will be re-attached` });
          return;
        }
        deleting = true;
        const why = reason?.kind === 'timeout' ? 'execution_timeout reached' : (reason?.message ?? 'task stopped');
        void api
          .deletePod(namespace, name, args.termination_grace_seconds)
          .catch((e) => log.warn(`could not delete pod ${name}: ${(e as Error).message}`))
          .then(() => {
            this.remember(name, this.counter.forPod(name));
            log.warn(`${why}: deleted pod ${namespace}/${name}`);
            resolve({ state: 'failed', error: `pod ${name}: ${why}${reason?.message && reason.kind === 'timeout' ? ` (${reason.message})` : ''}; the pod was deleted`, facts: podFacts(last) });
          });
      };
      if (req.signal.aborted) void onAbort();
      else {
        req.signal.addEventListener('abort', onAbort, { once: true });
        evaluate();
      }
    });
  }

  private remember(pod: string, counts: Record<string, number>): void {
    this.podRequests.set(pod, counts);
    this.counter.forget(pod);
    if (this.podRequests.size > 500) this.podRequests.delete(this.podRequests.keys().next().value!);
  }
}

/** Pod name of the first attempt of a try (for tools and tests). */
export { podName };

/**
 * Classifies a pod's state into a task outcome. Only the pod status decides (never the log):
 * the main container's termination, the pod phase and reason, its conditions, and the
 * waiting reason of the main container.
 */
import type { CoreV1Event, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { Json, TaskOutcome } from '../../src/dag/types.ts';
import { MAIN_CONTAINER } from './pod-builder.ts';

/** Waiting reasons that will not fix themselves: fail at once and do not retry. */
export const FATAL_WAITING_REASONS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

/** Pod-level reasons for a pod killed by the platform rather than by its own code. */
export const DISRUPTION_REASONS = new Set([
  'Evicted',
  'Preempting',
  'Preempted',
  'NodeLost',
  'NodeShutdown',
  'Shutdown',
  'Terminated',
  'UnexpectedAdmissionError',
  'OutOfcpu',
  'OutOfmemory',
  'OutOfpods',
]);

export type VerdictKind = 'success' | 'failed' | 'skipped' | 'retry';

/** The end of a pod, as classified. `null` from classifyPod means: not finished yet. */
export interface PodVerdict {
  kind: VerdictKind;
  /** Short stable reason: Completed, Error, OOMKilled, DeadlineExceeded, Unschedulable, ImagePullBackOff, Evicted, DisruptionTarget, PodDeleted … */
  reason: string;
  message: string;
  exitCode: number | null;
  /** Do not retry at all. */
  fatal: boolean;
  /** The main container never started: retry without spending a try. */
  neverStarted: boolean;
  /** The main container's termination message (the result_file content when one is set). */
  terminationMessage?: string;
}

export interface ClassifyOptions {
  /** Container whose end decides (default `base`, or the pod's podflow.io/main-container annotation). */
  mainContainer?: string;
  scheduleTimeoutSeconds: number;
  skipOnExitCodes: number[];
  /** Epoch ms "now", for the schedule timeout. */
  now: number;
}

/** The main container's name for a pod we built. */
export function mainContainerOf(pod: V1Pod): string {
  return pod.metadata?.annotations?.['podflow.io/main-container'] ?? MAIN_CONTAINER;
}

function mainStatus(pod: V1Pod, name: string): V1ContainerStatus | undefined {
  return pod.status?.containerStatuses?.find((s) => s.name === name);
}

/** True once the main container ever ran (so a retry must be paid for). */
export function mainStarted(pod: V1Pod, name = mainContainerOf(pod)): boolean {
  const s = mainStatus(pod, name);
  if (!s) return false;
  return Boolean(s.started || s.state?.running || s.state?.terminated?.startedAt || s.lastState?.terminated?.startedAt);
}

/** The DisruptionTarget condition (preemption, eviction API, taint manager, pod GC), if set. */
function disruption(pod: V1Pod): { reason: string; message: string } | null {
  const c = pod.status?.conditions?.find((x) => x.type === 'DisruptionTarget' && x.status === 'True');
  if (c) return { reason: c.reason ?? 'DisruptionTarget', message: c.message ?? '' };
  const r = pod.status?.reason;
  if (r && DISRUPTION_REASONS.has(r)) return { reason: r, message: pod.status?.message ?? '' };
  return null;
}

function verdict(v: Partial<PodVerdict> & Pick<PodVerdict, 'kind' | 'reason' | 'message'>): PodVerdict {
  return { exitCode: null, fatal: false, neverStarted: false, ...v };
}

/**
 * The verdict for a pod, or null while it is still pending or running.
 * A finished main container ends the task even when sidecars still run.
 */
export function classifyPod(pod: V1Pod, opts: ClassifyOptions): PodVerdict | null {
  const name = opts.mainContainer ?? mainContainerOf(pod);
  const status = mainStatus(pod, name);
  const term = status?.state?.terminated;
  const phase = pod.status?.phase;
  const podReason = pod.status?.reason;
  const started = mainStarted(pod, name);
  const disrupted = disruption(pod);

  if (term) {
    const code = term.exitCode;
    if (code === 0) {
      return verdict({ kind: 'success', reason: 'Completed', message: 'main container exited 0', exitCode: 0, terminationMessage: term.message });
    }
    if (podReason === 'DeadlineExceeded') {
      return verdict({ kind: 'failed', reason: 'DeadlineExceeded', message: `pod ran past active_deadline_seconds (${pod.spec?.activeDeadlineSeconds ?? '?'}s) and was stopped; raise active_deadline_seconds or speed up the task`, exitCode: code });
    }
    if (disrupted) {
      const neverStarted = !term.startedAt;
      return verdict({
        kind: 'retry',
        reason: disrupted.reason,
        message: `pod was ${describeDisruption(disrupted.reason)} (${disrupted.reason}${disrupted.message ? `: ${disrupted.message}` : ''}); the main container ${neverStarted ? 'never started' : `was killed with exit code ${code}`}`,
        exitCode: code,
        neverStarted,
      });
    }
    if (term.reason === 'OOMKilled') {
      const limit = pod.spec?.containers.find((c) => c.name === name)?.resources?.limits?.memory;
      return verdict({ kind: 'failed', reason: 'OOMKilled', message: `main container was OOMKilled (exit ${code}, memory limit ${limit ?? 'none'}); raise resources.memory or lower batch size`, exitCode: code });
    }
    if (term.reason === 'ContainerStatusUnknown') {
      return verdict({ kind: 'retry', reason: 'NodeLost', message: `the node running the pod was lost (${term.message ?? 'container status unknown'})`, exitCode: code, neverStarted: !started });
    }
    if (opts.skipOnExitCodes.includes(code)) {
      return verdict({ kind: 'skipped', reason: 'SkipExitCode', message: `main container exited ${code}, listed in skip_on_exit_code`, exitCode: code });
    }
    const tail = term.message ? `; last output: ${term.message.trim().slice(-500)}` : '';
    return verdict({ kind: 'failed', reason: term.reason ?? 'Error', message: `main container exited with code ${code}${term.reason && term.reason !== 'Error' ? ` (${term.reason})` : ''}${tail}`, exitCode: code });
  }

  if (phase === 'Failed') {
    if (podReason === 'DeadlineExceeded') {
      return verdict({ kind: 'failed', reason: 'DeadlineExceeded', message: `pod ran past active_deadline_seconds (${pod.spec?.activeDeadlineSeconds ?? '?'}s) and was stopped; raise active_deadline_seconds or speed up the task` });
    }
    if (disrupted) {
      return verdict({ kind: 'retry', reason: disrupted.reason, message: `pod was ${describeDisruption(disrupted.reason)} (${disrupted.reason}${disrupted.message ? `: ${disrupted.message}` : ''}) before its main container ${started ? 'finished' : 'started'}`, neverStarted: !started });
    }
    return verdict({ kind: 'failed', reason: podReason ?? 'Failed', message: `pod failed: ${pod.status?.message ?? podReason ?? 'no reason given'}` });
  }
  if (phase === 'Succeeded') {
    return verdict({ kind: 'success', reason: 'Completed', message: 'pod succeeded', exitCode: 0 });
  }

  const waiting = status?.state?.waiting;
  if (waiting?.reason && FATAL_WAITING_REASONS.has(waiting.reason)) {
    const image = pod.spec?.containers.find((c) => c.name === name)?.image;
    const fix = waiting.reason.startsWith('CreateContainer')
      ? 'check that the Secrets/ConfigMaps it references exist'
      : `check the image name '${image}' and its tag, and image_pull_secrets for a private registry`;
    return verdict({ kind: 'failed', reason: waiting.reason, message: `main container cannot start: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}; ${fix}`, fatal: true, neverStarted: true });
  }

  if (phase === 'Pending' || phase === undefined) {
    const sched = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (sched?.status === 'False' && sched.reason === 'Unschedulable') {
      const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : opts.now;
      if (opts.now - created >= opts.scheduleTimeoutSeconds * 1000) {
        return verdict({
          kind: 'failed',
          reason: 'Unschedulable',
          message: `pod could not be scheduled within schedule_timeout_seconds (${opts.scheduleTimeoutSeconds}s): ${sched.message ?? 'no message from the scheduler'}; check resources, node_selector, tolerations and capacity (is there a node with the GPUs asked for?)`,
          fatal: true,
          neverStarted: true,
        });
      }
    }
  }
  return null;
}

/** The verdict for a pod that disappeared while we were following it (not deleted by us). */
export function classifyVanished(lastSeen: V1Pod | undefined): PodVerdict {
  const started = lastSeen ? mainStarted(lastSeen) : false;
  const d = lastSeen ? disruption(lastSeen) : null;
  return verdict({
    kind: 'retry',
    reason: d?.reason ?? 'PodDeleted',
    message: `pod was deleted by someone else (${d ? `${d.reason}${d.message ? `: ${d.message}` : ''}` : 'node lost, preempted or deleted by hand'}) before its main container ${started ? 'finished' : 'started'}`,
    neverStarted: !started,
  });
}

function describeDisruption(reason: string): string {
  if (/preempt/i.test(reason)) return 'preempted';
  if (/evict/i.test(reason)) return 'evicted';
  if (/shutdown|NodeLost|PodGC|TaintManager/i.test(reason)) return 'lost with its node';
  return 'disrupted';
}

/** One line per event, oldest first: "Warning FailedScheduling: 0/3 nodes are available … (x4)". */
export function formatEvents(events: CoreV1Event[]): string {
  const time = (e: CoreV1Event) => new Date((e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? 0) as string | number | Date).getTime();
  return [...events]
    .sort((a, b) => time(a) - time(b))
    .map((e) => `${e.type ?? 'Normal'} ${e.reason ?? ''}: ${e.message ?? ''}${(e.count ?? 1) > 1 ? ` (x${e.count})` : ''}`)
    .join('\n');
}

/** Lineage facts from the pod: image digest, node, resources asked, GPU model when known. */
export function podFacts(pod: V1Pod, extra: Record<string, Json> = {}): Record<string, Json> {
  const name = mainContainerOf(pod);
  const c = pod.spec?.containers.find((x) => x.name === name);
  const s = mainStatus(pod, name);
  const facts: Record<string, Json> = {
    pod_name: pod.metadata?.name ?? null,
    namespace: pod.metadata?.namespace ?? null,
    image: c?.image ?? null,
    image_digest: s?.imageID ? s.imageID.replace(/^docker-pullable:\/\//, '') || null : null,
    node_name: pod.spec?.nodeName ?? null,
    resources: (c?.resources ?? null) as Json,
    node_selector: (pod.spec?.nodeSelector ?? null) as Json,
    qos_class: pod.status?.qosClass ?? null,
    started_at: s?.state?.terminated?.startedAt ? new Date(s.state.terminated.startedAt).toISOString() : null,
    finished_at: s?.state?.terminated?.finishedAt ? new Date(s.state.terminated.finishedAt).toISOString() : null,
  };
  return { ...facts, ...extra };
}

/** Turns a verdict into the outcome the worker records, with the pod's events in the message. */
export function toOutcome(v: PodVerdict, ctx: { podName: string; events: CoreV1Event[]; facts: Record<string, Json>; resultFile?: string }): TaskOutcome {
  const events = ctx.events.length ? `\npod events:\n${formatEvents(ctx.events)}` : '';
  if (v.kind === 'success') {
    const out: TaskOutcome = { state: 'success', exit_code: v.exitCode ?? 0, facts: ctx.facts };
    if (ctx.resultFile) {
      const text = v.terminationMessage?.trim();
      if (text) {
        try {
          out.return_value = JSON.parse(text) as Json;
        } catch (e) {
          return {
            state: 'failed',
            fatal: true,
            exit_code: 0,
            facts: ctx.facts,
            error: `pod ${ctx.podName}: result_file ${ctx.resultFile} does not hold JSON (${(e as Error).message}); write JSON (at most 4 KiB) there or drop result_file`,
          };
        }
      }
    }
    return out;
  }
  if (v.kind === 'skipped') return { state: 'skipped', exit_code: v.exitCode, facts: ctx.facts, error: `pod ${ctx.podName}: ${v.message}` };
  const outcome: TaskOutcome = {
    state: 'failed',
    exit_code: v.exitCode,
    facts: { ...ctx.facts, reason: v.reason },
    error: `pod ${ctx.podName}: ${v.message}${events}`,
  };
  if (v.fatal) outcome.fatal = true;
  if (v.kind === 'retry' && v.neverStarted) outcome.free_retry = true;
  return outcome;
}

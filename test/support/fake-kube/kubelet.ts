import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node';
import { nowNs, rfc3339, rfc3339Micro } from './clock.ts';
import type { LogStore } from './container-logs.ts';
import { placePod } from './nodes.ts';
import {
  newContainerId,
  newPodIp,
  normalizeImage,
  phaseFromContainers,
  runningStatus,
  setCondition,
  setReadiness,
  terminatedStatus,
  truncateMessage,
  waitingStatus,
} from './pod-status.ts';
import type { Collection } from './store.ts';
import { toClientPod, type EventJson, type NodeJson, type PodJson } from './wire.ts';

/** How the simulated kubelet (and scheduler) treats a pod. See server.ts for each kind's story. */
export type PodBehaviour =
  | { kind: 'succeed'; logs?: string[]; runMs?: number; lineIntervalMs?: number; exitCode?: 0; resultFile?: unknown }
  | { kind: 'fail'; exitCode: number; logs?: string[]; runMs?: number; lineIntervalMs?: number }
  | { kind: 'never_schedule'; message?: string }
  | { kind: 'image_pull_error' }
  | { kind: 'oom'; logs?: string[]; afterMs?: number; lineIntervalMs?: number }
  | { kind: 'evict_before_start' }
  | { kind: 'preempt_after_start'; logs?: string[]; afterMs?: number; lineIntervalMs?: number; via?: 'node_shutdown' | 'scheduler' }
  | { kind: 'deadline'; afterMs?: number }
  | { kind: 'hang' }
  | { kind: 'sidecar'; mainExitCode: number; logs?: string[]; runMs?: number; lineIntervalMs?: number };

export type PodMatch = { name?: string | RegExp; labels?: Record<string, string> } | ((pod: V1Pod) => boolean);

/** Step lengths of the simulation, in milliseconds. */
export interface KubeletTimings {
  /** Create to scheduled (or to FailedScheduling). Default 10. */
  scheduleMs: number;
  /** Each of: scheduled to ContainerCreating, ContainerCreating to Running, ErrImagePull to ImagePullBackOff. Default 10. */
  stepMs: number;
  /** Default least running time of succeed/fail/sidecar. Default 30. */
  runMs: number;
  /** Default pause between log lines. Default 5. */
  lineIntervalMs: number;
  /** Default time after start for oom/preempt_after_start/deadline. Default 40. */
  afterMs: number;
  /** Graceful deletion: deletionTimestamp set to containers stopped and the pod removed. Default 30. */
  deleteGraceMs: number;
}

export const DEFAULT_TIMINGS: KubeletTimings = { scheduleMs: 10, stepMs: 10, runMs: 30, lineIntervalMs: 5, afterMs: 40, deleteGraceMs: 30 };

export const DEFAULT_UNSCHEDULABLE = '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.';
const EVICTION_MESSAGE = 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. ';
const SHUTDOWN_MESSAGE = 'Pod was terminated in response to imminent node shutdown.';
const DEADLINE_MESSAGE = 'Pod was active on the node longer than the specified deadline';
const SIGTERM_EXIT = 143;
const SIGKILL_EXIT = 137;

/** Raised inside a run when its pod was deleted or replaced; ends the run quietly. */
class PodGone extends Error {}

type Status = NonNullable<PodJson['status']>;

function isTerminal(pod: PodJson): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/**
 * The scheduler, kubelet and pod garbage collector of the fake cluster: walks each created pod
 * through the states a real cluster would show (as watch events, events and logs), following
 * the behaviour the test scripted for it.
 */
export class Kubelet {
  private readonly rules: Array<{ match: (pod: PodJson) => boolean; behaviour: PodBehaviour }> = [];
  private readonly runs = new Map<string, AbortController>();
  private readonly lifetime = new AbortController();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly pods: Collection<PodJson>,
    private readonly events: Collection<EventJson>,
    private readonly nodes: Collection<NodeJson>,
    private readonly logs: LogStore,
    private readonly timings: KubeletTimings,
  ) {}

  script(match: PodMatch, behaviour: PodBehaviour): void {
    this.rules.push({ match: compileMatch(match), behaviour });
  }

  behaviourFor(pod: PodJson): PodBehaviour {
    return this.rules.find((r) => r.match(pod))?.behaviour ?? { kind: 'succeed' };
  }

  /** Starts simulating a freshly created pod. */
  podCreated(pod: PodJson): void {
    const uid = pod.metadata!.uid!;
    const controller = new AbortController();
    this.runs.set(uid, controller);
    const signal = AbortSignal.any([controller.signal, this.lifetime.signal]);
    this.run(pod, this.behaviourFor(pod), signal)
      .catch((err: unknown) => {
        if (err instanceof PodGone || (err as Error).name === 'AbortError') return;
        // A bug in the fake must fail loudly in the test that hit it, not hang it.
        console.error(`fake-kube kubelet: simulating pod ${pod.metadata?.namespace}/${pod.metadata?.name} failed:`, err);
      })
      .finally(() => {
        if (this.runs.get(uid) === controller) this.runs.delete(uid);
      });
  }

  /**
   * Deletes a pod as the API server and kubelet do: at once when it never reached a node or the
   * grace period is 0; otherwise deletionTimestamp first, containers stopped (SIGTERM, exit 143)
   * and phase Failed after the grace, then DELETED.
   */
  deletePod(namespace: string, name: string, gracePeriodSeconds?: number): PodJson | undefined {
    const pod = this.pods.get(namespace, name);
    if (!pod) return undefined;
    const uid = pod.metadata!.uid!;
    if (pod.metadata?.deletionTimestamp) return pod;
    const grace = gracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    if (!pod.spec?.nodeName || grace === 0) {
      this.stopRun(uid);
      this.logs.closePod(uid);
      return this.pods.remove(namespace, name, markDeletedNow);
    }
    this.stopRun(uid);
    const marked = this.pods.update(namespace, name, (p) => {
      p.metadata!.deletionTimestamp = rfc3339(Date.now() + grace * 1000);
      p.metadata!.deletionGracePeriodSeconds = grace;
    });
    const running = (pod.status?.containerStatuses ?? []).filter((s) => s.state?.running);
    for (const s of running) this.event(pod, 'Normal', 'Killing', `Stopping container ${s.name}`, 'kubelet', s.name);
    this.later(this.timings.deleteGraceMs, () => {
      this.terminateAll(uid, namespace, name, { exitCode: SIGTERM_EXIT, reason: 'Error' });
      this.logs.closePod(uid);
      this.removeIfSame(uid, namespace, name);
    });
    return marked;
  }

  /** The pod garbage collector's answer to a vanished node: its pods fail, then are force-deleted. */
  nodeDeleted(nodeName: string): void {
    for (const pod of this.pods.list().filter((p) => p.spec?.nodeName === nodeName)) {
      const { uid, namespace, name } = pod.metadata as { uid: string; namespace: string; name: string };
      this.stopRun(uid);
      if (!isTerminal(pod)) {
        this.pods.update(namespace, name, (p) => {
          const status = (p.status ??= {});
          status.phase = 'Failed';
          setCondition(status, 'DisruptionTarget', 'True', 'DeletionByPodGC', 'PodGC: node no longer exists');
          setReadiness(status);
        });
      }
      this.logs.closePod(uid);
      this.later(this.timings.stepMs, () => this.removeIfSame(uid, namespace, name));
    }
  }

  stop(): void {
    this.lifetime.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.logs.closeAll();
  }

  private async run(created: PodJson, behaviour: PodBehaviour, signal: AbortSignal): Promise<void> {
    const { uid, namespace, name } = created.metadata as { uid: string; namespace: string; name: string };
    const t = this.timings;
    const update = (mutate: (pod: PodJson, status: Status) => void): PodJson => {
      if (signal.aborted) throw new PodGone();
      const current = this.pods.get(namespace, name);
      if (current?.metadata?.uid !== uid) throw new PodGone();
      return this.pods.update(namespace, name, (p) => mutate(p, (p.status ??= {})))!;
    };

    await sleep(t.scheduleMs, undefined, { signal });
    let pod = this.pods.get(namespace, name);
    if (pod?.metadata?.uid !== uid) throw new PodGone();
    const placement =
      behaviour.kind === 'never_schedule'
        ? { message: behaviour.message ?? DEFAULT_UNSCHEDULABLE }
        : placePod(pod, this.nodes.list(), this.pods.list().filter((p) => p.spec?.nodeName && !isTerminal(p)));
    if ('message' in placement) {
      update((_, status) => setCondition(status, 'PodScheduled', 'False', 'Unschedulable', placement.message));
      this.event(pod, 'Warning', 'FailedScheduling', placement.message, 'default-scheduler');
      return;
    }
    const node = placement.node;
    const nodeName = node.metadata!.name!;
    pod = update((p, status) => {
      p.spec!.nodeName = nodeName;
      setCondition(status, 'PodScheduled', 'True');
    });
    this.event(pod, 'Normal', 'Scheduled', `Successfully assigned ${namespace}/${name} to ${nodeName}`, 'default-scheduler');

    await sleep(t.stepMs, undefined, { signal });
    const hostIP = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '10.0.0.1';
    const podIP = newPodIp();
    const containers = pod.spec!.containers;
    pod = update((_, status) => {
      status.hostIP = hostIP;
      status.hostIPs = [{ ip: hostIP }];
      status.podIP = podIP;
      status.podIPs = [{ ip: podIP }];
      status.startTime = rfc3339();
      setCondition(status, 'PodReadyToStartContainers', 'True');
      setCondition(status, 'Initialized', 'True');
      status.containerStatuses = containers.map((c) => waitingStatus(c, 'ContainerCreating'));
      setReadiness(status);
    });
    for (const c of containers) this.event(pod, 'Normal', 'Pulling', `Pulling image "${c.image}"`, 'kubelet', c.name, nodeName);

    if (behaviour.kind === 'evict_before_start') {
      await sleep(t.stepMs, undefined, { signal });
      pod = update((_, status) => {
        status.phase = 'Failed';
        status.reason = 'Evicted';
        status.message = EVICTION_MESSAGE;
        setCondition(status, 'DisruptionTarget', 'True', 'TerminationByKubelet', EVICTION_MESSAGE);
        status.containerStatuses = containers.map((c) => ({
          ...waitingStatus(c, 'ContainerCreating'),
          state: {
            terminated: {
              exitCode: SIGKILL_EXIT,
              reason: 'ContainerStatusUnknown',
              message: 'The container could not be located when the pod was terminated',
            },
          },
        }));
        setReadiness(status);
      });
      this.event(pod, 'Warning', 'Evicted', EVICTION_MESSAGE, 'kubelet', undefined, nodeName);
      this.logs.closePod(uid);
      return;
    }

    if (behaviour.kind === 'image_pull_error') {
      await sleep(t.stepMs, undefined, { signal });
      const pullError = (image: string): string =>
        `failed to pull and unpack image "${normalizeImage(image)}": failed to resolve reference "${normalizeImage(image)}": ${normalizeImage(image)}: not found`;
      pod = update((_, status) => {
        status.containerStatuses = containers.map((c) => waitingStatus(c, 'ErrImagePull', `rpc error: code = NotFound desc = ${pullError(c.image ?? '')}`));
      });
      for (const c of containers) {
        this.event(pod, 'Warning', 'Failed', `Failed to pull image "${c.image}": rpc error: code = NotFound desc = ${pullError(c.image ?? '')}`, 'kubelet', c.name, nodeName);
        this.event(pod, 'Warning', 'Failed', 'Error: ErrImagePull', 'kubelet', c.name, nodeName);
      }
      await sleep(t.stepMs, undefined, { signal });
      pod = update((_, status) => {
        status.containerStatuses = containers.map((c) =>
          waitingStatus(c, 'ImagePullBackOff', `Back-off pulling image "${c.image}": ErrImagePull: ${pullError(c.image ?? '')}`),
        );
      });
      for (const c of containers) {
        this.event(pod, 'Normal', 'BackOff', `Back-off pulling image "${c.image}"`, 'kubelet', c.name, nodeName);
        this.event(pod, 'Warning', 'Failed', 'Error: ImagePullBackOff', 'kubelet', c.name, nodeName);
      }
      return;
    }

    await sleep(t.stepMs, undefined, { signal });
    for (const c of containers) {
      this.event(pod, 'Normal', 'Pulled', `Successfully pulled image "${c.image}" in 1.204s (1.204s including waiting). Image size: 52428800 bytes.`, 'kubelet', c.name, nodeName);
      this.event(pod, 'Normal', 'Created', `Created container ${c.name}`, 'kubelet', c.name, nodeName);
    }
    const startedAt = rfc3339();
    pod = update((_, status) => {
      status.phase = 'Running';
      status.containerStatuses = containers.map((c) => runningStatus(c, newContainerId(), startedAt));
      setReadiness(status);
    });
    for (const c of containers) this.event(pod, 'Normal', 'Started', `Started container ${c.name}`, 'kubelet', c.name, nodeName);
    const started = performance.now();
    const main = containers[0];
    const mainLog = this.logs.of(uid, main.name);
    const print = async (lines: string[] | undefined, intervalMs: number | undefined): Promise<void> => {
      for (const line of lines ?? []) {
        if (signal.aborted) throw new PodGone();
        mainLog.write(line);
        await sleep(intervalMs ?? t.lineIntervalMs, undefined, { signal });
      }
    };
    const waitUntil = async (ms: number): Promise<void> => {
      const left = ms - (performance.now() - started);
      if (left > 0) await sleep(left, undefined, { signal });
    };
    const finish = (terminations: Record<string, { exitCode: number; reason: string; message?: string }>, extra?: (status: Status) => void): void => {
      update((_, status) => {
        status.containerStatuses = (status.containerStatuses ?? []).map((s) => {
          const end = terminations[s.name];
          return end && s.state?.running ? terminatedStatus(s, end) : s;
        });
        status.phase = phaseFromContainers(status.containerStatuses);
        extra?.(status);
        setReadiness(status);
      });
      for (const c of containers) if (terminations[c.name]) this.logs.of(uid, c.name).close();
    };
    const all = (end: { exitCode: number; reason: string; message?: string }): Record<string, typeof end> =>
      Object.fromEntries(containers.map((c) => [c.name, end]));

    switch (behaviour.kind) {
      case 'succeed': {
        await print(behaviour.logs, behaviour.lineIntervalMs);
        await waitUntil(behaviour.runMs ?? t.runMs);
        const message = behaviour.resultFile === undefined ? undefined : truncateMessage(JSON.stringify(behaviour.resultFile));
        finish({ ...all({ exitCode: 0, reason: 'Completed' }), [main.name]: { exitCode: 0, reason: 'Completed', message } });
        return;
      }
      case 'fail': {
        await print(behaviour.logs, behaviour.lineIntervalMs);
        await waitUntil(behaviour.runMs ?? t.runMs);
        const fallback = main.terminationMessagePolicy === 'FallbackToLogsOnError' ? this.logTail(uid, main.name) : undefined;
        finish({ ...all({ exitCode: 0, reason: 'Completed' }), [main.name]: { exitCode: behaviour.exitCode, reason: 'Error', message: fallback } });
        return;
      }
      case 'oom': {
        await print(behaviour.logs, behaviour.lineIntervalMs);
        await waitUntil(behaviour.afterMs ?? t.afterMs);
        finish({ ...all({ exitCode: SIGTERM_EXIT, reason: 'Error' }), [main.name]: { exitCode: SIGKILL_EXIT, reason: 'OOMKilled' } });
        return;
      }
      case 'deadline': {
        await waitUntil(behaviour.afterMs ?? t.afterMs);
        this.event(pod, 'Normal', 'DeadlineExceeded', DEADLINE_MESSAGE, 'kubelet', undefined, nodeName);
        for (const c of containers) this.event(pod, 'Normal', 'Killing', `Stopping container ${c.name}`, 'kubelet', c.name, nodeName);
        finish(all({ exitCode: SIGKILL_EXIT, reason: 'Error' }), (status) => {
          status.phase = 'Failed';
          status.reason = 'DeadlineExceeded';
          status.message = DEADLINE_MESSAGE;
        });
        return;
      }
      case 'preempt_after_start': {
        await print(behaviour.logs, behaviour.lineIntervalMs);
        await waitUntil(behaviour.afterMs ?? t.afterMs);
        if (behaviour.via === 'scheduler') {
          const message = 'default-scheduler: preempting to accommodate a higher priority pod';
          pod = update((_, status) => setCondition(status, 'DisruptionTarget', 'True', 'PreemptionByScheduler', message));
          this.event(pod, 'Normal', 'Preempted', `Preempted by pod ${randomUUID()} on node ${nodeName}`, 'default-scheduler');
          // The scheduler deletes the victim; from here it is an ordinary graceful deletion.
          queueMicrotask(() => this.deletePod(namespace, name));
          return;
        }
        for (const c of containers) this.event(pod, 'Normal', 'Killing', `Stopping container ${c.name}`, 'kubelet', c.name, nodeName);
        finish(all({ exitCode: SIGTERM_EXIT, reason: 'Error' }), (status) => {
          status.phase = 'Failed';
          status.reason = 'Terminated';
          status.message = SHUTDOWN_MESSAGE;
          setCondition(status, 'DisruptionTarget', 'True', 'TerminationByKubelet', SHUTDOWN_MESSAGE);
        });
        return;
      }
      case 'hang':
        await sleep(2 ** 31 - 1, undefined, { signal });
        return;
      case 'sidecar': {
        await print(behaviour.logs, behaviour.lineIntervalMs);
        await waitUntil(behaviour.runMs ?? t.runMs);
        finish({ [main.name]: { exitCode: behaviour.mainExitCode, reason: behaviour.mainExitCode === 0 ? 'Completed' : 'Error' } });
        return;
      }
    }
  }

  /** Last 80 lines, at most 2048 bytes: what FallbackToLogsOnError puts in the termination message. */
  private logTail(uid: string, container: string): string | undefined {
    const lines = this.logs.of(uid, container).lines.slice(-80).map((l) => l.text);
    if (lines.length === 0) return undefined;
    const text = lines.join('\n');
    const bytes = Buffer.from(text, 'utf8');
    return bytes.length <= 2048 ? text : bytes.subarray(bytes.length - 2048).toString('utf8');
  }

  private terminateAll(uid: string, namespace: string, name: string, end: { exitCode: number; reason: string }): void {
    const current = this.pods.get(namespace, name);
    if (current?.metadata?.uid !== uid || isTerminal(current)) return;
    this.pods.update(namespace, name, (p) => {
      const status = (p.status ??= {});
      status.containerStatuses = (status.containerStatuses ?? []).map((s) => {
        if (s.state?.running) return terminatedStatus(s, end);
        if (s.state?.waiting) {
          return { ...s, state: { terminated: { exitCode: SIGKILL_EXIT, reason: 'ContainerStatusUnknown', message: 'The container could not be located when the pod was deleted.  The container used to be Running' } } };
        }
        return s;
      });
      status.phase = 'Failed';
      setReadiness(status);
    });
  }

  private removeIfSame(uid: string, namespace: string, name: string): void {
    if (this.pods.get(namespace, name)?.metadata?.uid === uid) {
      this.pods.remove(namespace, name, (p) => {
        if (!p.metadata?.deletionTimestamp) markDeletedNow(p);
      });
    }
  }

  private stopRun(uid: string): void {
    this.runs.get(uid)?.abort();
    this.runs.delete(uid);
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private event(
    pod: PodJson,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    component: 'kubelet' | 'default-scheduler',
    container?: string,
    host?: string,
  ): void {
    const { namespace, name, uid, resourceVersion } = pod.metadata!;
    const now = rfc3339();
    this.events.create({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${name}.${nowNs().toString(16).padStart(16, '0').slice(-16)}`,
        namespace,
        uid: randomUUID(),
        creationTimestamp: now,
      },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Pod',
        namespace,
        name,
        uid,
        resourceVersion,
        ...(container ? { fieldPath: `spec.containers{${container}}` } : {}),
      },
      reason,
      message,
      type,
      source: { component, ...(host ? { host } : {}) },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      ...(component === 'default-scheduler' ? { eventTime: rfc3339Micro(), action: reason === 'Preempted' ? 'Preempting' : 'Scheduling' } : {}),
      reportingComponent: component,
      reportingInstance: component === 'kubelet' ? (host ?? '') : 'default-scheduler-fake-kube',
    });
  }
}

/** A pod deleted without grace still carries deletionTimestamp in its DELETED event, grace 0. */
function markDeletedNow(pod: PodJson): void {
  pod.metadata!.deletionTimestamp = rfc3339();
  pod.metadata!.deletionGracePeriodSeconds = 0;
}

function compileMatch(match: PodMatch): (pod: PodJson) => boolean {
  if (typeof match === 'function') return (pod) => match(toClientPod(pod));
  return (pod) => {
    const name = pod.metadata?.name ?? '';
    if (match.name !== undefined) {
      if (typeof match.name === 'string' && match.name !== name) return false;
      if (match.name instanceof RegExp) {
        match.name.lastIndex = 0; // a /g RegExp would otherwise alternate between hits and misses
        if (!match.name.test(name)) return false;
      }
    }
    const labels = pod.metadata?.labels ?? {};
    return Object.entries(match.labels ?? {}).every(([k, v]) => labels[k] === v);
  };
}

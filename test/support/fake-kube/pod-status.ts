import { createHash, randomBytes } from 'node:crypto';
import { rfc3339 } from './clock.ts';
import type { PodJson } from './wire.ts';

type PodStatus = NonNullable<PodJson['status']>;
type ContainerStatus = NonNullable<PodStatus['containerStatuses']>[number];
type ContainerState = NonNullable<ContainerStatus['state']>;
type Container = NonNullable<PodJson['spec']>['containers'][number];

/** What the kubelet keeps of a container's termination message (`terminationMessagePath`). */
export const TERMINATION_MESSAGE_LIMIT = 4096;

/**
 * The image reference as the container runtime reports it: `python:3.12` becomes
 * `docker.io/library/python:3.12`, an untagged image gets `:latest`.
 */
export function normalizeImage(image: string): string {
  const [withoutDigest] = image.split('@');
  const firstPart = withoutDigest.split('/')[0];
  const hasRegistry = withoutDigest.includes('/') && (firstPart.includes('.') || firstPart.includes(':') || firstPart === 'localhost');
  let ref = hasRegistry ? withoutDigest : withoutDigest.includes('/') ? `docker.io/${withoutDigest}` : `docker.io/library/${withoutDigest}`;
  const lastSegment = ref.split('/').pop() ?? '';
  if (!lastSegment.includes(':')) ref += ':latest';
  return ref;
}

/**
 * The `imageID` the runtime reports: repository `@sha256:` digest. A digest given in the image
 * reference is kept; otherwise it is derived from the reference so one image always has one digest.
 */
export function imageId(image: string): string {
  const normalized = normalizeImage(image);
  const repository = normalized.slice(0, normalized.lastIndexOf(':'));
  const pinned = /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1];
  return `${repository}@${pinned ?? `sha256:${createHash('sha256').update(normalized).digest('hex')}`}`;
}

export function newContainerId(): string {
  return `containerd://${randomBytes(32).toString('hex')}`;
}

export function newPodIp(): string {
  return `10.244.${1 + Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
}

/** Sets a pod condition, moving lastTransitionTime only when the status really changes. */
export function setCondition(status: PodStatus, type: string, value: 'True' | 'False', reason?: string, message?: string): void {
  const conditions = (status.conditions ??= []);
  const existing = conditions.find((c) => c.type === type);
  const condition = {
    type,
    status: value,
    lastTransitionTime: existing && existing.status === value ? existing.lastTransitionTime : rfc3339(),
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  };
  if (existing) conditions[conditions.indexOf(existing)] = condition;
  else conditions.push(condition);
}

export function waitingStatus(container: Container, reason: string, message?: string): ContainerStatus {
  return {
    name: container.name,
    image: container.image ?? '',
    imageID: '',
    ready: false,
    restartCount: 0,
    started: false,
    state: { waiting: { reason, ...(message ? { message } : {}) } },
    lastState: {},
  };
}

export function runningStatus(container: Container, containerID: string, startedAt: string): ContainerStatus {
  return {
    name: container.name,
    image: normalizeImage(container.image ?? ''),
    imageID: imageId(container.image ?? ''),
    containerID,
    ready: true,
    restartCount: 0,
    started: true,
    state: { running: { startedAt } },
    lastState: {},
  };
}

/** The terminated state of a container that ran: keeps its id and start time. */
export function terminatedStatus(
  previous: ContainerStatus,
  terminated: { exitCode: number; reason: string; message?: string },
): ContainerStatus {
  const state: ContainerState = {
    terminated: {
      exitCode: terminated.exitCode,
      reason: terminated.reason,
      ...(terminated.message !== undefined ? { message: terminated.message } : {}),
      ...(previous.state?.running?.startedAt ? { startedAt: previous.state.running.startedAt } : {}),
      finishedAt: rfc3339(),
      ...(previous.containerID ? { containerID: previous.containerID } : {}),
    },
  };
  return { ...previous, ready: false, started: false, state };
}

/** The kubelet's cap on a termination message, in bytes. */
export function truncateMessage(message: string, limit = TERMINATION_MESSAGE_LIMIT): string {
  const bytes = Buffer.from(message, 'utf8');
  return bytes.length <= limit ? message : bytes.subarray(0, limit).toString('utf8');
}

/** Pod phase from container states, as the kubelet computes it for restartPolicy Never. */
export function phaseFromContainers(statuses: ContainerStatus[]): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
  if (statuses.some((s) => s.state?.running)) return 'Running';
  if (statuses.length > 0 && statuses.every((s) => s.state?.terminated)) {
    return statuses.every((s) => s.state?.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
  }
  return 'Pending';
}

/** The Ready/ContainersReady pair, with the reasons the kubelet gives. */
export function setReadiness(status: PodStatus): void {
  const statuses = status.containerStatuses ?? [];
  const unready = statuses.filter((s) => !s.ready).map((s) => s.name);
  if (unready.length === 0) {
    setCondition(status, 'Ready', 'True');
    setCondition(status, 'ContainersReady', 'True');
  } else if (status.phase === 'Succeeded' || status.phase === 'Failed') {
    const reason = status.phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed';
    setCondition(status, 'Ready', 'False', reason);
    setCondition(status, 'ContainersReady', 'False', reason);
  } else {
    const message = `containers with unready status: [${unready.join(' ')}]`;
    setCondition(status, 'Ready', 'False', 'ContainersNotReady', message);
    setCondition(status, 'ContainersReady', 'False', 'ContainersNotReady', message);
  }
}

/** QoS class the API server assigns on create. */
export function qosClass(pod: PodJson): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const containers = pod.spec?.containers ?? [];
  const asked = containers.flatMap((c) => [...Object.keys(c.resources?.requests ?? {}), ...Object.keys(c.resources?.limits ?? {})]);
  if (asked.filter((r) => r === 'cpu' || r === 'memory').length === 0) return 'BestEffort';
  const guaranteed = containers.every((c) =>
    ['cpu', 'memory'].every((r) => {
      const limit = c.resources?.limits?.[r];
      const request = c.resources?.requests?.[r] ?? limit;
      return limit !== undefined && String(request) === String(limit);
    }),
  );
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

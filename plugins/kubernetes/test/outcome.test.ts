import { describe, expect, it } from 'vitest';
import type { CoreV1Event, V1ContainerStatus, V1Pod, V1PodStatus } from '@kubernetes/client-node';
import { classifyPod, classifyVanished, formatEvents, podFacts, toOutcome } from '../outcome.ts';
import { validatePodSchema } from './helpers.ts';

const NOW = Date.parse('2026-12-03T18:10:00Z');
const opts = { scheduleTimeoutSeconds: 300, skipOnExitCodes: [42], now: NOW };

function pod(status: V1PodStatus, extra: { created?: string; deadline?: number } = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p-t1', namespace: 'ml', creationTimestamp: new Date(extra.created ?? '2026-12-03T18:09:00Z') },
    spec: {
      nodeName: status.phase === 'Pending' ? undefined : 'gpu-spot-node-1',
      activeDeadlineSeconds: extra.deadline,
      containers: [
        { name: 'base', image: 'python:3.12', resources: { limits: { memory: '1Gi', 'nvidia.com/gpu': '1' } } },
        { name: 'proxy', image: 'envoy' },
      ],
      restartPolicy: 'Never',
    },
    status,
  };
}

const started = new Date('2026-12-03T18:09:10Z');
const finished = new Date('2026-12-03T18:09:40Z');
function main(state: V1ContainerStatus['state'], more: Partial<V1ContainerStatus> = {}): V1ContainerStatus {
  return { name: 'base', image: 'python:3.12', imageID: 'docker.io/library/python@sha256:' + 'a'.repeat(64), ready: false, restartCount: 0, state, ...more };
}
const sidecarRunning: V1ContainerStatus = { name: 'proxy', image: 'envoy', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: started } } };

describe('classifyPod on recorded pod objects', () => {
  it('success: main container exited 0', () => {
    const p = pod({ phase: 'Succeeded', containerStatuses: [main({ terminated: { exitCode: 0, reason: 'Completed', startedAt: started, finishedAt: finished } })] });
    expect(classifyPod(p, opts)).toMatchObject({ kind: 'success', exitCode: 0 });
  });

  it('a finished main container ends the task while a sidecar still runs', () => {
    const p = pod({ phase: 'Running', containerStatuses: [main({ terminated: { exitCode: 0, reason: 'Completed', startedAt: started } }), sidecarRunning] });
    expect(classifyPod(p, opts)).toMatchObject({ kind: 'success' });
    const f = pod({ phase: 'Running', containerStatuses: [main({ terminated: { exitCode: 3, reason: 'Error', startedAt: started } }), sidecarRunning] });
    expect(classifyPod(f, opts)).toMatchObject({ kind: 'failed', exitCode: 3, fatal: false });
  });

  it('failure with the exit code and the log tail the kubelet kept', () => {
    const p = pod({ phase: 'Failed', containerStatuses: [main({ terminated: { exitCode: 3, reason: 'Error', startedAt: started, message: 'Traceback\nValueError: bad lr\n' } })] });
    const v = classifyPod(p, opts)!;
    expect(v).toMatchObject({ kind: 'failed', reason: 'Error', exitCode: 3, fatal: false, neverStarted: false });
    expect(v.message).toBe('main container exited with code 3; last output: Traceback\nValueError: bad lr');
  });

  it('skip_on_exit_code turns the failure into skipped', () => {
    const p = pod({ phase: 'Failed', containerStatuses: [main({ terminated: { exitCode: 42, reason: 'Error', startedAt: started } })] });
    expect(toOutcome(classifyPod(p, opts)!, { podName: 'p', events: [], facts: {} })).toMatchObject({ state: 'skipped', exit_code: 42 });
  });

  it('OOMKilled is a failure that says to raise memory', () => {
    const p = pod({ phase: 'Failed', containerStatuses: [main({ terminated: { exitCode: 137, reason: 'OOMKilled', startedAt: started } })] });
    const v = classifyPod(p, opts)!;
    expect(v).toMatchObject({ kind: 'failed', reason: 'OOMKilled', exitCode: 137, fatal: false });
    expect(v.message).toContain('memory limit 1Gi');
  });

  it('DeadlineExceeded', () => {
    const p = pod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline', containerStatuses: [main({ terminated: { exitCode: 137, reason: 'Error', startedAt: started } })] }, { deadline: 60 });
    expect(classifyPod(p, opts)).toMatchObject({ kind: 'failed', reason: 'DeadlineExceeded', fatal: false });
    expect(classifyPod(p, opts)!.message).toContain('active_deadline_seconds (60s)');
  });

  it('image pull errors fail fast and fatally', () => {
    for (const reason of ['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName']) {
      const p = pod({ phase: 'Pending', containerStatuses: [main({ waiting: { reason, message: 'Back-off pulling image "python:nope"' } })] });
      const v = classifyPod(p, opts)!;
      expect(v).toMatchObject({ kind: 'failed', reason, fatal: true, neverStarted: true });
      expect(v.message).toContain("check the image name 'python:3.12'");
    }
  });

  it('unschedulable: waits until schedule_timeout, then fails fatally with the scheduler message', () => {
    const conditions = [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.' }];
    expect(classifyPod(pod({ phase: 'Pending', conditions }, { created: '2026-12-03T18:09:00Z' }), opts)).toBeNull();
    const v = classifyPod(pod({ phase: 'Pending', conditions }, { created: '2026-12-03T18:04:00Z' }), opts)!;
    expect(v).toMatchObject({ kind: 'failed', reason: 'Unschedulable', fatal: true });
    expect(v.message).toContain('0/3 nodes are available: 3 Insufficient nvidia.com/gpu.');
  });

  it('evicted before start: retried without spending a try', () => {
    const p = pod({
      phase: 'Failed',
      reason: 'Evicted',
      message: 'The node was low on resource: memory.',
      conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet' }],
      containerStatuses: [main({ terminated: { exitCode: 137, reason: 'ContainerStatusUnknown' } })],
    });
    const out = toOutcome(classifyPod(p, opts)!, { podName: 'p', events: [], facts: {} });
    expect(out).toMatchObject({ state: 'failed', free_retry: true });
    expect(out.fatal).toBeUndefined();
  });

  it('preempted after start (spot reclaim): retried, spending a try', () => {
    const p = pod({
      phase: 'Failed',
      reason: 'Terminated',
      message: 'Pod was terminated in response to imminent node shutdown.',
      conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet' }],
      containerStatuses: [main({ terminated: { exitCode: 143, reason: 'Error', startedAt: started } })],
    });
    const v = classifyPod(p, opts)!;
    expect(v).toMatchObject({ kind: 'retry', neverStarted: false, exitCode: 143 });
    expect(toOutcome(v, { podName: 'p', events: [], facts: {} }).free_retry).toBeUndefined();
  });

  it('node deleted (pod GC) while pending: free retry; while running: paid retry', () => {
    const conditions = [{ type: 'DisruptionTarget', status: 'True', reason: 'DeletionByPodGC', message: 'PodGC: node no longer exists' }];
    const pending = pod({ phase: 'Failed', conditions, containerStatuses: [main({ waiting: { reason: 'ContainerCreating' } })] });
    expect(classifyPod(pending, opts)).toMatchObject({ kind: 'retry', neverStarted: true, reason: 'DeletionByPodGC' });
    const running = pod({ phase: 'Failed', conditions, containerStatuses: [main({ running: { startedAt: started } }, { started: true })] });
    expect(classifyPod(running, opts)).toMatchObject({ kind: 'retry', neverStarted: false });
  });

  it('a pod deleted by someone else is retried; free when it never started', () => {
    expect(classifyVanished(pod({ phase: 'Pending' }))).toMatchObject({ kind: 'retry', neverStarted: true, reason: 'PodDeleted' });
    expect(classifyVanished(pod({ phase: 'Running', containerStatuses: [main({ running: { startedAt: started } })] }))).toMatchObject({ kind: 'retry', neverStarted: false });
  });

  it('running and pending pods are not finished', () => {
    expect(classifyPod(pod({ phase: 'Running', containerStatuses: [main({ running: { startedAt: started } })] }), opts)).toBeNull();
    expect(classifyPod(pod({ phase: 'Pending', containerStatuses: [main({ waiting: { reason: 'ContainerCreating' } })] }), opts)).toBeNull();
  });

  it('the message carries the pod events, oldest first', () => {
    const events: CoreV1Event[] = [
      { metadata: {}, involvedObject: {}, type: 'Warning', reason: 'BackOff', message: 'Back-off pulling image', count: 3, lastTimestamp: new Date('2026-12-03T18:09:30Z') },
      { metadata: {}, involvedObject: {}, type: 'Normal', reason: 'Scheduled', message: 'assigned ml/p to node-1', lastTimestamp: new Date('2026-12-03T18:09:01Z') },
    ];
    const p = pod({ phase: 'Pending', containerStatuses: [main({ waiting: { reason: 'ImagePullBackOff' } })] });
    const out = toOutcome(classifyPod(p, opts)!, { podName: 'p-t1', events, facts: {} });
    expect(out.error).toMatch(/^pod p-t1: main container cannot start: ImagePullBackOff; .*\npod events:\nNormal Scheduled: assigned ml\/p to node-1\nWarning BackOff: Back-off pulling image \(x3\)$/s);
    expect(out.fatal).toBe(true);
    expect(formatEvents([])).toBe('');
  });

  it('result_file content becomes the return value; non-JSON fails fatally', () => {
    const ok = pod({ phase: 'Succeeded', containerStatuses: [main({ terminated: { exitCode: 0, reason: 'Completed', startedAt: started, message: '{"loss":0.12}' } })] });
    expect(toOutcome(classifyPod(ok, opts)!, { podName: 'p', events: [], facts: {}, resultFile: '/tmp/r.json' }).return_value).toEqual({ loss: 0.12 });
    const bad = pod({ phase: 'Succeeded', containerStatuses: [main({ terminated: { exitCode: 0, reason: 'Completed', startedAt: started, message: 'loss=0.12' } })] });
    expect(toOutcome(classifyPod(bad, opts)!, { podName: 'p', events: [], facts: {}, resultFile: '/tmp/r.json' })).toMatchObject({ state: 'failed', fatal: true });
  });

  it('facts carry the image digest, node and resources', () => {
    const p = pod({ phase: 'Succeeded', qosClass: 'Burstable', containerStatuses: [main({ terminated: { exitCode: 0, reason: 'Completed', startedAt: started, finishedAt: finished } })] });
    expect(podFacts(p, { gpu_model: 'NVIDIA-A100' })).toEqual({
      pod_name: 'p-t1',
      namespace: 'ml',
      image: 'python:3.12',
      image_digest: 'docker.io/library/python@sha256:' + 'a'.repeat(64),
      node_name: 'gpu-spot-node-1',
      resources: { limits: { memory: '1Gi', 'nvidia.com/gpu': '1' } },
      node_selector: null,
      qos_class: 'Burstable',
      started_at: '2026-12-03T18:09:10.000Z',
      finished_at: '2026-12-03T18:09:40.000Z',
      gpu_model: 'NVIDIA-A100',
    });
  });

  it('the schema check itself rejects a broken pod (so the builder tests mean something)', () => {
    expect(() => validatePodSchema({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ name: 'a', image: 'b', resources: { limits: { 'nvidia.com/gpu': 'one gpu' } } }] } })).toThrow(/quantity/);
  });
});

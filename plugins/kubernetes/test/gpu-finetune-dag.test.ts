/**
 * dags/gpu_finetune.ts: its steps really run in local mode, and its GPU step is a valid
 * spot pod with exactly the profile's constraints that the fake cluster schedules on its GPU node.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import gpuFinetune from '../../../dags/gpu_finetune.ts';
import type { DagSpec, TaskOutcome } from '../../../src/dag/types.ts';
import { startFakeKube, type FakeKube } from '../../../test/support/fake-kube/server.ts';
import { createPodOperator } from '../index.ts';
import { BUILTIN_PROVIDERS, loadCapacityProfiles, NVIDIA_GPU_TOLERATION } from '../capacity-profiles.ts';
import { buildPod } from '../pod-builder.ts';
import { parsePodArgs } from '../pod-args.ts';
import { podRequest, silent, validatePodSchema } from './helpers.ts';

const file = resolve('dags/gpu_finetune.ts');
const spec: DagSpec = gpuFinetune.toSpec(file, 'h'.repeat(64));
const task = (id: string) => spec.tasks.find((t) => t.task_id === id)!;

function requestFor(taskId: string, runId: string) {
  const t = podRequest({ dagId: spec.dag_id, taskId, runId, args: task(taskId).operator_args, params: spec.params, file });
  t.req.dag = { ...spec };
  t.req.task = task(taskId);
  return t;
}

describe('dags/gpu_finetune.ts', () => {
  let kube: FakeKube | undefined;
  afterAll(async () => kube?.stop());

  it('is three pod tasks in a chain: prepare -> finetune -> evaluate', () => {
    expect(spec.tasks.map((t) => [t.task_id, t.operator, t.upstream_task_ids])).toEqual([
      ['prepare', 'pod', []],
      ['finetune', 'pod', ['prepare']],
      ['evaluate', 'pod', ['finetune']],
    ]);
    expect(task('finetune').retries).toBe(3);
  });

  it('runs end to end in local mode: fine-tuning raises validation accuracy, evaluate passes the bar', async () => {
    const artifacts = mkdtempSync(join(tmpdir(), 'pf-gpu-ft-'));
    const saved = process.env.PODFLOW_ARTIFACTS;
    process.env.PODFLOW_ARTIFACTS = artifacts;
    try {
      const op = createPodOperator({ mode: 'local', logger: silent, metricsRegistry: new Registry(), dagsFolder: resolve('dags') });
      const outcomes: Record<string, TaskOutcome> = {};
      const logs: Record<string, string[]> = {};
      for (const id of ['prepare', 'finetune', 'evaluate']) {
        const t = requestFor(id, 'manual__2026-12-03T18:00:00+00:00');
        outcomes[id] = await op.execute(t.req);
        logs[id] = t.log.lines;
        expect(outcomes[id]!.state, `${id}: ${outcomes[id]!.error}`).toBe('success');
      }
      expect(outcomes.prepare!.return_value).toMatchObject({ n_train: 480, n_val: 120, data_dir: join(artifacts, 'gpu_finetune', 'runs', 'manual__2026-12-03T18_00_00_00_00') });
      const tuned = outcomes.finetune!.return_value as { base_val_accuracy: number; val_accuracy: number; epochs: number };
      expect(tuned.epochs).toBe(1);
      expect(tuned.val_accuracy).toBeGreaterThan(tuned.base_val_accuracy);
      expect(logs.finetune!.some((l) => l.startsWith('epoch 1/1: train loss'))).toBe(true);
      expect((outcomes.evaluate!.return_value as { accuracy: number }).accuracy).toBe(tuned.val_accuracy);
    } finally {
      if (saved === undefined) delete process.env.PODFLOW_ARTIFACTS;
      else process.env.PODFLOW_ARTIFACTS = saved;
    }
  });

  it('its finetune pod asks for exactly one GPU on spot with the PVC, and passes schema validation', () => {
    const profiles = loadCapacityProfiles('gke');
    const args = parsePodArgs(task('finetune').operator_args, { dagId: spec.dag_id, taskId: 'finetune' });
    const pod = buildPod({ args, identity: { dagId: spec.dag_id, taskId: 'finetune', runId: 'r1', mapIndex: -1, tryNumber: 1 }, namespace: 'ml', profiles, template: null });
    validatePodSchema(pod);
    const c = pod.spec!.containers[0]!;
    expect(c.resources).toEqual({ requests: { cpu: '8', memory: '48Gi', 'ephemeral-storage': '50Gi' }, limits: { memory: '48Gi', 'ephemeral-storage': '50Gi', 'nvidia.com/gpu': '1' } });
    expect(pod.spec!.nodeSelector).toEqual(BUILTIN_PROVIDERS.gke!.spot.node_selector);
    expect(pod.spec!.tolerations).toEqual([...BUILTIN_PROVIDERS.gke!.spot.tolerations, NVIDIA_GPU_TOLERATION]);
    expect(pod.spec!.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'finetune-data' } });
    expect(c.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
  });

  it('on a cluster (fake, Karpenter profile) the finetune pod lands on the spot GPU node and succeeds', async () => {
    kube = await startFakeKube();
    kube.script({ labels: { 'podflow.io/task-id': 'finetune' } }, { kind: 'succeed', logs: ['epoch 1/1: train loss 0.24'], resultFile: { val_accuracy: 0.88 } });
    const op = createPodOperator({ mode: 'cluster', kubeConfig: kube.kubeConfig(), namespace: 'default', profiles: loadCapacityProfiles('karpenter'), logger: silent, metricsRegistry: new Registry() });
    try {
      const t = requestFor('finetune', 'manual__1');
      const out = await op.execute(t.req);
      expect(out).toMatchObject({ state: 'success', return_value: { val_accuracy: 0.88 }, facts: { node_name: 'gpu-spot-node-1' } });
      expect(t.log.lines).toEqual(['epoch 1/1: train loss 0.24']);
      expect(kube.pods('default')).toHaveLength(0);
    } finally {
      op.close();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { buildPod, DEFAULT_CONTAINER_SECURITY_CONTEXT, mergeAffinity, TRY_ANNOTATION } from '../pod-builder.ts';
import { BUILTIN_PROVIDERS, loadCapacityProfiles, NVIDIA_GPU_TOLERATION } from '../capacity-profiles.ts';
import { parsePodArgs, PodArgsError } from '../pod-args.ts';
import { resolvePodTemplate } from '../pod-template.ts';
import { renderArgv, TemplateError, type TemplateScope } from '../templating.ts';
import { podTask } from '../authoring.ts';
import { validatePodSchema } from './helpers.ts';

const identity = { dagId: 'gpu_finetune', taskId: 'finetune', runId: 'manual__2026-12-03T18:00:00+00:00', mapIndex: -1, tryNumber: 1 };
const where = { dagId: 'gpu_finetune', taskId: 'finetune', file: 'dags/gpu_finetune.ts' };

function build(args: Record<string, unknown>, provider: string | null = 'gke', template: V1Pod | null = null): V1Pod {
  return buildPod({
    args: parsePodArgs(args, where),
    identity,
    namespace: 'ml',
    profiles: provider ? loadCapacityProfiles(provider) : null,
    template,
  });
}

describe('GPU task on spot capacity', () => {
  for (const provider of Object.keys(BUILTIN_PROVIDERS)) {
    it(`gets exactly the ${provider} spot profile's selectors and tolerations, the GPU limit and passes schema validation`, () => {
      const pod = build({ image: 'ghcr.io/acme/tune:1', command: ['python', 'tune.py'], resources: { cpu: 4, memory: '16Gi', gpus: 2 }, capacity: 'spot' }, provider);
      const profile = BUILTIN_PROVIDERS[provider]!.spot;
      validatePodSchema(pod);
      const c = pod.spec!.containers[0]!;
      expect(c.resources).toEqual({
        requests: { cpu: '4', memory: '16Gi' },
        limits: { memory: '16Gi', 'nvidia.com/gpu': '2' },
      });
      expect(pod.spec!.nodeSelector).toEqual(profile.node_selector);
      expect(pod.spec!.tolerations).toEqual([...profile.tolerations, NVIDIA_GPU_TOLERATION]);
      expect(pod.spec!.affinity).toBeUndefined();
    });
  }

  it('on GKE: nodeSelector gke-spot=true, the gke-spot and nvidia.com/gpu tolerations', () => {
    const pod = build({ image: 'img', resources: { gpus: 1 }, capacity: 'spot' }, 'gke');
    expect(pod.spec!.nodeSelector).toEqual({ 'cloud.google.com/gke-spot': 'true' });
    expect(pod.spec!.tolerations).toEqual([
      { key: 'cloud.google.com/gke-spot', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    expect(pod.spec!.containers[0]!.resources!.limits).toEqual({ 'nvidia.com/gpu': '1' });
  });

  it('on-demand on AKS requires the spot label to be absent', () => {
    const pod = build({ image: 'img', capacity: 'on-demand' }, 'aks');
    validatePodSchema(pod);
    expect(pod.spec!.affinity).toEqual({
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.azure.com/scalesetpriority', operator: 'DoesNotExist' }] }] } },
    });
    expect(pod.spec!.tolerations).toBeUndefined();
  });

  it('EKS capacity type selectors', () => {
    expect(build({ image: 'i', capacity: 'spot' }, 'eks').spec!.nodeSelector).toEqual({ 'eks.amazonaws.com/capacityType': 'SPOT' });
    expect(build({ image: 'i', capacity: 'on-demand' }, 'eks').spec!.nodeSelector).toEqual({ 'eks.amazonaws.com/capacityType': 'ON_DEMAND' });
  });

  it('capacity any tolerates the spot taint without requiring spot', () => {
    const pod = build({ image: 'i', capacity: 'any' }, 'aks');
    expect(pod.spec!.nodeSelector).toBeUndefined();
    expect(pod.spec!.tolerations).toEqual(BUILTIN_PROVIDERS.aks!.spot.tolerations);
  });

  it('spot without a configured profile is refused with the fix', () => {
    expect(() => build({ image: 'i', capacity: 'spot' }, null)).toThrow(/PODFLOW_KUBE_CAPACITY_PROFILES/);
  });

  it('a custom profile from JSON is applied as written', () => {
    const profiles = loadCapacityProfiles(
      JSON.stringify({ provider: 'custom', spot: { node_selector: { pool: 'cheap' }, tolerations: [{ key: 'cheap', operator: 'Exists', effect: 'NoSchedule' }] }, 'on-demand': { node_selector: { pool: 'stable' } } }),
    )!;
    const pod = buildPod({ args: parsePodArgs({ image: 'i', capacity: 'spot', resources: { gpus: 1 } }, where), identity, namespace: 'ml', profiles, template: null });
    expect(pod.spec!.nodeSelector).toEqual({ pool: 'cheap' });
    expect(pod.spec!.tolerations).toEqual([{ key: 'cheap', operator: 'Exists', effect: 'NoSchedule' }, NVIDIA_GPU_TOLERATION]);
  });

  it('a custom profile from a file path, and bad settings are named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pf-prof-'));
    const file = join(dir, 'profiles.json');
    writeFileSync(file, JSON.stringify({ provider: 'karpenter', gpu_tolerations: [] }));
    const p = loadCapacityProfiles(file)!;
    expect(p.spot.node_selector).toEqual({ 'karpenter.sh/capacity-type': 'spot' });
    expect(p.gpu_tolerations).toEqual([]);
    expect(() => loadCapacityProfiles('gcp')).toThrow(/neither a provider/);
    expect(() => loadCapacityProfiles('{"provider":"nope"}')).toThrow(/unknown provider 'nope'/);
    expect(() => loadCapacityProfiles('{"provider":"custom","spot":{}}')).toThrow(/both "spot" and "on-demand"/);
  });
});

describe('buildPod', () => {
  const full = {
    image: 'ghcr.io/acme/train:2',
    command: ['python', '-m', 'train'],
    args: ['--epochs', '3'],
    env: { LR: '0.1', TOKEN: { secret_key_ref: { name: 'hf', key: 'token' } }, MODEL: { config_map_key_ref: { name: 'cfg', key: 'model' } }, NODE: { field_ref: 'spec.nodeName' } },
    env_from: [{ secret: 'aws' }, { config_map: 'settings', prefix: 'S_' }],
    resources: { cpu: '500m', memory: '1Gi', ephemeral_storage: '10Gi', accelerator: { resource: 'amd.com/gpu', count: 1 }, limits: { cpu: 2 } },
    node_selector: { zone: 'a' },
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'gpu', operator: 'In', values: ['a100'] }] }] } } },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }],
    priority_class: 'batch-high',
    volumes: [
      { name: 'data', pvc: { claim_name: 'datasets' }, mount_path: '/data', read_only: true },
      { name: 'cfg', config_map: { name: 'train-cfg' }, mount_path: '/etc/train' },
      { name: 'creds', secret: { secret_name: 'creds' }, mount_path: '/creds', read_only: true },
      { name: 'scratch', empty_dir: { medium: 'Memory', size_limit: '2Gi' }, mount_path: '/scratch' },
    ],
    service_account: 'trainer',
    image_pull_secrets: ['regcred'],
    image_pull_policy: 'IfNotPresent',
    labels: { team: 'ml' },
    annotations: { 'acme.io/cost-center': '42' },
    active_deadline_seconds: 3600,
    termination_grace_seconds: 15,
    result_file: '/tmp/result.json',
    capacity: 'on-demand',
  };

  it('maps every field and passes schema validation', () => {
    const pod = build(full, 'aks');
    validatePodSchema(pod);
    const spec = pod.spec!;
    const c = spec.containers[0]!;
    expect(pod.metadata!.name).toMatch(/^gpu-finetune-finetune-[0-9a-f]{8}-t1$/);
    expect(pod.metadata!.namespace).toBe('ml');
    expect(c.name).toBe('base');
    expect(c.image).toBe('ghcr.io/acme/train:2');
    expect(c.command).toEqual(['python', '-m', 'train']);
    expect(c.args).toEqual(['--epochs', '3']);
    expect(c.imagePullPolicy).toBe('IfNotPresent');
    expect(c.env!.slice(0, 4)).toEqual([
      { name: 'LR', value: '0.1' },
      { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'hf', key: 'token' } } },
      { name: 'MODEL', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'model' } } },
      { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    ]);
    expect(c.envFrom).toEqual([{ secretRef: { name: 'aws' } }, { prefix: 'S_', configMapRef: { name: 'settings' } }]);
    expect(c.resources).toEqual({
      requests: { cpu: '500m', memory: '1Gi', 'ephemeral-storage': '10Gi' },
      limits: { memory: '1Gi', 'ephemeral-storage': '10Gi', cpu: '2', 'amd.com/gpu': '1' },
    });
    expect(spec.nodeSelector).toEqual({ zone: 'a' });
    // Profile (spot label absent) AND the task's own affinity.
    expect(spec.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'kubernetes.azure.com/scalesetpriority', operator: 'DoesNotExist' }, { key: 'gpu', operator: 'In', values: ['a100'] }] },
    ]);
    expect(spec.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }]);
    expect(spec.priorityClassName).toBe('batch-high');
    expect(spec.volumes).toEqual([
      { name: 'data', persistentVolumeClaim: { claimName: 'datasets' } },
      { name: 'cfg', configMap: { name: 'train-cfg' } },
      { name: 'creds', secret: { secretName: 'creds' } },
      { name: 'scratch', emptyDir: { medium: 'Memory', sizeLimit: '2Gi' } },
    ]);
    expect(c.volumeMounts).toEqual([
      { name: 'data', mountPath: '/data', readOnly: true },
      { name: 'cfg', mountPath: '/etc/train' },
      { name: 'creds', mountPath: '/creds', readOnly: true },
      { name: 'scratch', mountPath: '/scratch' },
    ]);
    expect(spec.serviceAccountName).toBe('trainer');
    expect(spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(spec.activeDeadlineSeconds).toBe(3600);
    expect(spec.terminationGracePeriodSeconds).toBe(15);
    expect(spec.restartPolicy).toBe('Never');
    expect(c.terminationMessagePath).toBe('/tmp/result.json');
    expect(c.terminationMessagePolicy).toBe('File');
  });

  it('labels, annotations and env identify the try', () => {
    const pod = build({ image: 'i' });
    expect(pod.metadata!.labels).toEqual({
      'podflow.io/managed-by': 'podflow',
      'podflow.io/dag-id': 'gpu_finetune',
      'podflow.io/run-id': expect.stringMatching(/^manual__2026-12-03T18_00_00_00_00-[0-9a-f]{8}$/),
      'podflow.io/task-id': 'finetune',
      'podflow.io/map-index': 'none',
      'podflow.io/try-number': '1',
      'podflow.io/attempt': '0',
    });
    expect(pod.metadata!.annotations!['podflow.io/run-id']).toBe(identity.runId);
    expect(JSON.parse(pod.metadata!.annotations![TRY_ANNOTATION]!)).toEqual({ dag_id: 'gpu_finetune', run_id: identity.runId, task_id: 'finetune', map_index: -1, try_number: 1 });
    expect(pod.spec!.containers[0]!.env).toEqual([
      { name: 'PODFLOW_DAG_ID', value: 'gpu_finetune' },
      { name: 'PODFLOW_RUN_ID', value: identity.runId },
      { name: 'PODFLOW_TASK_ID', value: 'finetune' },
      { name: 'PODFLOW_MAP_INDEX', value: '-1' },
      { name: 'PODFLOW_TRY_NUMBER', value: '1' },
    ]);
  });

  it('user labels never override the Podflow labels', () => {
    const pod = build({ image: 'i', labels: { 'podflow.io/try-number': '9', team: 'x' } });
    expect(pod.metadata!.labels!['podflow.io/try-number']).toBe('1');
    expect(pod.metadata!.labels!.team).toBe('x');
  });

  it('lineage env from the caller is passed to the container', () => {
    const pod = buildPod({ args: parsePodArgs({ image: 'i' }, where), identity, namespace: 'ml', profiles: null, template: null, lineageEnv: { PODFLOW_DAG_FILE_HASH: 'abc' } });
    expect(pod.spec!.containers[0]!.env).toContainEqual({ name: 'PODFLOW_DAG_FILE_HASH', value: 'abc' });
  });

  it('has a restrictive security context by default, which a DAG can loosen', () => {
    const pod = build({ image: 'i' });
    expect(pod.spec!.containers[0]!.securityContext).toEqual(DEFAULT_CONTAINER_SECURITY_CONTEXT);
    expect(pod.spec!.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const root = build({ image: 'i', security_context: { runAsNonRoot: false, runAsUser: 0 }, pod_security_context: { runAsNonRoot: false, fsGroup: 100 } });
    validatePodSchema(root);
    expect(root.spec!.containers[0]!.securityContext).toEqual({ ...DEFAULT_CONTAINER_SECURITY_CONTEXT, runAsNonRoot: false, runAsUser: 0 });
    expect(root.spec!.securityContext).toEqual({ runAsNonRoot: false, fsGroup: 100, seccompProfile: { type: 'RuntimeDefault' } });
  });

  it('merges task fields onto a pod template; sidecars stay, the main container is base', () => {
    const template: V1Pod = {
      metadata: { labels: { from: 'template' }, annotations: { a: '1' } },
      spec: {
        containers: [
          { name: 'base', image: 'overridden', env: [{ name: 'LR', value: 'old' }, { name: 'KEEP', value: 'yes' }] },
          { name: 'proxy', image: 'envoy:1' },
        ],
        nodeSelector: { disk: 'ssd' },
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
        restartPolicy: 'Always',
      },
    };
    const pod = build({ image: 'ghcr.io/x:1', env: { LR: 'new' }, resources: { gpus: 1 }, capacity: 'spot' }, 'karpenter', template);
    validatePodSchema(pod);
    expect(pod.spec!.containers.map((c) => c.name)).toEqual(['base', 'proxy']);
    expect(pod.spec!.containers[0]!.image).toBe('ghcr.io/x:1');
    expect(pod.spec!.containers[0]!.env!.slice(0, 2)).toEqual([{ name: 'KEEP', value: 'yes' }, { name: 'LR', value: 'new' }]);
    expect(pod.spec!.nodeSelector).toEqual({ disk: 'ssd', 'karpenter.sh/capacity-type': 'spot' });
    // The template's GPU toleration and the default one are not duplicated.
    expect(pod.spec!.tolerations).toEqual([NVIDIA_GPU_TOLERATION]);
    expect(pod.spec!.restartPolicy).toBe('Never');
    expect(pod.metadata!.labels!.from).toBe('template');
  });

  it('reads a YAML pod template relative to the DAG file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pf-tpl-'));
    writeFileSync(join(dir, 'pod.yaml'), 'spec:\n  containers:\n    - name: base\n      image: x\n  priorityClassName: low\n');
    const t = await resolvePodTemplate('pod.yaml', dir, 'DAG d, task t');
    expect(build({ image: 'i' }, null, t).spec!.priorityClassName).toBe('low');
    await expect(resolvePodTemplate('missing.yaml', dir, 'DAG d, task t')).rejects.toThrow(/DAG d, task t: pod_template file .*missing.yaml cannot be read \(ENOENT\)/);
  });

  it('mergeAffinity requires both sets of node terms', () => {
    const a = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { matchExpressions: [{ key: 'b', operator: 'Exists' }] }] } } };
    const b = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'c', operator: 'Exists' }] }] } } };
    expect(mergeAffinity(a, b)!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'c', operator: 'Exists' }] },
      { matchExpressions: [{ key: 'b', operator: 'Exists' }, { key: 'c', operator: 'Exists' }] },
    ]);
  });
});

describe('pod task arguments', () => {
  it('a wrong field is named with the DAG, task and file', () => {
    expect(() => parsePodArgs({ image: 'i', resources: { gpus: 'two' } }, where)).toThrow(PodArgsError);
    expect(() => parsePodArgs({ image: 'i', resources: { gpus: 'two' } }, where)).toThrow(
      /^dags\/gpu_finetune\.ts: DAG 'gpu_finetune', task 'finetune': operator_args\.resources\.gpus: /,
    );
  });

  it('an unknown field is refused (a typo never silently drops a setting)', () => {
    expect(() => parsePodArgs({ image: 'i', gpu: 1 }, where)).toThrow(/operator_args\.\(root\): .*gpu/i);
  });

  it('a missing image, a volume with two sources and a relative result_file are refused', () => {
    expect(() => parsePodArgs({ command: ['x'] }, where)).toThrow(/operator_args\.image/);
    expect(() => parsePodArgs({ image: 'i', volumes: [{ name: 'v', mount_path: '/v', pvc: { claim_name: 'a' }, empty_dir: {} }] }, where)).toThrow(/volumes\.0: give exactly one source/);
    expect(() => parsePodArgs({ image: 'i', result_file: 'out.json' }, where)).toThrow(/result_file must be an absolute path/);
  });

  it('podTask returns the pod operator with its args as JSON', () => {
    expect(podTask({ image: 'i', command: ['a'], resources: { gpus: 1 } })).toEqual({ operator: 'pod', operator_args: { image: 'i', command: ['a'], resources: { gpus: 1 } } });
  });
});

describe('templating', () => {
  const scope: TemplateScope = {
    params: { epochs: 3, model: { name: 'llama' }, evil: '; rm -rf / #' },
    conf: { lr: 0.01 },
    run_id: 'manual__1',
    dag_id: 'd',
    task_id: 't',
    ds: '2026-12-03',
    ts: '2026-12-03T18:00:00.000Z',
    try_number: 2,
    map_index: -1,
    map_value: undefined,
    dag_dir: '/dags',
  };

  it('renders each element on its own and never splits on spaces or shell characters', () => {
    expect(renderArgv(['--epochs', '{{ params.epochs }}', '--name={{params.model.name}}', '{{ params.evil }}', '{{ conf.lr }}', '{{ run_id }}/{{ ds }}', '{{ dag_dir }}/x.mjs'], scope, 'w')).toEqual([
      '--epochs',
      '3',
      '--name=llama',
      '; rm -rf / #',
      '0.01',
      'manual__1/2026-12-03',
      '/dags/x.mjs',
    ]);
  });

  it('an unknown placeholder names the field', () => {
    expect(() => renderArgv(['{{ params.nope }}'], scope, "DAG 'd', task 't': args")).toThrow(TemplateError);
    expect(() => renderArgv(['{{ params.nope }}'], scope, "DAG 'd', task 't': args")).toThrow(/^DAG 'd', task 't': args\[0\]: unknown placeholder \{\{ params\.nope \}\}/);
  });
});

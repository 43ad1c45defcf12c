import type { NodeJson, PodJson } from './wire.ts';

type Taint = NonNullable<NonNullable<NodeJson['spec']>['taints']>[number];
type Toleration = NonNullable<NonNullable<PodJson['spec']>['tolerations']>[number];
type SelectorTerm = NonNullable<
  NonNullable<NonNullable<NonNullable<PodJson['spec']>['affinity']>['nodeAffinity']>['requiredDuringSchedulingIgnoredDuringExecution']
>['nodeSelectorTerms'][number];

/** What {@link makeNode} needs to build a realistic node. */
export interface NodeShape {
  name: string;
  ip: string;
  zone: string;
  instanceType: string;
  capacityType: 'on-demand' | 'spot';
  cpu: string;
  memory: string;
  gpus?: number;
}

/**
 * A Ready node with the well-known labels. Capacity type is labelled the way each managed
 * provider does it at once (Karpenter, EKS, and for spot GKE and AKS, which label only spot
 * nodes), so a pod built with any provider's capacity profile lands where it should. GPU nodes
 * get `nvidia.com/gpu` capacity, NVIDIA labels and the `nvidia.com/gpu=present:NoSchedule` taint.
 */
export function makeNode(shape: NodeShape, creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z')): NodeJson {
  const capacity: Record<string, string> = { cpu: shape.cpu, memory: shape.memory, pods: '110', 'ephemeral-storage': '100Gi' };
  const labels: Record<string, string> = {
    'kubernetes.io/hostname': shape.name,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
    'node.kubernetes.io/instance-type': shape.instanceType,
    'topology.kubernetes.io/zone': shape.zone,
    'karpenter.sh/capacity-type': shape.capacityType,
    'eks.amazonaws.com/capacityType': shape.capacityType === 'spot' ? 'SPOT' : 'ON_DEMAND',
    ...(shape.capacityType === 'spot' ? { 'cloud.google.com/gke-spot': 'true', 'kubernetes.azure.com/scalesetpriority': 'spot' } : {}),
  };
  const taints: Taint[] = [];
  if (shape.gpus) {
    capacity['nvidia.com/gpu'] = String(shape.gpus);
    labels['nvidia.com/gpu.present'] = 'true';
    labels['nvidia.com/gpu.product'] = 'NVIDIA-A10G';
    labels['nvidia.com/gpu.count'] = String(shape.gpus);
    taints.push({ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' });
  }
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: shape.name, uid: crypto.randomUUID(), labels, creationTimestamp },
    spec: { providerID: `fake://${shape.zone}/${shape.name}`, ...(taints.length ? { taints } : {}) },
    status: {
      capacity,
      allocatable: { ...capacity },
      addresses: [
        { type: 'InternalIP', address: shape.ip },
        { type: 'Hostname', address: shape.name },
      ],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'kubelet is posting ready status',
          lastHeartbeatTime: creationTimestamp,
          lastTransitionTime: creationTimestamp,
        },
      ],
      nodeInfo: {
        architecture: 'amd64',
        bootID: crypto.randomUUID(),
        containerRuntimeVersion: 'containerd://1.7.22',
        kernelVersion: '6.1.112-124.190.amzn2023.x86_64',
        kubeProxyVersion: 'v1.31.4',
        kubeletVersion: 'v1.31.4',
        machineID: crypto.randomUUID().replaceAll('-', ''),
        operatingSystem: 'linux',
        osImage: 'Amazon Linux 2023.6.20241121',
        systemUUID: crypto.randomUUID(),
      },
    },
  };
}

/**
 * The default fake cluster: two on-demand CPU nodes and one spot GPU node
 * (`nvidia.com/gpu: 4`, labels `karpenter.sh/capacity-type=spot` and `nvidia.com/gpu.present=true`,
 * taint `nvidia.com/gpu=present:NoSchedule`).
 */
export function defaultNodes(creationTimestamp?: string): NodeJson[] {
  return [
    { name: 'cpu-node-1', ip: '10.0.1.11', zone: 'us-east-1a', instanceType: 'm5.2xlarge', capacityType: 'on-demand', cpu: '8', memory: '32Gi' },
    { name: 'cpu-node-2', ip: '10.0.2.12', zone: 'us-east-1b', instanceType: 'm5.2xlarge', capacityType: 'on-demand', cpu: '8', memory: '32Gi' },
    { name: 'gpu-spot-node-1', ip: '10.0.3.13', zone: 'us-east-1c', instanceType: 'g5.12xlarge', capacityType: 'spot', cpu: '48', memory: '192Gi', gpus: 4 },
  ].map((shape) => makeNode(shape as NodeShape, creationTimestamp));
}

const SUFFIX: Record<string, number> = {
  m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A resource quantity ("500m", "2Gi", "1e9", "4") as a number; NaN when malformed. */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const m = /^([+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)([a-zA-Z]*)$/.exec(quantity.trim());
  if (!m) return Number.NaN;
  const factor = m[2] === '' ? 1 : SUFFIX[m[2]];
  return factor === undefined ? Number.NaN : Number(m[1]) * factor;
}

/** What a pod asks for: the sum of container requests (a limit stands in for a missing request). */
export function podRequests(pod: PodJson): Record<string, number> {
  const total: Record<string, number> = {};
  for (const c of pod.spec?.containers ?? []) {
    const asked = { ...(c.resources?.limits ?? {}), ...(c.resources?.requests ?? {}) };
    for (const [resource, q] of Object.entries(asked)) total[resource] = (total[resource] ?? 0) + parseQuantity(q);
  }
  return total;
}

function matchesTerm(labels: Record<string, string>, term: SelectorTerm): boolean {
  return (term.matchExpressions ?? []).every((e) => {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        return has && (e.values ?? []).includes(value);
      case 'NotIn':
        return !has || !(e.values ?? []).includes(value);
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      case 'Gt':
        return has && Number(value) > Number(e.values?.[0]);
      case 'Lt':
        return has && Number(value) < Number(e.values?.[0]);
      default:
        return false;
    }
  });
}

function selectsNode(pod: PodJson, node: NodeJson): boolean {
  const labels = node.metadata?.labels ?? {};
  const selector = pod.spec?.nodeSelector ?? {};
  if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) return false;
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  return !terms || terms.length === 0 || terms.some((t) => matchesTerm(labels, t));
}

function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.operator === 'Exists') return !toleration.key || toleration.key === taint.key;
  return toleration.key === taint.key && (toleration.value ?? '') === (taint.value ?? '');
}

function untoleratedTaint(pod: PodJson, node: NodeJson): Taint | undefined {
  return (node.spec?.taints ?? [])
    .filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute')
    .find((t) => !(pod.spec?.tolerations ?? []).some((tol) => tolerates(tol, t)));
}

export type Placement = { node: NodeJson } | { message: string };

/**
 * Picks the first node the pod fits on (node selector, required node affinity, taints and
 * resources), like the default scheduler's filter phase. When none fits, returns the scheduler's
 * FailedScheduling message, e.g. `0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s)
 * didn't match Pod's node affinity/selector.`
 */
export function placePod(pod: PodJson, nodes: NodeJson[], boundPods: PodJson[]): Placement {
  const reasons = new Map<string, number>();
  const count = (reason: string): void => void reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  const asked = podRequests(pod);
  for (const node of nodes) {
    if (node.spec?.unschedulable) {
      count('node(s) were unschedulable');
      continue;
    }
    if (!selectsNode(pod, node)) {
      count("node(s) didn't match Pod's node affinity/selector");
      continue;
    }
    const taint = untoleratedTaint(pod, node);
    if (taint) {
      count(`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`);
      continue;
    }
    const used: Record<string, number> = {};
    for (const other of boundPods.filter((p) => p.spec?.nodeName === node.metadata?.name)) {
      for (const [r, q] of Object.entries(podRequests(other))) used[r] = (used[r] ?? 0) + q;
    }
    const short = Object.entries(asked)
      .filter(([r, q]) => q > 0 && q > parseQuantity(node.status?.allocatable?.[r] ?? '0') - (used[r] ?? 0))
      .map(([r]) => r);
    if (short.length > 0) {
      for (const r of short) count(`Insufficient ${r}`);
      continue;
    }
    return { node };
  }
  // The scheduler sorts the "<count> <reason>" strings themselves (Go sort.Strings).
  const detail = [...reasons.entries()]
    .map(([reason, n]) => `${n} ${reason}`)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .join(', ');
  return { message: `0/${nodes.length} nodes are available: ${detail}.` };
}

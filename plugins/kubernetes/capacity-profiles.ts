/**
 * Capacity profiles: what `capacity: 'spot' | 'on-demand'` means on a given cluster, as
 * node selectors, tolerations and node affinity. Built-in providers cover GKE, EKS, AKS
 * and Karpenter; a custom profile is plain JSON in PODFLOW_KUBE_CAPACITY_PROFILES.
 */
import { readFileSync, existsSync } from 'node:fs';
import type { V1Affinity, V1Toleration } from '@kubernetes/client-node';
import { z } from 'zod';

export type Capacity = 'spot' | 'on-demand' | 'any';

/** Scheduling constraints one capacity class adds to a pod. */
export interface CapacityProfile {
  node_selector: Record<string, string>;
  tolerations: V1Toleration[];
  affinity: V1Affinity | null;
}

export interface CapacityProfiles {
  /** gke | eks | aks | karpenter | custom */
  provider: string;
  spot: CapacityProfile;
  'on-demand': CapacityProfile;
  /** Added to every pod that asks for `nvidia.com/gpu` (default: the NVIDIA NoSchedule taint). */
  gpu_tolerations: V1Toleration[];
}

/** The taint the NVIDIA device plugin docs and managed GPU node pools put on GPU nodes. */
export const NVIDIA_GPU_TOLERATION: V1Toleration = { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' };

function requireLabelAbsent(key: string): V1Affinity {
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key, operator: 'DoesNotExist' }] }],
      },
    },
  };
}

const none: CapacityProfile = { node_selector: {}, tolerations: [], affinity: null };

/** Built-in providers. On-demand means "not spot": GKE and AKS only label spot nodes. */
export const BUILTIN_PROVIDERS: Record<string, Omit<CapacityProfiles, 'gpu_tolerations'>> = {
  gke: {
    provider: 'gke',
    spot: {
      node_selector: { 'cloud.google.com/gke-spot': 'true' },
      tolerations: [{ key: 'cloud.google.com/gke-spot', operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
      affinity: null,
    },
    'on-demand': { ...none, affinity: requireLabelAbsent('cloud.google.com/gke-spot') },
  },
  eks: {
    provider: 'eks',
    spot: { ...none, node_selector: { 'eks.amazonaws.com/capacityType': 'SPOT' } },
    'on-demand': { ...none, node_selector: { 'eks.amazonaws.com/capacityType': 'ON_DEMAND' } },
  },
  aks: {
    provider: 'aks',
    spot: {
      node_selector: { 'kubernetes.azure.com/scalesetpriority': 'spot' },
      // AKS always taints spot node pools with this.
      tolerations: [{ key: 'kubernetes.azure.com/scalesetpriority', operator: 'Equal', value: 'spot', effect: 'NoSchedule' }],
      affinity: null,
    },
    'on-demand': { ...none, affinity: requireLabelAbsent('kubernetes.azure.com/scalesetpriority') },
  },
  karpenter: {
    provider: 'karpenter',
    spot: { ...none, node_selector: { 'karpenter.sh/capacity-type': 'spot' } },
    'on-demand': { ...none, node_selector: { 'karpenter.sh/capacity-type': 'on-demand' } },
  },
};

const tolerationSchema = z.object({
  key: z.string().optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});

const profileSchema = z.strictObject({
  node_selector: z.record(z.string(), z.string()).default({}),
  tolerations: z.array(tolerationSchema).default([]),
  affinity: z.record(z.string(), z.unknown()).nullable().default(null),
});

const configSchema = z.strictObject({
  provider: z.string().default('custom'),
  spot: profileSchema.optional(),
  'on-demand': profileSchema.optional(),
  gpu_tolerations: z.array(tolerationSchema).optional(),
});

/**
 * Reads PODFLOW_KUBE_CAPACITY_PROFILES: a provider name (`gke`), JSON
 * (`{"provider":"eks"}`, or `{"spot":{...},"on-demand":{...}}` for a custom cluster, each
 * part overriding the provider's), or a path to a JSON file holding the same.
 * Unset: no profile; a task asking for spot or on-demand then fails with a message saying so.
 */
export function loadCapacityProfiles(raw: string | undefined): CapacityProfiles | null {
  if (raw === undefined || raw.trim() === '') return null;
  const text = raw.trim();
  const where = 'PODFLOW_KUBE_CAPACITY_PROFILES';
  let json: unknown;
  if (BUILTIN_PROVIDERS[text]) json = { provider: text };
  else if (text.startsWith('{')) {
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`${where} is not valid JSON (${(e as Error).message}); give a provider name (gke, eks, aks, karpenter), JSON or a file path`);
    }
  } else if (existsSync(text)) {
    try {
      json = JSON.parse(readFileSync(text, 'utf8'));
    } catch (e) {
      throw new Error(`${where}: file ${text} is not valid JSON (${(e as Error).message})`);
    }
  } else {
    throw new Error(
      `${where}=${JSON.stringify(text)} is neither a provider (${Object.keys(BUILTIN_PROVIDERS).join(', ')}), JSON, nor an existing file`,
    );
  }
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`${where} is invalid: ${issues}`);
  }
  const cfg = parsed.data;
  const base = BUILTIN_PROVIDERS[cfg.provider];
  if (!base && cfg.provider !== 'custom') {
    throw new Error(`${where}: unknown provider '${cfg.provider}'; use one of ${Object.keys(BUILTIN_PROVIDERS).join(', ')} or 'custom'`);
  }
  if (!base && (!cfg.spot || !cfg['on-demand'])) {
    throw new Error(`${where}: a custom provider needs both "spot" and "on-demand" profiles`);
  }
  return {
    provider: cfg.provider,
    spot: (cfg.spot as CapacityProfile | undefined) ?? base!.spot,
    'on-demand': (cfg['on-demand'] as CapacityProfile | undefined) ?? base!['on-demand'],
    gpu_tolerations: (cfg.gpu_tolerations as V1Toleration[] | undefined) ?? [NVIDIA_GPU_TOLERATION],
  };
}

/**
 * The constraints a pod gets for `capacity`. `any` requires nothing but tolerates the
 * spot taints, so the pod may land on either kind of node.
 */
export function capacityConstraints(profiles: CapacityProfiles | null, capacity: Capacity): CapacityProfile {
  if (capacity === 'any') return profiles ? { node_selector: {}, tolerations: profiles.spot.tolerations, affinity: null } : none;
  if (!profiles) {
    throw new Error(
      `capacity '${capacity}' needs a capacity profile: set PODFLOW_KUBE_CAPACITY_PROFILES to gke, eks, aks, karpenter or custom JSON, or use capacity 'any'`,
    );
  }
  return profiles[capacity];
}

/** GPU tolerations when no profile is configured. */
export function defaultGpuTolerations(profiles: CapacityProfiles | null): V1Toleration[] {
  return profiles?.gpu_tolerations ?? [NVIDIA_GPU_TOLERATION];
}

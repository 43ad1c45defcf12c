/**
 * The plugin's settings, read from PODFLOW_KUBE_* environment variables.
 */
import { existsSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeClient } from './kube-client.ts';
import { loadCapacityProfiles, type CapacityProfiles } from './capacity-profiles.ts';

export type KubeMode = 'auto' | 'cluster' | 'local';

/** Every variable the plugin reads, with its default (the README lists the same). */
export const KUBE_ENV_VARS = [
  { name: 'PODFLOW_KUBE_MODE', default: 'auto', description: 'auto: cluster when KUBECONFIG, ~/.kube/config or an in-cluster service account exists, else local; cluster; local' },
  { name: 'PODFLOW_KUBE_NAMESPACE', default: '(kubeconfig context namespace, else default)', description: 'namespace for pods whose task gives none' },
  { name: 'PODFLOW_KUBE_CAPACITY_PROFILES', default: '(none)', description: 'gke | eks | aks | karpenter, JSON, or a JSON file path: what capacity spot/on-demand means' },
  { name: 'PODFLOW_KUBE_CONTEXT', default: '(current context)', description: 'kubeconfig context to use' },
] as const;

export interface KubePluginConfig {
  mode: 'cluster' | 'local';
  /** Why this mode was chosen (logged at start). */
  modeReason: string;
  kubeConfig: KubeConfig | null;
  namespace: string;
  profiles: CapacityProfiles | null;
}

function hasInClusterServiceAccount(env: Record<string, string | undefined>): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token');
}

/**
 * Resolves mode, kubeconfig, namespace and capacity profiles. Rejects with the fix when a
 * setting is invalid or `cluster` mode has no cluster to talk to. Only cluster mode loads
 * `@kubernetes/client-node` (seconds of start-up a local-mode worker does not pay).
 */
export async function loadKubePluginConfig(env: Record<string, string | undefined>): Promise<KubePluginConfig> {
  const raw = (env.PODFLOW_KUBE_MODE || 'auto').toLowerCase();
  if (raw !== 'auto' && raw !== 'cluster' && raw !== 'local') {
    throw new Error(`PODFLOW_KUBE_MODE=${JSON.stringify(env.PODFLOW_KUBE_MODE)} is not auto, cluster or local`);
  }
  const profiles = loadCapacityProfiles(env.PODFLOW_KUBE_CAPACITY_PROFILES);
  const home = env.HOME ? `${env.HOME}/.kube/config` : null;
  const inCluster = hasInClusterServiceAccount(env);
  const haveConfig = Boolean(env.KUBECONFIG) || inCluster || (home !== null && existsSync(home));
  let mode: 'cluster' | 'local';
  let modeReason: string;
  if (raw === 'local') [mode, modeReason] = ['local', 'PODFLOW_KUBE_MODE=local'];
  else if (raw === 'cluster') [mode, modeReason] = ['cluster', 'PODFLOW_KUBE_MODE=cluster'];
  else if (haveConfig) [mode, modeReason] = ['cluster', env.KUBECONFIG ? 'KUBECONFIG is set' : inCluster ? 'running in a cluster' : `${home} exists`];
  else [mode, modeReason] = ['local', 'no KUBECONFIG, ~/.kube/config or in-cluster service account'];

  let kubeConfig: KubeConfig | null = null;
  let namespace = env.PODFLOW_KUBE_NAMESPACE || '';
  if (mode === 'cluster') {
    const file = env.KUBECONFIG ? env.KUBECONFIG.split(':')[0]! : !inCluster && home && existsSync(home) ? home : null;
    // Checked before loading the client, so a misconfigured worker fails at once.
    if (!file && !inCluster) throw new Error('PODFLOW_KUBE_MODE=cluster but there is no cluster: set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account');
    const { KubeConfig } = await loadKubeClient();
    kubeConfig = new KubeConfig();
    if (file) kubeConfig.loadFromFile(file);
    else kubeConfig.loadFromCluster();
    if (env.PODFLOW_KUBE_CONTEXT) kubeConfig.setCurrentContext(env.PODFLOW_KUBE_CONTEXT);
    if (!kubeConfig.getCurrentCluster()) throw new Error(`kubeconfig has no cluster for context '${kubeConfig.getCurrentContext()}'; set PODFLOW_KUBE_CONTEXT or fix the kubeconfig`);
    namespace ||= kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace || '';
  }
  return { mode, modeReason, kubeConfig, namespace: namespace || 'default', profiles };
}

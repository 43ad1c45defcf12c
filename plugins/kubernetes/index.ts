/**
 * Podflow's Kubernetes plugin: the `pod` operator. Each task try becomes a pod that asks
 * for exactly the hardware it needs (GPUs, spot or on-demand capacity), followed through one
 * shared watch per namespace, with its log streamed into the task log, its end classified,
 * and its pod cleaned up. Without a cluster, pod tasks run as local processes.
 *
 * @example
 * // dags/train.ts
 * import { dag } from 'podflow';
 * import { podTask } from '../plugins/kubernetes/authoring.ts';
 * export default dag({ dag_id: 'train', schedule: null }, (d) => {
 *   d.operator('fit', podTask({ image: 'ghcr.io/acme/train:1.4', command: ['python', 'fit.py'], resources: { gpus: 1 }, capacity: 'spot' }), { retries: 3 });
 * });
 *
 * Settings: PODFLOW_KUBE_MODE, PODFLOW_KUBE_NAMESPACE, PODFLOW_KUBE_CAPACITY_PROFILES,
 * PODFLOW_KUBE_CONTEXT (see README.md).
 *
 * Nothing here imports `@kubernetes/client-node` at load time (types only): the client takes
 * seconds to import, so it is loaded (kube-client.ts) only when cluster mode is chosen.
 */
import type { PluginContext } from '../../src/executor/plugin.ts';
import { PodOperator, type PodOperatorOptions } from './pod-executor.ts';
import { loadKubePluginConfig } from './plugin-config.ts';

export { PodOperator, isLive, type PodOperatorOptions } from './pod-executor.ts';
export { loadKubePluginConfig, KUBE_ENV_VARS, type KubePluginConfig } from './plugin-config.ts';
export { loadCapacityProfiles, BUILTIN_PROVIDERS, type CapacityProfiles, type CapacityProfile } from './capacity-profiles.ts';
export { buildPod, MAIN_CONTAINER } from './pod-builder.ts';
export { loadKubeClient } from './kube-client.ts';
export { podName, labelValue } from './pod-names.ts';
export { podTask } from './authoring.ts';
export type { PodTaskArgs } from './pod-args.ts';

/**
 * A pod operator for tests and embedders, e.g.
 * `createPodOperator({ mode: 'cluster', kubeConfig, namespace: 'ml', profiles, logger })`.
 * Call `close()` when done to stop its shared watches.
 */
export function createPodOperator(opts: PodOperatorOptions): PodOperator {
  return new PodOperator(opts);
}

/** Plugin entry: registers the `pod` operator, configured from `PODFLOW_KUBE_*`. */
export async function register(ctx: PluginContext): Promise<void> {
  const cfg = await loadKubePluginConfig(ctx.config.env);
  // The plugin loader already tags ctx.logger with the plugin's folder name.
  const logger = ctx.logger;
  const op = createPodOperator({
    mode: cfg.mode,
    kubeConfig: cfg.kubeConfig ?? undefined,
    namespace: cfg.namespace,
    profiles: cfg.profiles,
    logger,
    dagsFolder: ctx.config.dagsFolder,
    redis: ctx.redis,
    redisPrefix: `${ctx.config.prefix}:`,
  });
  ctx.operators.register(op);
  ctx.onShutdown(() => op.close());
  logger.info(
    { mode: cfg.mode, namespace: cfg.mode === 'cluster' ? cfg.namespace : undefined, capacity_provider: cfg.profiles?.provider ?? null },
    `pod operator registered in ${cfg.mode} mode (${cfg.modeReason})`,
  );
}

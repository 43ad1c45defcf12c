/**
 * The one place the plugin loads `@kubernetes/client-node` at run time.
 *
 * Importing the client costs seconds (it pulls in a large generated API and its HTTP stack),
 * and every worker loads this plugin, including local-mode workers that never talk to a
 * cluster. So every other file imports the client with `import type` only, and cluster mode
 * awaits {@link loadKubeClient} before it builds a KubeConfig, an API client or a watch.
 */
import type * as KubeClientModule from '@kubernetes/client-node';

export type KubeClient = typeof KubeClientModule;

let loaded: KubeClient | null = null;
let loading: Promise<KubeClient> | null = null;

/** Imports `@kubernetes/client-node` once; later calls return the same module. */
export function loadKubeClient(): Promise<KubeClient> {
  loading ??= import('@kubernetes/client-node').then(
    (m) => (loaded = m),
    (e: unknown) => {
      loading = null;
      throw new Error(`cannot load @kubernetes/client-node (needed for PODFLOW_KUBE_MODE=cluster): ${(e as Error).message}; run npm install, or set PODFLOW_KUBE_MODE=local`);
    },
  );
  return loading;
}

/**
 * The client module, once {@link loadKubeClient} has resolved. Code that runs only in cluster
 * mode calls this after the operator awaited the load; calling it earlier is a bug in the plugin.
 */
export function kubeClient(): KubeClient {
  if (!loaded) throw new Error('internal error in plugins/kubernetes: @kubernetes/client-node used before loadKubeClient() resolved');
  return loaded;
}

/** The client module if something already loaded it, else null (never triggers the import). */
export function kubeClientIfLoaded(): KubeClient | null {
  return loaded;
}

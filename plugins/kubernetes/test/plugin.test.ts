import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { OperatorRegistry } from '../../../src/executor/registry.ts';
import { loadConfig } from '../../../src/config/config.ts';
import type { PluginContext } from '../../../src/executor/plugin.ts';
import { register } from '../index.ts';
import { loadKubePluginConfig } from '../plugin-config.ts';
import { KubeApi, KubeApiError, parseRetryAfter } from '../kube-api.ts';
import { PodOperator } from '../pod-executor.ts';
import { silent } from './helpers.ts';

function kubeconfigFile(server: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pf-kc-'));
  const file = join(dir, 'config');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'ml' } }],
      'current-context': 'ctx',
    }),
  );
  return file;
}

describe('plugin configuration', () => {
  it('auto mode without any cluster configuration runs locally', async () => {
    expect(await loadKubePluginConfig({ HOME: '/nonexistent' })).toMatchObject({ mode: 'local', namespace: 'default', profiles: null });
  });

  it('auto mode with KUBECONFIG uses the cluster and the context namespace', async () => {
    const cfg = await loadKubePluginConfig({ KUBECONFIG: kubeconfigFile('http://127.0.0.1:1'), HOME: '/nonexistent' });
    expect(cfg).toMatchObject({ mode: 'cluster', namespace: 'ml', modeReason: 'KUBECONFIG is set' });
    expect(cfg.kubeConfig!.getCurrentCluster()!.server).toBe('http://127.0.0.1:1');
  });

  it('PODFLOW_KUBE_NAMESPACE and capacity profiles are read', async () => {
    const cfg = await loadKubePluginConfig({ KUBECONFIG: kubeconfigFile('http://127.0.0.1:1'), PODFLOW_KUBE_NAMESPACE: 'train', PODFLOW_KUBE_CAPACITY_PROFILES: 'gke' });
    expect(cfg.namespace).toBe('train');
    expect(cfg.profiles!.provider).toBe('gke');
  });

  it('PODFLOW_KUBE_MODE=local wins over a kubeconfig; cluster mode without one says what to set', async () => {
    expect((await loadKubePluginConfig({ KUBECONFIG: kubeconfigFile('http://127.0.0.1:1'), PODFLOW_KUBE_MODE: 'local' })).mode).toBe('local');
    await expect(loadKubePluginConfig({ PODFLOW_KUBE_MODE: 'cluster', HOME: '/nonexistent' })).rejects.toThrow(/set KUBECONFIG/);
    await expect(loadKubePluginConfig({ PODFLOW_KUBE_MODE: 'k8s' })).rejects.toThrow(/is not auto, cluster or local/);
  });

  it('register adds the "pod" operator and a shutdown hook', async () => {
    const operators = new OperatorRegistry();
    const hooks: (() => unknown)[] = [];
    const ctx = {
      operators,
      config: loadConfig({ HOME: '/nonexistent', PODFLOW_KUBE_MODE: 'local' }),
      logger: silent,
      onShutdown: (fn: () => unknown) => void hooks.push(fn),
    } as unknown as PluginContext;
    await register(ctx);
    expect(operators.types()).toEqual(['pod']);
    expect(operators.get('pod')).toBeInstanceOf(PodOperator);
    expect(hooks).toHaveLength(1);
  });
});

describe('Kubernetes API retries', () => {
  let server: Server;
  let url: string;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.writeHead(503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'ServiceUnavailable', message: 'etcd is down', code: 503 }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  function kc(server: string): KubeConfig {
    const k = new KubeConfig();
    k.loadFromFile(kubeconfigFile(server));
    return k;
  }

  it('gives up after maxAttempts on a 5xx, counting every request, with the status in the error', async () => {
    const api = await KubeApi.create(kc(url), { logger: silent, maxAttempts: 3, baseDelayMs: 5 });
    hits = 0;
    const err = await api.readPod('ml', 'p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(503);
    expect((err as KubeApiError).message).toContain('etcd is down');
    expect(hits).toBe(3);
    expect(api.counter.forPod('p')).toEqual({ read: 3 });
  });

  it('retries connection errors (nothing listening) and reports them without a status', async () => {
    const api = await KubeApi.create(kc('http://127.0.0.1:1'), { logger: silent, maxAttempts: 2, baseDelayMs: 5 });
    const err = await api.createPod('ml', { metadata: { name: 'p' }, spec: { containers: [] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBeNull();
    expect(api.counter.forPod('p')).toEqual({ create: 2 });
  });

  it('honours Retry-After (seconds or HTTP date), capped by maxDelayMs', async () => {
    const api = await KubeApi.create(kc(url), { logger: silent, maxDelayMs: 5000 });
    expect(api.backoffMs(1, parseRetryAfter('2'))).toBe(2000);
    expect(api.backoffMs(1, parseRetryAfter('120'))).toBe(5000);
    expect(parseRetryAfter(new Date(Date.now() + 60_000).toUTCString())).toBeGreaterThan(50_000);
    expect(parseRetryAfter(undefined)).toBeNull();
  });

  it('the request counter feeds the podflow_kube_api_requests_total metric', async () => {
    const registry = new Registry();
    const op = new PodOperator({ mode: 'cluster', kubeConfig: kc(url), logger: silent, metricsRegistry: registry, retry: { maxAttempts: 2, baseDelayMs: 5 } });
    await (await op.kubeApi()).readPod('ml', 'x').catch(() => undefined);
    const metric = await registry.getSingleMetric('podflow_kube_api_requests_total')!.get();
    expect(metric.values).toEqual([{ labels: { verb: 'read' }, value: 2 }]);
  });
});

import { Registry, register as defaultRegistry } from 'prom-client';
import type { ApiRoute, ApiDeps } from '../server.ts';

/** GET /metrics in Prometheus text format (viewer token: Prometheus sends it as a bearer token). */
export function metricsRoutes({ metrics }: ApiDeps): ApiRoute[] {
  if (!metrics) return [];
  return [
    {
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics: task tries, durations, active runs, slots, pools, queue depth',
      role: 'viewer',
      responses: { 200: { description: 'Prometheus text exposition format', contentType: 'text/plain' } },
      handler: async (_req, res) => {
        // Plugins (e.g. the pod operator's API request counter) register on prom-client's default registry.
        const all = Registry.merge([metrics.registry, defaultRegistry]);
        res.type(all.contentType).send(await all.metrics());
        return undefined;
      },
    },
  ];
}

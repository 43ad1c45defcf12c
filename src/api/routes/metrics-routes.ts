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
        res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
        return undefined;
      },
    },
  ];
}

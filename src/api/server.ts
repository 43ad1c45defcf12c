import express, { type Request, type RequestHandler, type Response } from 'express';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { PodflowConfig } from '../config/config.ts';
import type { Lineage } from '../lineage/lineage.ts';
import type { StateStore } from '../state/store.ts';
import type { TaskJobData } from '../worker/jobs.ts';
import type { PodflowMetrics } from '../observability/metrics.ts';
import { authMiddleware, type TokenEntry } from './auth.ts';
import { buildOpenApi, type RouteDoc } from './openapi.ts';
import { notFoundHandler, problemHandler } from './problem.ts';
import { coreRoutes } from './routes/core-routes.ts';
import { extraRouteGroups } from './routes/registry.ts';
import { metricsRoutes } from './routes/metrics-routes.ts';

export interface ApiDeps {
  store: StateStore;
  config: PodflowConfig;
  logger: Logger;
  tokens: TokenEntry[];
  lineage: Lineage;
  queue: Queue<TaskJobData>;
  metrics?: PodflowMetrics;
}

/** A route: its OpenAPI description and its handler. The handler's return value is sent as JSON. */
export interface ApiRoute extends RouteDoc {
  handler: (req: Request, res: Response) => Promise<unknown> | unknown;
  /** Middleware before auth (e.g. raw body for webhooks). */
  before?: RequestHandler[];
  /** Status for a returned body (default 200). */
  status?: number;
}

export type RouteGroup = (deps: ApiDeps) => ApiRoute[];

/** The Express app: every route from the route table, its OpenAPI document, auth and JSON errors. */
export function createApiServer(deps: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // CORS is off by default: no Access-Control-* headers are ever sent.
  const routes: ApiRoute[] = [...coreRoutes(deps), ...metricsRoutes(deps), ...extraRouteGroups.flatMap((g) => g(deps))];
  const openapi = buildOpenApi(
    [
      ...routes,
      { method: 'get', path: '/api/v1/openapi.json', summary: 'This OpenAPI document', role: 'public', responses: { 200: { description: 'OpenAPI 3.1 document' } } },
    ],
    { title: 'Podflow API' },
  );
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  const json = express.json({ limit: '1mb' });
  for (const r of routes) {
    const chain: RequestHandler[] = [...(r.before ?? [])];
    if (r.role !== 'public') chain.push(authMiddleware({ tokens: deps.tokens, required: r.role }));
    if (!r.before) chain.push(json);
    chain.push(async (req, res) => {
      const body = await r.handler(req, res);
      if (!res.headersSent) {
        if (body === undefined) res.status(204).end();
        else res.status(r.status ?? 200).json(body);
      }
    });
    app[r.method](r.path, ...chain);
  }
  app.use(notFoundHandler());
  app.use(problemHandler(deps.logger));
  return app;
}

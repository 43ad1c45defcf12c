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
import { ApiProblem, badRequest, notFoundHandler, problemHandler } from './problem.ts';
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

/** Deepest JSON nesting a request body may have; deeper bodies would overflow the stack in schema validation. */
export const MAX_JSON_DEPTH = 64;

/**
 * For routes with a request schema: a body that is not JSON (curl's default form encoding,
 * text/plain) would be silently ignored by express.json(), so refuse it with 415.
 */
const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody || req.is('application/json')) return next();
  const got = req.headers['content-type'] ?? 'no Content-Type';
  next(
    new ApiProblem(
      415,
      `the request body must be JSON, but it was sent as ${got}; send it with the header 'Content-Type: application/json' (curl: -H 'Content-Type: application/json')`,
    ),
  );
};

/** The nesting depth of a parsed JSON value (a scalar is 0, `{}` is 1), computed without recursion. */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > max) max = depth;
    if (depth > MAX_JSON_DEPTH) return depth;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth]);
  }
  return max;
}

/** Refuse JSON bodies nested deeper than {@link MAX_JSON_DEPTH} before they reach zod. */
const limitJsonDepth: RequestHandler = (req, _res, next) => {
  if (jsonDepth(req.body) > MAX_JSON_DEPTH) return next(badRequest(`the JSON body is nested deeper than ${MAX_JSON_DEPTH} levels; flatten it`));
  next();
};

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
    if (r.requestSchema && !r.before) chain.push(requireJsonBody);
    if (!r.before) chain.push(json, limitJsonDepth);
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

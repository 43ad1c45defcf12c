/**
 * The OpenAPI 3.1 document served at `/api/v1/openapi.json`, built from the same route
 * list the server registers, plus {@link listExpressRoutes} to read back what an Express 5
 * app really serves, so a test can assert the two are the same set.
 *
 * @example
 * ```ts
 * const routes: RouteDoc[] = [
 *   { method: 'get', path: '/api/v1/dags/:dag_id', summary: 'Get a DAG', role: 'viewer', responses: { 200: { description: 'The DAG' } } },
 *   { method: 'patch', path: '/api/v1/dags/:dag_id', summary: 'Pause or unpause a DAG', role: 'operator',
 *     requestSchema: patchDagBody, responses: { 200: { description: 'The updated DAG' } } },
 * ];
 * app.get('/api/v1/openapi.json', (_req, res) => res.json(buildOpenApi(routes)));
 * // in a test: expect(routeKeys(listExpressRoutes(app))).toEqual(routeKeys(routesInDocument(doc)))
 * ```
 */
import { z } from 'zod';
import type { RequestHandler, Router } from 'express';
import type { Role } from './auth.ts';
import { PROBLEM_TYPES } from './problem.ts';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head' | 'options';

export interface ResponseDoc {
  description: string;
  /** A zod schema or a JSON Schema object for an `application/json` body. */
  schema?: z.ZodType | Record<string, unknown>;
  contentType?: string;
}

export interface RouteDoc {
  method: HttpMethod;
  /** Express style: `/api/v1/dags/:dag_id/dagRuns/:dag_run_id`. */
  path: string;
  summary: string;
  /** Role the route needs, or `public` (no token: health, webhooks with their own signature). */
  role: Role | 'public';
  description?: string;
  tags?: string[];
  operationId?: string;
  /** Zod schema of the JSON request body. */
  requestSchema?: z.ZodType;
  /** Content type of the body when it is not JSON (e.g. webhooks take any bytes). */
  requestContentType?: string;
  /** Zod object whose keys are the query parameters. */
  querySchema?: z.ZodObject;
  /** Descriptions of path parameters, by name. */
  params?: Record<string, string>;
  /** By status code. 400/401/403/404 problems are added when they can occur. */
  responses: Record<string | number, ResponseDoc>;
}

export interface OpenApiInfo {
  title?: string;
  version?: string;
  description?: string;
}

/** `/dags/:dag_id/x/*path` → `/dags/{dag_id}/x/{path}`. Optional groups (`{/:x}`) cannot be expressed: register two routes. */
export function toOpenApiPath(expressPath: string): string {
  if (/[{}]/.test(expressPath)) {
    throw new Error(`Route path '${expressPath}' has an optional group, which OpenAPI cannot describe; register one route per variant`);
  }
  return expressPath.replace(/[:*]([A-Za-z_$][A-Za-z0-9_$]*)/g, '{$1}');
}

/** `/dags/{dag_id}` → `/dags/:dag_id` (the inverse of {@link toOpenApiPath}, splats aside). */
export function toExpressPath(openApiPath: string): string {
  return openApiPath.replace(/\{([^}]+)\}/g, ':$1');
}

function pathParamNames(expressPath: string): string[] {
  return [...expressPath.matchAll(/[:*]([A-Za-z_$][A-Za-z0-9_$]*)/g)].map((m) => m[1]);
}

function jsonSchemaOf(schema: z.ZodType | Record<string, unknown>, io: 'input' | 'output'): Record<string, unknown> {
  if (!(schema instanceof z.ZodType)) return schema;
  // Transforms (e.g. comma-separated lists in queries) have no JSON Schema; describe them as their input.
  const js = z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
  delete js.$schema;
  return js;
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['status', 'title', 'detail', 'type'],
  properties: {
    status: { type: 'integer', description: 'HTTP status code' },
    title: { type: 'string' },
    detail: { type: 'string', description: 'What went wrong and what to do' },
    type: { type: 'string', description: 'URI reference of the error kind' },
  },
};

function problemRef(status: number): { $ref: string } {
  return { $ref: `#/components/responses/${PROBLEM_TYPES[status] ?? 'Unknown'}` };
}

/**
 * Build the OpenAPI 3.1 document for `routes`. Each operation carries `x-podflow-role`
 * (the role it needs) and, unless public, the bearer security requirement.
 * Throws if two routes have the same method and path.
 */
export function buildOpenApi(routes: readonly RouteDoc[], info: OpenApiInfo = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const p = toOpenApiPath(r.path);
    const item = (paths[p] ??= {});
    if (item[r.method]) throw new Error(`Route ${r.method.toUpperCase()} ${r.path} is documented twice`);

    const parameters: Record<string, unknown>[] = pathParamNames(r.path).map((name) => ({
      name,
      in: 'path',
      required: true,
      schema: { type: 'string' },
      ...(r.params?.[name] ? { description: r.params[name] } : {}),
    }));
    if (r.querySchema) {
      const qs = jsonSchemaOf(r.querySchema, 'input') as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
      for (const [name, schema] of Object.entries(qs.properties ?? {})) {
        const { description, ...rest } = schema;
        parameters.push({ name, in: 'query', required: qs.required?.includes(name) ?? false, schema: rest, ...(description ? { description } : {}) });
      }
    }

    const responses: Record<string, unknown> = {};
    for (const [status, doc] of Object.entries(r.responses)) {
      responses[status] = {
        description: doc.description,
        ...(doc.schema ? { content: { [doc.contentType ?? 'application/json']: { schema: jsonSchemaOf(doc.schema, 'output') } } } : {}),
      };
    }
    const addProblem = (status: number) => {
      if (!responses[status]) responses[status] = problemRef(status);
    };
    if (r.requestSchema || r.querySchema) addProblem(400);
    if (r.role !== 'public') {
      addProblem(401);
      if (r.role !== 'viewer') addProblem(403);
    }
    if (pathParamNames(r.path).length > 0) addProblem(404);

    const op: Record<string, unknown> = {
      operationId: r.operationId ?? operationIdOf(r.method, r.path),
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      ...(r.tags ? { tags: r.tags } : {}),
      ...(parameters.length ? { parameters } : {}),
      security: r.role === 'public' ? [] : [{ bearerAuth: [] }],
      'x-podflow-role': r.role,
      responses,
    };
    if (r.requestSchema) {
      op.requestBody = {
        required: true,
        content: { [r.requestContentType ?? 'application/json']: { schema: jsonSchemaOf(r.requestSchema, 'input') } },
      };
    } else if (r.requestContentType) {
      op.requestBody = { required: true, content: { [r.requestContentType]: {} } };
    }
    item[r.method] = op;
  }

  const problemResponses: Record<string, unknown> = {};
  for (const [status, name] of Object.entries(PROBLEM_TYPES)) {
    problemResponses[name] = {
      description: `${status} ${name}`,
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: info.title ?? 'Podflow API',
      version: info.version ?? '1.0.0',
      description: info.description ?? "Podflow's REST API, following the paths and field names of Airflow's stable REST API.",
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'A token from PODFLOW_API_TOKENS (role viewer, operator or admin)' },
      },
      schemas: { Error: ERROR_SCHEMA },
      responses: problemResponses,
    },
  };
}

/** `get /api/v1/dags/:dag_id` → `get_api_v1_dags_by_dag_id`; stable and unique per method+path. */
function operationIdOf(method: string, path: string): string {
  const slug = path
    .replace(/[:*]([A-Za-z_$][A-Za-z0-9_$]*)/g, 'by_$1')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return `${method}_${slug}`;
}

export interface RouteKey {
  method: string;
  path: string;
}

/** The (method, Express-style path) pairs an OpenAPI document lists. */
export function routesInDocument(doc: Record<string, unknown>): RouteKey[] {
  const out: RouteKey[] = [];
  const paths = (doc.paths ?? {}) as Record<string, Record<string, unknown>>;
  for (const [p, item] of Object.entries(paths)) {
    for (const method of Object.keys(item)) {
      if (['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'trace'].includes(method)) {
        out.push({ method, path: toExpressPath(p) });
      }
    }
  }
  return sortRoutes(out);
}

/** Sorted `METHOD path` strings, for comparing route sets in tests. */
export function routeKeys(routes: readonly RouteKey[]): string[] {
  return routes.map((r) => `${r.method.toUpperCase()} ${r.path}`).sort();
}

function sortRoutes(routes: RouteKey[]): RouteKey[] {
  return routes.sort((a, b) => (a.path === b.path ? a.method.localeCompare(b.method) : a.path.localeCompare(b.path)));
}

// The slice of router 2.x internals we walk. `rawPath` is the path a layer was registered
// with; a mounted Router is a layer whose handle has a `stack`.
interface LayerLike {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: unknown };
}

function joinPaths(base: string, p: string): string {
  const joined = `${base.replace(/\/+$/, '')}/${p.replace(/^\/+/, '')}`;
  return joined.length > 1 ? joined.replace(/\/+$/, '') : '/';
}

function walk(stack: readonly LayerLike[], base: string, out: RouteKey[]): void {
  for (const layer of stack) {
    const raw = layer.rawPath ?? layer.route?.path;
    const paths = (Array.isArray(raw) ? raw : [raw]).map((p) => (p instanceof RegExp ? String(p) : typeof p === 'string' ? p : '/'));
    if (layer.route) {
      // `_all` is `.all()`; the implicit HEAD for GET is not in `methods`, so it is not listed.
      const methods = Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m]).map((m) => (m === '_all' ? 'all' : m));
      for (const p of paths) for (const method of methods) out.push({ method, path: joinPaths(base, p) });
    } else if (Array.isArray(layer.handle?.stack)) {
      for (const p of paths) walk(layer.handle.stack as LayerLike[], joinPaths(base, p), out);
    }
  }
}

/**
 * Every (method, path) an Express 5 app (or Router) routes, mounted Routers included,
 * sorted by path then method. Plain middleware is not listed, nor the routes of a mounted
 * sub-*app* (`app.use('/x', express())`), whose router Express 5 hides: mount Routers instead.
 */
export function listExpressRoutes(app: unknown): RouteKey[] {
  const a = app as { router?: { stack?: unknown }; stack?: unknown };
  const stack = Array.isArray(a.stack) ? a.stack : a.router?.stack;
  if (!Array.isArray(stack)) throw new Error('listExpressRoutes: expected an Express 5 app or Router (no router stack found)');
  const out: RouteKey[] = [];
  walk(stack as LayerLike[], '', out);
  return sortRoutes(out);
}

/** Anything with Express's verb methods: an app or a Router. */
type Routable = Pick<Router, 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head' | 'options'>;

/**
 * Registers routes and records their docs in one call, so the served OpenAPI document
 * cannot drift from the routes.
 *
 * @example
 * ```ts
 * const book = new RouteBook(app, { before: (doc) => (doc.role === 'public' ? [] : [requireRole(doc.role)]) });
 * book.add({ method: 'get', path: '/api/v1/dags', summary: 'List DAGs', role: 'viewer', responses: { 200: { description: 'DAGs' } } }, listDags);
 * app.get('/api/v1/openapi.json', (_req, res) => res.json(book.document()));
 * ```
 */
export class RouteBook {
  readonly routes: RouteDoc[] = [];

  constructor(
    private readonly target: Routable,
    private readonly opts: { before?: (doc: RouteDoc) => RequestHandler[] } = {},
  ) {}

  /** Register `handlers` for `doc.method doc.path` (after `before(doc)`) and record the doc. */
  add(doc: RouteDoc, ...handlers: RequestHandler[]): this {
    if (handlers.length === 0) throw new Error(`Route ${doc.method.toUpperCase()} ${doc.path} has no handler`);
    this.routes.push(doc);
    const register = this.target[doc.method].bind(this.target) as (path: string, ...h: RequestHandler[]) => unknown;
    register(doc.path, ...(this.opts.before?.(doc) ?? []), ...handlers);
    return this;
  }

  /** The OpenAPI document of every route added so far (plus `extra`, e.g. the document route itself). */
  document(info?: OpenApiInfo, extra: readonly RouteDoc[] = []): Record<string, unknown> {
    return buildOpenApi([...this.routes, ...extra], info);
  }
}

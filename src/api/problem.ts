/**
 * API errors in the shape of Airflow's stable REST API (RFC 7807 problem details):
 * `{ status, title, detail, type }`, sent as `application/problem+json`.
 *
 * Route handlers throw an {@link ApiProblem} (or call `next(problem)`); the
 * {@link problemHandler} middleware, mounted last, turns it and every other error into
 * that JSON shape. Stacks never leave the server: unexpected errors are logged with their
 * stack and answered with a generic 500.
 *
 * @example
 * ```ts
 * app.get('/api/v1/dags/:dag_id', async (req) => {
 *   const dag = await dags.get(req.params.dag_id);
 *   if (!dag) throw notFound(`DAG '${req.params.dag_id}' does not exist; list DAGs with GET /api/v1/dags`);
 *   …
 * });
 * app.use(notFoundHandler());
 * app.use(problemHandler(logger));
 * ```
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';

/** Airflow's error section names; `type` of a problem is `#/components/responses/<name>` in our OpenAPI document. */
export const PROBLEM_TYPES: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthenticated',
  403: 'PermissionDenied',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'AlreadyExists',
  412: 'PreconditionFailed',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  500: 'Unknown',
  503: 'ServiceUnavailable',
};

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The `type` URI reference of a problem with this status (points into the served OpenAPI document). */
export function problemType(status: number): string {
  return `/api/v1/openapi.json#/components/responses/${PROBLEM_TYPES[status] ?? 'Unknown'}`;
}

/** The JSON body of every API error. */
export interface ProblemBody {
  status: number;
  title: string;
  detail: string;
  type: string;
}

/** An error a route handler throws to answer with a given status and a detail saying what to do. */
export class ApiProblem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly type?: string;
  /** Extra response headers (e.g. `WWW-Authenticate` on a 401). */
  readonly headers: Record<string, string>;

  constructor(status: number, detail: string, opts: { title?: string; type?: string; headers?: Record<string, string> } = {}) {
    super(detail);
    this.name = 'ApiProblem';
    this.status = status;
    this.title = opts.title ?? TITLES[status] ?? 'Error';
    this.detail = detail;
    this.type = opts.type;
    this.headers = opts.headers ?? {};
  }

  toJSON(): ProblemBody {
    return { status: this.status, title: this.title, detail: this.detail, type: this.type ?? problemType(this.status) };
  }
}

export function badRequest(detail: string): ApiProblem {
  return new ApiProblem(400, detail);
}

export function notFound(detail: string): ApiProblem {
  return new ApiProblem(404, detail);
}

export function conflict(detail: string): ApiProblem {
  return new ApiProblem(409, detail);
}

/** 401 with the `WWW-Authenticate` challenge RFC 6750 asks for. */
export function unauthorized(
  detail = 'This route needs a bearer token: send `Authorization: Bearer <token>` (tokens come from PODFLOW_API_TOKENS; `podflow up` prints a generated one).',
  error?: 'invalid_token',
): ApiProblem {
  const challenge = error ? `Bearer realm="podflow", error="${error}"` : 'Bearer realm="podflow"';
  return new ApiProblem(401, detail, { headers: { 'WWW-Authenticate': challenge } });
}

export function forbidden(detail: string): ApiProblem {
  return new ApiProblem(403, detail);
}

/** The minimal logger the handler needs (a pino Logger fits). */
export interface ProblemLogger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

interface HttpErrorLike {
  status?: unknown;
  statusCode?: unknown;
  type?: unknown;
  expose?: unknown;
  message?: unknown;
  limit?: unknown;
  length?: unknown;
}

/**
 * Map any thrown value to a problem. Body-parser errors (malformed JSON, too large,
 * unsupported charset) become client errors with a detail saying how to fix the request;
 * anything unknown becomes an opaque 500.
 */
export function toProblem(err: unknown): ApiProblem {
  if (err instanceof ApiProblem) return err;
  if (isZodError(err)) return new ApiProblem(400, zodIssuesDetail(err.issues));
  const e = (typeof err === 'object' && err !== null ? err : {}) as HttpErrorLike;
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  switch (e.type) {
    case 'entity.parse.failed':
      return badRequest(
        `Request body is not valid JSON (${String(e.message)}). Send a JSON document with Content-Type: application/json.`,
      );
    case 'entity.too.large':
      return new ApiProblem(
        413,
        `Request body is ${String(e.length)} bytes, over the limit of ${String(e.limit)} bytes; send a smaller body.`,
      );
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiProblem(415, `${String(e.message)}; send the body as UTF-8 JSON.`);
    case 'request.aborted':
      return badRequest('The client closed the connection before the request body was complete.');
  }
  // Errors from http-errors (body-parser, router) mark client-safe messages with `expose`.
  if (status >= 400 && status < 500 && e.expose === true && typeof e.message === 'string') {
    return new ApiProblem(status, e.message);
  }
  return new ApiProblem(500, 'The server hit an unexpected error; it is logged on the server. Retry, and report it if it persists.');
}

function isZodError(err: unknown): err is { issues: ZodIssueLike[] } {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'ZodError' &&
    Array.isArray((err as { issues?: unknown }).issues)
  );
}

/** The part of a zod issue the detail text needs. */
export interface ZodIssueLike {
  path: PropertyKey[];
  message: string;
  code?: string;
  keys?: string[];
}

/** "field 'a.b': message; field 'c': message" — each bad field named, in order. */
export function zodIssuesDetail(issues: readonly ZodIssueLike[]): string {
  return issues
    .map((i) => {
      if (i.code === 'unrecognized_keys' && i.keys?.length) {
        const where = i.path.length ? ` in '${i.path.map(String).join('.')}'` : '';
        return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}${where}`;
      }
      const field = i.path.length ? i.path.map(String).join('.') : '(body)';
      return `field '${field}': ${i.message}`;
    })
    .join('; ');
}

/** Answer a problem as `application/problem+json`. */
export function sendProblem(res: import('express').Response, problem: ApiProblem): void {
  for (const [k, v] of Object.entries(problem.headers)) res.setHeader(k, v);
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem.toJSON()));
}

/** A catch-all for unknown paths, mounted after every route and before {@link problemHandler}. */
export function notFoundHandler(): RequestHandler {
  return (req, _res, next) => {
    next(notFound(`No route ${req.method} ${req.path}; the routes are listed in GET /api/v1/openapi.json.`));
  };
}

/**
 * Express 5 error middleware answering every error as `{ status, title, detail, type }`.
 * 5xx are logged with their stack (never sent); 4xx are logged at warn without one.
 */
export function problemHandler(logger: ProblemLogger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err);
    const problem = toProblem(err);
    if (problem.status >= 500) {
      logger.error({ err, method: req.method, path: req.path }, 'API request failed');
    } else {
      logger.warn({ status: problem.status, method: req.method, path: req.path, detail: problem.detail }, 'API request rejected');
    }
    sendProblem(res, problem);
  };
}

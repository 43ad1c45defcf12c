import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authMiddleware, authenticate, defaultRoleFor, findToken, generateToken, parseTokens, requireRole, roleAtLeast, TokenConfigError } from '../../src/api/auth.ts';
import { ApiProblem, notFoundHandler, problemHandler, type ProblemLogger } from '../../src/api/problem.ts';
import { parseBody, patchDagBody } from '../../src/api/validation.ts';

const viewerToken = 'viewer-token-0123456789';
const operatorToken = 'operator-token-0123456789';
const adminToken = 'admin-token-0123456789ab';

describe('parseTokens', () => {
  it('parses role:token pairs, keeping only a digest and a short id', () => {
    const tokens = parseTokens(` viewer:${viewerToken}, operator:${operatorToken} ,admin:${adminToken}`);
    expect(tokens.map((t) => t.role)).toEqual(['viewer', 'operator', 'admin']);
    expect(tokens.every((t) => t.digest.length === 32 && /^[0-9a-f]{8}$/.test(t.id))).toBe(true);
    expect(JSON.stringify(tokens)).not.toContain(viewerToken);
  });

  it.each([
    ['viewer:short', 'PODFLOW_API_TOKENS entry 1 (role viewer) has a token of 5 characters; tokens need at least 16. Generate one with `openssl rand -hex 32`.'],
    [`root:${viewerToken}`, "PODFLOW_API_TOKENS entry 1 has unknown role 'root': use one of viewer, operator, admin"],
    [`viewer:${viewerToken},${operatorToken}`, 'PODFLOW_API_TOKENS entry 2 has no role: write it as role:token with role one of viewer, operator, admin'],
    [`viewer:${viewerToken},admin:${viewerToken}`, 'PODFLOW_API_TOKENS entry 2 repeats a token listed earlier; give each role its own token'],
  ])('rejects %s with a message saying what to fix', (spec, message) => {
    expect(() => parseTokens(spec)).toThrow(new TokenConfigError(message));
  });

  it('rejects an empty list', () => {
    expect(() => parseTokens(' , ')).toThrow(TokenConfigError);
  });
});

describe('tokens and roles', () => {
  it('generates distinct 256-bit tokens that parseTokens accepts', () => {
    const a = generateToken();
    const b = generateToken();
    expect(a).toMatch(/^pf_[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(parseTokens(`admin:${a}`)[0].role).toBe('admin');
  });

  it('finds a token by value and nothing for a prefix or unknown token', () => {
    const tokens = parseTokens(`viewer:${viewerToken},operator:${operatorToken}`);
    expect(findToken(tokens, operatorToken)?.role).toBe('operator');
    expect(findToken(tokens, operatorToken.slice(0, -1))).toBe(undefined);
    expect(findToken(tokens, '')).toBe(undefined);
  });

  it('orders roles viewer < operator < admin and maps methods to the role they need', () => {
    expect([roleAtLeast('viewer', 'operator'), roleAtLeast('operator', 'operator'), roleAtLeast('admin', 'operator')]).toEqual([false, true, true]);
    expect(['GET', 'HEAD', 'OPTIONS', 'POST', 'PATCH', 'DELETE', 'PUT'].map(defaultRoleFor)).toEqual([
      'viewer', 'viewer', 'viewer', 'operator', 'operator', 'operator', 'operator',
    ]);
  });
});

describe('auth and problem middleware over HTTP', () => {
  let server: Server;
  let base: string;
  const logged: { level: string; obj: object }[] = [];
  const logger: ProblemLogger = {
    error: (obj) => logged.push({ level: 'error', obj }),
    warn: (obj) => logged.push({ level: 'warn', obj }),
  };

  beforeAll(async () => {
    const tokens = parseTokens(`viewer:${viewerToken},operator:${operatorToken},admin:${adminToken}`);
    const app = express();
    app.use(express.json({ limit: '1kb' }));
    app.get('/health', (_req, res) => res.json({ status: 'healthy' }));
    const api = express.Router();
    api.use(authMiddleware({ tokens }));
    api.get('/dags', (_req, res) => res.json({ dags: [], total_entries: 0 }));
    api.patch('/dags/:dag_id', (req, res) => {
      const body = parseBody(patchDagBody, req.body);
      res.json({ dag_id: req.params.dag_id, is_paused: body.is_paused });
    });
    api.delete('/pools/:name', requireRole('admin'), (_req, res) => res.status(204).end());
    api.get('/boom', () => {
      throw new Error('secret internal detail at /srv/podflow/x.ts:12');
    });
    api.get('/gone', () => {
      throw new ApiProblem(404, "DAG 'gone' does not exist");
    });
    app.use('/api/v1', api);
    const bare = express.Router();
    bare.get('/who', authenticate(tokens), (_req, res) => res.json(res.locals.principal));
    app.use('/bare', bare);
    app.use(notFoundHandler());
    app.use(problemHandler(logger));
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((r) => server.once('listening', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  const call = (method: string, path: string, token?: string, body?: string) =>
    fetch(base + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body,
    });

  it('answers 401 with a WWW-Authenticate challenge without a token', async () => {
    const res = await call('GET', '/api/v1/dags');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="podflow"');
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toEqual({
      status: 401,
      title: 'Unauthorized',
      detail: 'This route needs a bearer token: send `Authorization: Bearer <token>` (tokens come from PODFLOW_API_TOKENS; `podflow up` prints a generated one).',
      type: '/api/v1/openapi.json#/components/responses/Unauthenticated',
    });
  });

  it('answers 401 invalid_token for an unknown token and for a non-bearer header', async () => {
    const res = await call('GET', '/api/v1/dags', 'not-a-configured-token-123');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="podflow", error="invalid_token"');
    const basic = await fetch(base + '/api/v1/dags', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toBe('Bearer realm="podflow", error="invalid_token"');
  });

  it('lets a viewer read', async () => {
    const res = await call('GET', '/api/v1/dags', viewerToken);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ dags: [], total_entries: 0 });
  });

  it('answers 403 to a viewer token on a mutating route', async () => {
    const res = await call('PATCH', '/api/v1/dags/etl', viewerToken, '{"is_paused":true}');
    expect(res.status).toBe(403);
    const body = (await res.json()) as { detail: string; title: string };
    expect(body.title).toBe('Forbidden');
    expect(body.detail).toMatch(/^PATCH \/dags\/etl needs the operator role; this token \(id [0-9a-f]{8}\) has viewer\./);
  });

  it('lets operator and admin tokens mutate', async () => {
    for (const token of [operatorToken, adminToken]) {
      const res = await call('PATCH', '/api/v1/dags/etl', token, '{"is_paused":true}');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ dag_id: 'etl', is_paused: true });
    }
  });

  it('requires admin where a route asks for it', async () => {
    expect((await call('DELETE', '/api/v1/pools/gpu', operatorToken)).status).toBe(403);
    expect((await call('DELETE', '/api/v1/pools/gpu', adminToken)).status).toBe(204);
  });

  it('authenticate alone records who called', async () => {
    const res = await call('GET', '/bare/who', operatorToken);
    const body = (await res.json()) as { role: string; tokenId: string };
    expect(body.role).toBe('operator');
    expect(body.tokenId).toBe(parseTokens(`operator:${operatorToken}`)[0].id);
  });

  it('answers malformed JSON with 400 and a clear detail', async () => {
    const res = await call('PATCH', '/api/v1/dags/etl', operatorToken, '{"is_paused": tru');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { status: number; title: string; detail: string; type: string };
    expect(body.title).toBe('Bad Request');
    expect(body.type).toBe('/api/v1/openapi.json#/components/responses/BadRequest');
    expect(body.detail).toMatch(/^Request body is not valid JSON \(.+\)\. Send a JSON document with Content-Type: application\/json\.$/);
  });

  it('answers an invalid body with 400 naming each bad field', async () => {
    const res = await call('PATCH', '/api/v1/dags/etl', operatorToken, '{"is_paused":"yes","paused":1}');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toBe(
      "Invalid request body: field 'is_paused': Invalid input: expected boolean, received string; unknown field 'paused'",
    );
  });

  it('answers a body over the limit with 413', async () => {
    const big = JSON.stringify({ is_paused: true, pad: 'x'.repeat(2000) });
    const res = await call('PATCH', '/api/v1/dags/etl', operatorToken, big);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { detail: string }).detail).toBe(`Request body is ${big.length} bytes, over the limit of 1024 bytes; send a smaller body.`);
  });

  it('answers an unexpected error with an opaque 500 and logs the stack', async () => {
    logged.length = 0;
    const res = await call('GET', '/api/v1/boom', viewerToken);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain('secret internal detail');
    expect(text).not.toContain('at ');
    expect(JSON.parse(text)).toEqual({
      status: 500,
      title: 'Internal Server Error',
      detail: 'The server hit an unexpected error; it is logged on the server. Retry, and report it if it persists.',
      type: '/api/v1/openapi.json#/components/responses/Unknown',
    });
    expect(logged.map((l) => l.level)).toEqual(['error']);
    expect(((logged[0].obj as { err: Error }).err).message).toContain('secret internal detail');
  });

  it('answers a thrown ApiProblem and an unknown path as 404 problems', async () => {
    expect(await (await call('GET', '/api/v1/gone', viewerToken)).json()).toEqual({
      status: 404,
      title: 'Not Found',
      detail: "DAG 'gone' does not exist",
      type: '/api/v1/openapi.json#/components/responses/NotFound',
    });
    const res = await call('GET', '/nowhere');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { detail: string }).detail).toBe('No route GET /nowhere; the routes are listed in GET /api/v1/openapi.json.');
  });

  it('leaves public routes outside the authenticated router open', async () => {
    expect((await call('GET', '/health')).status).toBe(200);
  });
});

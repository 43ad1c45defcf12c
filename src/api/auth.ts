/**
 * Bearer-token auth for the REST API with three ordered roles: viewer < operator < admin.
 * Reads need viewer; every mutating route needs operator (admin passes everywhere).
 *
 * Tokens come from config (`PODFLOW_API_TOKENS=viewer:…,operator:…`); `podflow up` on a
 * laptop generates one with {@link generateToken} and prints it instead of running open.
 *
 * @example
 * ```ts
 * const tokens = parseTokens(config.apiTokens ?? `admin:${generateToken()}`);
 * app.use('/api/v1', authMiddleware({ tokens }));             // viewer for GET, operator otherwise
 * app.delete('/api/v1/pools/:pool_name', requireRole('admin'), handler);
 * ```
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { forbidden, unauthorized } from './problem.ts';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Shortest token accepted: anything shorter is guessable or a placeholder. */
export const MIN_TOKEN_LENGTH = 16;

/** Whether `have` is at least `need` in viewer < operator < admin. */
export function roleAtLeast(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

/** One configured token. Only its SHA-256 is kept, so the compare is over equal-length digests. */
export interface TokenEntry {
  role: Role;
  /** First 8 hex chars of the token's SHA-256: names the token in logs without revealing it. */
  id: string;
  digest: Buffer;
}

/** Who made a request; set on `res.locals.principal` by {@link authenticate}. */
export interface Principal {
  role: Role;
  tokenId: string;
}

/** Thrown by {@link parseTokens}; the message names the entry and the fix. */
export class TokenConfigError extends Error {
  readonly code = 'TOKEN_CONFIG_INVALID';
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * Parse `role:token,role:token` (whitespace around entries ignored). Rejects unknown
 * roles, tokens shorter than 16 characters and a token listed twice.
 *
 * @param source names the setting in error messages (default `PODFLOW_API_TOKENS`).
 */
export function parseTokens(spec: string, source = 'PODFLOW_API_TOKENS'): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const seen = new Set<string>();
  const parts = spec.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) {
    throw new TokenConfigError(`${source} is empty: give at least one token as role:token (roles ${ROLES.join(', ')}), e.g. operator:${generateToken()}`);
  }
  parts.forEach((part, i) => {
    const colon = part.indexOf(':');
    const where = `${source} entry ${i + 1}`;
    if (colon < 0) {
      throw new TokenConfigError(`${where} has no role: write it as role:token with role one of ${ROLES.join(', ')}`);
    }
    const role = part.slice(0, colon).trim();
    const token = part.slice(colon + 1).trim();
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new TokenConfigError(`${where} has unknown role '${role}': use one of ${ROLES.join(', ')}`);
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new TokenConfigError(
        `${where} (role ${role}) has a token of ${token.length} characters; tokens need at least ${MIN_TOKEN_LENGTH}. Generate one with \`openssl rand -hex 32\`.`,
      );
    }
    if (/\s/.test(token)) throw new TokenConfigError(`${where} (role ${role}) contains whitespace; tokens are sent in a header and cannot`);
    const digest = digestOf(token);
    const id = digest.toString('hex').slice(0, 8);
    if (seen.has(id)) throw new TokenConfigError(`${where} repeats a token listed earlier; give each role its own token`);
    seen.add(id);
    entries.push({ role: role as Role, id, digest });
  });
  return entries;
}

/** A fresh random token: `pf_` and 43 base64url characters (256 bits). */
export function generateToken(): string {
  return `pf_${randomBytes(32).toString('base64url')}`;
}

/**
 * The entry matching `token`, or undefined. Every entry is compared (no early exit) with
 * timingSafeEqual over SHA-256 digests, so neither a token's content nor its length nor
 * its position in the list shows in the response time.
 */
export function findToken(tokens: readonly TokenEntry[], token: string): TokenEntry | undefined {
  const d = digestOf(token);
  let found: TokenEntry | undefined;
  for (const entry of tokens) {
    if (timingSafeEqual(entry.digest, d) && !found) found = entry;
  }
  return found;
}

/** The role a route needs when none is given: viewer for GET/HEAD/OPTIONS, operator for anything else. */
export function defaultRoleFor(method: string): Role {
  const m = method.toUpperCase();
  return m === 'GET' || m === 'HEAD' || m === 'OPTIONS' ? 'viewer' : 'operator';
}

function bearerToken(req: Request): string | undefined | null {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  return m ? m[1] : null;
}

/**
 * Identify the caller from `Authorization: Bearer <token>` and put a {@link Principal}
 * on `res.locals.principal`. 401 with `WWW-Authenticate` when the header is missing,
 * malformed or the token is unknown. Checks no role (see {@link requireRole}).
 */
export function authenticate(tokens: readonly TokenEntry[]): RequestHandler {
  return (req, res, next) => {
    const token = bearerToken(req);
    if (token === undefined) return next(unauthorized());
    if (token === null) {
      return next(unauthorized('The Authorization header is not `Bearer <token>`; send the token as `Authorization: Bearer <token>`.', 'invalid_token'));
    }
    const entry = findToken(tokens, token);
    if (!entry) {
      const hint = tokens.length === 0 ? ' No tokens are configured: set PODFLOW_API_TOKENS.' : '';
      return next(unauthorized(`The bearer token is not one of the configured API tokens (PODFLOW_API_TOKENS).${hint}`, 'invalid_token'));
    }
    const principal: Principal = { role: entry.role, tokenId: entry.id };
    res.locals.principal = principal;
    next();
  };
}

/** The principal {@link authenticate} stored, if any. */
export function principalOf(res: Response): Principal | undefined {
  return res.locals.principal as Principal | undefined;
}

/**
 * 403 unless the authenticated caller's role is at least `role`. Must run after
 * {@link authenticate}; without a principal it answers 401.
 */
export function requireRole(role: Role): RequestHandler {
  return (req, res, next) => {
    const p = principalOf(res);
    if (!p) return next(unauthorized());
    if (!roleAtLeast(p.role, role)) {
      return next(
        forbidden(`${req.method} ${req.path} needs the ${role} role; this token (id ${p.tokenId}) has ${p.role}. Use a token with role ${role} or higher.`),
      );
    }
    next();
  };
}

export interface AuthOptions {
  tokens: readonly TokenEntry[];
  /** Role every request must have; default: viewer for GET/HEAD/OPTIONS, operator otherwise. */
  required?: Role;
}

/** {@link authenticate} then the role check, in one middleware. */
export function authMiddleware(opts: AuthOptions): RequestHandler {
  const identify = authenticate(opts.tokens);
  return (req, res, next) => {
    identify(req, res, (err?: unknown) => {
      if (err) return next(err);
      const need = opts.required ?? defaultRoleFor(req.method);
      requireRole(need)(req, res, next);
    });
  };
}

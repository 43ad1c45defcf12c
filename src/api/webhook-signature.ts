/**
 * Webhook signature verification for `POST /hooks/{dag_id}`: HMAC-SHA256 over the raw
 * request body, in two formats.
 *
 * - Podflow's own, Stripe style: `X-Podflow-Signature: t=<unix seconds>,v1=<hex>` where
 *   the MAC covers `${t}.${body}`, so the timestamp is authenticated and a delivery older
 *   (or further in the future) than the replay window is refused. Several `v1=` entries
 *   are allowed (a sender signing with an old and a new secret during rotation).
 * - GitHub's: `X-Hub-Signature-256: sha256=<hex>` over the body alone, so a repository
 *   webhook can point at Podflow unchanged. GitHub signs no timestamp: replay protection
 *   there rests on de-duplicating the delivery id (`X-GitHub-Delivery`, which GitHub keeps
 *   on redeliveries) with {@link DeliveryDedup}. That header is not signed, so it stops
 *   resends, not an attacker who captured a delivery and changes the id; when that matters,
 *   sign with `X-Podflow-Signature`, whose timestamp bounds any replay to the window.
 *
 * When both headers are present the Podflow one is checked and the GitHub one ignored,
 * so a bad timestamped signature cannot fall back to the weaker format.
 *
 * @example
 * ```ts
 * app.post('/hooks/:dag_id', express.raw({ type: '*\/*', limit: '1mb' }), async (req, res) => {
 *   const v = verifyWebhook({ rawBody: req.body, headers: req.headers, secret });
 *   if (!v.ok) throw new ApiProblem(v.status, v.reason);
 *   if (!(await dedup.claim(req.params.dag_id, v.deliveryId))) return res.status(200).json({ duplicate: true });
 *   …
 * });
 * ```
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Redis } from 'ioredis';

export const PODFLOW_SIGNATURE_HEADER = 'x-podflow-signature';
export const GITHUB_SIGNATURE_HEADER = 'x-hub-signature-256';
export const PODFLOW_DELIVERY_HEADER = 'x-podflow-delivery';
export const GITHUB_DELIVERY_HEADER = 'x-github-delivery';

/** Longest delivery id kept verbatim; longer ids are hashed into the de-dup key. */
const MAX_DELIVERY_ID = 128;

export interface VerifyWebhookInput {
  /** The exact bytes received (express.raw()), not a re-serialized JSON object. */
  rawBody: Buffer;
  headers: IncomingHttpHeaders;
  /** The DAG's or the global secret; several during a rotation (any one may match). */
  secret: string | readonly string[] | undefined;
  /** Current time, for tests; default `new Date()`. */
  now?: Date;
  /** Seconds a Podflow-signed delivery stays acceptable either side of `now`; default 300. */
  replayWindowSec?: number;
}

export type VerifyWebhookResult =
  | {
      ok: true;
      /** Id to de-duplicate on: the delivery header, else one derived from the signed content. */
      deliveryId: string;
      format: 'podflow' | 'github';
      /** Signed timestamp (unix seconds) of a Podflow delivery. */
      timestamp?: number;
    }
  | { ok: false; status: 400 | 401 | 403; reason: string };

function hmac(secret: string, data: Buffer | string): Buffer {
  return createHmac('sha256', secret).update(data).digest();
}

/** Constant-time: both sides are 32-byte digests, and every secret is tried. */
function anyMatches(secrets: readonly string[], payload: Buffer, given: readonly Buffer[]): boolean {
  let ok = false;
  for (const s of secrets) {
    const expected = hmac(s, payload);
    for (const g of given) {
      if (g.length === expected.length && timingSafeEqual(g, expected)) ok = true;
    }
  }
  return ok;
}

function single(headers: IncomingHttpHeaders, name: string): string | undefined | null {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.length === 1 ? v[0] : null;
  return v;
}

const HEX64 = /^[0-9a-f]{64}$/i;

function deliveryIdFrom(headers: IncomingHttpHeaders): string | undefined | null {
  for (const name of [PODFLOW_DELIVERY_HEADER, GITHUB_DELIVERY_HEADER]) {
    const v = single(headers, name);
    if (v === null) return null;
    if (v !== undefined && v.trim() !== '') {
      const id = v.trim();
      return id.length <= MAX_DELIVERY_ID ? id : `sha256:${createHash('sha256').update(id).digest('hex')}`;
    }
  }
  return undefined;
}

/**
 * Verify a webhook delivery. Never throws for bad input: the result says which status
 * to answer (400 malformed, 401 missing/wrong signature or outside the replay window,
 * 403 no secret configured) and why.
 */
export function verifyWebhook(input: VerifyWebhookInput): VerifyWebhookResult {
  const { rawBody, headers } = input;
  if (!Buffer.isBuffer(rawBody)) {
    // A parsed object cannot be verified: re-serializing it changes the bytes that were signed.
    throw new TypeError('verifyWebhook needs the raw body as a Buffer: mount express.raw({ type: () => true, limit }) on the hook route before any JSON parser');
  }
  const windowSec = input.replayWindowSec ?? 300;
  const secrets = (typeof input.secret === 'string' ? [input.secret] : (input.secret ?? [])).filter((s) => s !== '');
  if (secrets.length === 0) {
    return {
      ok: false,
      status: 403,
      reason: 'Webhooks are disabled: no secret is configured. Set PODFLOW_WEBHOOK_SECRET (or the DAG\'s webhook secret) and sign deliveries with it.',
    };
  }
  const delivery = deliveryIdFrom(headers);
  if (delivery === null) return { ok: false, status: 400, reason: 'The delivery id header is repeated; send one X-Podflow-Delivery or X-GitHub-Delivery.' };

  const podflow = single(headers, PODFLOW_SIGNATURE_HEADER);
  if (podflow === null) return { ok: false, status: 400, reason: 'X-Podflow-Signature is repeated; send it once.' };
  if (podflow !== undefined) {
    const parsed = parsePodflowSignature(podflow);
    if (typeof parsed === 'string') return { ok: false, status: 400, reason: `X-Podflow-Signature is malformed: ${parsed}. Expected t=<unix seconds>,v1=<64 hex chars>.` };
    const nowSec = Math.floor((input.now ?? new Date()).getTime() / 1000);
    const age = nowSec - parsed.t;
    if (age > windowSec) {
      return { ok: false, status: 401, reason: `The signature timestamp is ${age}s old, outside the ${windowSec}s replay window; sign each delivery with the current time (and check the sender's clock).` };
    }
    if (-age > windowSec) {
      return { ok: false, status: 401, reason: `The signature timestamp is ${-age}s in the future, outside the ${windowSec}s replay window; check the sender's clock.` };
    }
    const payload = Buffer.concat([Buffer.from(`${parsed.t}.`, 'utf8'), rawBody]);
    if (!anyMatches(secrets, payload, parsed.v1)) {
      return { ok: false, status: 401, reason: 'X-Podflow-Signature does not match the body: the secret differs or the body was changed. Sign `${t}.${raw body}` with HMAC-SHA256 and the configured secret.' };
    }
    const deliveryId = delivery ?? `v1:${parsed.t}:${parsed.v1[0].toString('hex').slice(0, 32)}`;
    return { ok: true, deliveryId, format: 'podflow', timestamp: parsed.t };
  }

  const github = single(headers, GITHUB_SIGNATURE_HEADER);
  if (github === null) return { ok: false, status: 400, reason: 'X-Hub-Signature-256 is repeated; send it once.' };
  if (github !== undefined) {
    const m = /^sha256=([0-9a-fA-F]+)$/.exec(github.trim());
    if (!m || !HEX64.test(m[1])) return { ok: false, status: 400, reason: 'X-Hub-Signature-256 is malformed: expected sha256=<64 hex chars>.' };
    if (!anyMatches(secrets, rawBody, [Buffer.from(m[1], 'hex')])) {
      return { ok: false, status: 401, reason: 'X-Hub-Signature-256 does not match the body: the webhook\'s secret differs from the configured one, or the body was changed.' };
    }
    // Without a delivery header, identical bodies count as one delivery (GitHub always sends one).
    const deliveryId = delivery ?? `body:${createHash('sha256').update(rawBody).digest('hex')}`;
    return { ok: true, deliveryId, format: 'github' };
  }

  return {
    ok: false,
    status: 401,
    reason: 'The delivery is not signed: send X-Podflow-Signature: t=<unix>,v1=<hex HMAC-SHA256 of `${t}.${body}`> or GitHub\'s X-Hub-Signature-256.',
  };
}

/** `t=…,v1=…[,v1=…]` → parts, or a string saying what is wrong. Unknown keys (future schemes) are ignored. */
function parsePodflowSignature(header: string): { t: number; v1: Buffer[] } | string {
  let t: number | undefined;
  const v1: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return `'${part.trim().slice(0, 20)}' is not key=value`;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (t !== undefined) return 't is given twice';
      if (!/^\d{1,12}$/.test(value)) return 't is not whole unix seconds';
      t = Number(value);
    } else if (key === 'v1') {
      if (!HEX64.test(value)) return 'v1 is not 64 hex characters';
      v1.push(Buffer.from(value, 'hex'));
    }
  }
  if (t === undefined) return 't is missing';
  if (v1.length === 0) return 'v1 is missing';
  return { t, v1 };
}

/**
 * The `X-Podflow-Signature` value for `body` signed with `secret` at unix time `t`
 * (default now), for clients and tests.
 */
export function signPodflow(body: Buffer | string, secret: string, t = Math.floor(Date.now() / 1000)): string {
  const payload = Buffer.concat([Buffer.from(`${t}.`, 'utf8'), typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
  return `t=${t},v1=${createHmac('sha256', secret).update(payload).digest('hex')}`;
}

/** The `X-Hub-Signature-256` value GitHub would send for `body`. */
export function signGithub(body: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Remembers delivery ids per DAG for `ttlSec`, so a resent webhook starts one run.
 * Keys: `${prefix}:webhook:delivery:${dagId}:${deliveryId}`.
 */
export class DeliveryDedup {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSec = 7 * 24 * 3600,
  ) {}

  private key(dagId: string, deliveryId: string): string {
    return `${this.prefix}:webhook:delivery:${dagId}:${deliveryId}`;
  }

  /** True for the first claim of this delivery id on this DAG within the TTL, false for a resend (atomic SET NX EX). */
  async claim(dagId: string, deliveryId: string): Promise<boolean> {
    const r = await this.redis.set(this.key(dagId, deliveryId), '', 'EX', this.ttlSec, 'NX');
    return r === 'OK';
  }

  /** Record the run a claimed delivery started, so a resend can answer with it. Keeps the claim's TTL. */
  async setRunId(dagId: string, deliveryId: string, runId: string): Promise<void> {
    await this.redis.set(this.key(dagId, deliveryId), runId, 'KEEPTTL', 'XX');
  }

  /** The run a delivery started ('' if claimed but not yet recorded), or null if unknown. */
  async runIdOf(dagId: string, deliveryId: string): Promise<string | null> {
    return this.redis.get(this.key(dagId, deliveryId));
  }

  /** Drop a claim when starting the run failed, so the sender's retry is not taken for a duplicate. */
  async release(dagId: string, deliveryId: string): Promise<void> {
    await this.redis.del(this.key(dagId, deliveryId));
  }
}

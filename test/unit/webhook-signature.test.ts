import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { Redis } from 'ioredis';
import { DeliveryDedup, signGithub, signPodflow, verifyWebhook } from '../../src/api/webhook-signature.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

const secret = 'whsec_0123456789abcdef0123';
const body = Buffer.from('{"ref":"refs/heads/main","after":"abc123"}');
const now = new Date('2026-12-03T12:00:00Z');
const nowSec = Math.floor(now.getTime() / 1000);

describe('verifyWebhook', () => {
  it('accepts a Podflow signature over t.body and returns the delivery id header', () => {
    const r = verifyWebhook({
      rawBody: body,
      headers: { 'x-podflow-signature': signPodflow(body, secret, nowSec - 10), 'x-podflow-delivery': 'd-1' },
      secret,
      now,
    });
    expect(r).toEqual({ ok: true, deliveryId: 'd-1', format: 'podflow', timestamp: nowSec - 10 });
  });

  it('accepts a GitHub X-Hub-Signature-256 and uses X-GitHub-Delivery', () => {
    const sig = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    expect(signGithub(body, secret)).toBe(sig);
    const r = verifyWebhook({ rawBody: body, headers: { 'x-hub-signature-256': sig, 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' }, secret, now });
    expect(r).toEqual({ ok: true, deliveryId: '72d3162e-cc78-11e3-81ab-4c9367dc0958', format: 'github' });
  });

  it('accepts any of several secrets during a rotation', () => {
    const r = verifyWebhook({ rawBody: body, headers: { 'x-hub-signature-256': signGithub(body, 'new-secret-0123456789') }, secret: [secret, 'new-secret-0123456789'], now });
    expect(r.ok).toBe(true);
  });

  it('derives a delivery id from the signed content when no delivery header is sent', () => {
    const header = signPodflow(body, secret, nowSec);
    const r = verifyWebhook({ rawBody: body, headers: { 'x-podflow-signature': header }, secret, now });
    expect(r).toEqual({ ok: true, deliveryId: `v1:${nowSec}:${header.split('v1=')[1].slice(0, 32)}`, format: 'podflow', timestamp: nowSec });
  });

  it('rejects a signature made with the wrong key (both formats)', () => {
    const p = verifyWebhook({ rawBody: body, headers: { 'x-podflow-signature': signPodflow(body, 'wrong-secret-0123456789', nowSec) }, secret, now });
    expect(p).toMatchObject({ ok: false, status: 401 });
    const g = verifyWebhook({ rawBody: body, headers: { 'x-hub-signature-256': signGithub(body, 'wrong-secret-0123456789') }, secret, now });
    expect(g).toMatchObject({ ok: false, status: 401 });
    if (!g.ok) expect(g.reason).toContain('does not match the body');
  });

  it('rejects a tampered body', () => {
    const tampered = Buffer.from('{"ref":"refs/heads/main","after":"evil00"}');
    const p = verifyWebhook({ rawBody: tampered, headers: { 'x-podflow-signature': signPodflow(body, secret, nowSec) }, secret, now });
    expect(p).toMatchObject({ ok: false, status: 401 });
    const g = verifyWebhook({ rawBody: tampered, headers: { 'x-hub-signature-256': signGithub(body, secret) }, secret, now });
    expect(g).toMatchObject({ ok: false, status: 401 });
  });

  it('rejects a re-dated signature: the timestamp is part of the MAC', () => {
    const old = signPodflow(body, secret, nowSec - 1000);
    const redated = old.replace(`t=${nowSec - 1000}`, `t=${nowSec}`);
    expect(verifyWebhook({ rawBody: body, headers: { 'x-podflow-signature': redated }, secret, now })).toMatchObject({ ok: false, status: 401 });
  });

  it('rejects a stale timestamp outside the replay window', () => {
    const r = verifyWebhook({ rawBody: body, headers: { 'x-podflow-signature': signPodflow(body, secret, nowSec - 301) }, secret, now });
    expect(r).toEqual({
      ok: false,
      status: 401,
      reason: "The signature timestamp is 301s old, outside the 300s replay window; sign each delivery with the current time (and check the sender's clock).",
    });
    const edge = verifyWebhook({ rawBody: body, headers: { 'x-podflow-signature': signPodflow(body, secret, nowSec - 300) }, secret, now });
    expect(edge.ok).toBe(true);
  });

  it('rejects a timestamp further in the future than the window', () => {
    const r = verifyWebhook({ rawBody: body, headers: { 'x-podflow-signature': signPodflow(body, secret, nowSec + 61) }, secret, now, replayWindowSec: 60 });
    expect(r).toEqual({ ok: false, status: 401, reason: "The signature timestamp is 61s in the future, outside the 60s replay window; check the sender's clock." });
  });

  it('rejects a delivery without a signature header', () => {
    const r = verifyWebhook({ rawBody: body, headers: { 'content-type': 'application/json' }, secret, now });
    expect(r).toMatchObject({ ok: false, status: 401 });
    if (!r.ok) expect(r.reason).toContain('not signed');
  });

  it.each([
    ['x-podflow-signature', 'v1=abc', 'X-Podflow-Signature is malformed: v1 is not 64 hex characters. Expected t=<unix seconds>,v1=<64 hex chars>.'],
    ['x-podflow-signature', `v1=${'a'.repeat(64)}`, 'X-Podflow-Signature is malformed: t is missing. Expected t=<unix seconds>,v1=<64 hex chars>.'],
    ['x-podflow-signature', `t=soon,v1=${'a'.repeat(64)}`, 'X-Podflow-Signature is malformed: t is not whole unix seconds. Expected t=<unix seconds>,v1=<64 hex chars>.'],
    ['x-podflow-signature', `t=${nowSec}`, 'X-Podflow-Signature is malformed: v1 is missing. Expected t=<unix seconds>,v1=<64 hex chars>.'],
    ['x-hub-signature-256', 'sha1=0123', 'X-Hub-Signature-256 is malformed: expected sha256=<64 hex chars>.'],
    ['x-hub-signature-256', `sha256=${'g'.repeat(64)}`, 'X-Hub-Signature-256 is malformed: expected sha256=<64 hex chars>.'],
    ['x-hub-signature-256', 'sha256=abcd', 'X-Hub-Signature-256 is malformed: expected sha256=<64 hex chars>.'],
  ])('rejects a malformed %s header (%s) with 400', (name, value, reason) => {
    expect(verifyWebhook({ rawBody: body, headers: { [name]: value }, secret, now })).toEqual({ ok: false, status: 400, reason });
  });

  it('checks the Podflow header and ignores a GitHub one sent alongside', () => {
    const r = verifyWebhook({
      rawBody: body,
      headers: { 'x-podflow-signature': signPodflow(body, secret, nowSec - 3600), 'x-hub-signature-256': signGithub(body, secret) },
      secret,
      now,
    });
    expect(r).toMatchObject({ ok: false, status: 401 });
  });

  it('throws for a parsed body: the signed bytes must be verified as received', () => {
    expect(() => verifyWebhook({ rawBody: { ref: 'main' } as unknown as Buffer, headers: {}, secret, now })).toThrow(/needs the raw body as a Buffer: mount express.raw/);
  });

  it('refuses every delivery with 403 when no secret is configured', () => {
    const r = verifyWebhook({ rawBody: body, headers: { 'x-hub-signature-256': signGithub(body, '') }, secret: undefined, now });
    expect(r).toMatchObject({ ok: false, status: 403 });
  });
});

describe('DeliveryDedup', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('claims a delivery id once; a resend is refused, on another DAG it is new', async () => {
    const prefix = uniquePrefix('hooks');
    const dedup = new DeliveryDedup(redis, prefix, 60);
    expect(await dedup.claim('etl', 'd-42')).toBe(true);
    expect(await dedup.claim('etl', 'd-42')).toBe(false);
    expect(await dedup.claim('other', 'd-42')).toBe(true);
    const ttl = await redis.ttl(`${prefix}:webhook:delivery:etl:d-42`);
    expect(ttl > 0 && ttl <= 60).toBe(true);
  });

  it('of concurrent claims of one delivery exactly one wins', async () => {
    const dedup = new DeliveryDedup(redis, uniquePrefix('hooks'), 60);
    const results = await Promise.all(Array.from({ length: 10 }, () => dedup.claim('etl', 'same')));
    expect(results.filter(Boolean).length).toBe(1);
  });

  it('remembers the run a delivery started and lets a failed claim be retried after release', async () => {
    const dedup = new DeliveryDedup(redis, uniquePrefix('hooks'), 60);
    expect(await dedup.runIdOf('etl', 'd-1')).toBe(null);
    await dedup.claim('etl', 'd-1');
    expect(await dedup.runIdOf('etl', 'd-1')).toBe('');
    await dedup.setRunId('etl', 'd-1', 'webhook__2026-12-03T12:00:00+00:00');
    expect(await dedup.runIdOf('etl', 'd-1')).toBe('webhook__2026-12-03T12:00:00+00:00');
    await dedup.release('etl', 'd-1');
    expect(await dedup.claim('etl', 'd-1')).toBe(true);
  });
});

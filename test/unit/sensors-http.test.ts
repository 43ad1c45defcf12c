import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpSensor } from '../../src/sensors/http.ts';
import { evaluatePredicate, valueAt } from '../../src/sensors/json-predicate.ts';
import { parseSensorArgs, pokeSensor, SensorFailure, type PokeContext } from '../../src/sensors/sensor.ts';
import { freePort } from '../../src/util/redis-server.ts';

let server: Server;
let base: string;
let state: { status: number; body: string } = { status: 503, body: '' };
const seenHeaders: { url?: string; headers: Record<string, string | string[] | undefined> }[] = [];

function ctx(signal = new AbortController().signal): PokeContext {
  const noop = () => {};
  return {
    dag_id: 'retrain',
    run_id: 'manual__1',
    task_id: 'wait_for_labels',
    logical_date: new Date('2026-12-03T00:00:00Z'),
    data_interval_start: new Date('2026-12-03T00:00:00Z'),
    data_interval_end: new Date('2026-12-03T00:00:00Z'),
    redis: undefined as never,
    prefix: 'unused',
    log: { debug: noop, info: noop, warn: noop, error: noop, raw: noop },
    signal,
    now: () => new Date(),
  };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    seenHeaders.push({ url: req.url, headers: req.headers });
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ pad: 'x'.repeat(5000) }));
      return;
    }
    if (req.url === '/hang') return; // never answers
    res.writeHead(state.status, { 'content-type': 'application/json' });
    res.end(state.body);
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('JSON predicates', () => {
  const doc = { job: { state: 'done', rows: 150, metrics: [{ acc: 0.93 }] }, at: '2026-12-03T10:00:00Z', nil: null };

  it('reads dot paths with array indexes', () => {
    expect(valueAt(doc, 'job.metrics.0.acc')).toBe(0.93);
    expect(valueAt(doc, '$.job.rows')).toBe(150);
    expect(valueAt(doc, 'job.missing.x')).toBe(undefined);
    expect(valueAt(doc, 'job.metrics.x')).toBe(undefined);
    expect(valueAt(doc, 'job.toString')).toBe(undefined);
  });

  it.each([
    [{ path: 'job.state', op: 'eq', value: 'done' }, true],
    [{ path: 'job.state', op: 'ne', value: 'done' }, false],
    [{ path: 'job.rows', op: 'gte', value: 150 }, true],
    [{ path: 'job.rows', op: 'gt', value: 150 }, false],
    [{ path: 'job.metrics.0.acc', op: 'lt', value: 0.95 }, true],
    [{ path: 'job.rows', op: 'lte', value: '150' }, false],
    [{ path: 'at', op: 'gt', value: '2026-12-03T09:00:00Z' }, true],
    [{ path: 'nil', op: 'exists' }, true],
    [{ path: 'nope', op: 'exists' }, false],
    [{ path: 'nope', op: 'ne', value: 1 }, false],
    [{ path: 'job.metrics', op: 'eq', value: [{ acc: 0.93 }] }, true],
  ] as const)('%j is %s', (pred, expected) => {
    expect(evaluatePredicate(doc, pred as never)).toBe(expected);
  });
});

describe('http sensor', () => {
  it('waits while the endpoint answers an unexpected status', async () => {
    state = { status: 503, body: '{}' };
    expect(await pokeSensor(httpSensor, { url: `${base}/status` }, ctx())).toEqual({
      done: false,
      detail: `GET ${base}/status answered 503, waiting for 200`,
    });
  });

  it('waits until the JSON predicate holds, then returns the value', async () => {
    const args = { url: `${base}/status`, json_predicate: { path: 'job.state', op: 'eq', value: 'done' } };
    state = { status: 200, body: JSON.stringify({ job: { state: 'running' } }) };
    expect(await pokeSensor(httpSensor, args, ctx())).toEqual({
      done: false,
      detail: `GET ${base}/status: waiting for job.state eq "done" (now "running")`,
    });
    state = { status: 200, body: JSON.stringify({ job: { state: 'done' } }) };
    expect(await pokeSensor(httpSensor, args, ctx())).toEqual({ done: true, xcom: { status: 200, value: 'done' } });
  });

  it('requires every predicate of a list and accepts the listed statuses', async () => {
    state = { status: 202, body: JSON.stringify({ rows: 10, ok: true }) };
    const args = {
      url: `${base}/status`,
      expected_status: [200, 202],
      json_predicate: [{ path: 'ok', op: 'eq', value: true }, { path: 'rows', op: 'gte', value: 100 }],
    };
    expect(await pokeSensor(httpSensor, args, ctx())).toEqual({ done: false, detail: `GET ${base}/status: waiting for rows gte 100 (now 10)` });
    state = { status: 202, body: JSON.stringify({ rows: 100, ok: true }) };
    expect(await pokeSensor(httpSensor, args, ctx())).toEqual({ done: true, xcom: { status: 202, value: true } });
  });

  it('waits when a predicate is set and the body is not JSON', async () => {
    state = { status: 200, body: '<html>' };
    expect(await pokeSensor(httpSensor, { url: `${base}/s`, json_predicate: { path: 'a', op: 'exists' } }, ctx())).toEqual({
      done: false,
      detail: `GET ${base}/s answered 200 but the body is not JSON`,
    });
  });

  it('does not parse a body over max_body_bytes', async () => {
    expect(await pokeSensor(httpSensor, { url: `${base}/big`, max_body_bytes: 1000 }, ctx())).toEqual({
      done: false,
      detail: `GET ${base}/big: body over 1000 bytes, not evaluated`,
    });
  });

  it('treats a refused connection and a request timeout as not ready', async () => {
    const port = await freePort();
    const refused = await pokeSensor(httpSensor, { url: `http://127.0.0.1:${port}/` }, ctx());
    expect(refused.done).toBe(false);
    expect((refused as { detail: string }).detail).toMatch(new RegExp(`^GET http://127.0.0.1:${port}/ failed: .*ECONNREFUSED`));
    const hung = await pokeSensor(httpSensor, { url: `${base}/hang`, timeout_ms: 50 }, ctx());
    expect(hung.done).toBe(false);
    expect((hung as { detail: string }).detail).toMatch(new RegExp(`^GET ${base}/hang failed: `));
  });

  it('rethrows when the try itself is aborted', async () => {
    const ac = new AbortController();
    const p = pokeSensor(httpSensor, { url: `${base}/hang` }, ctx(ac.signal));
    ac.abort(new Error('killed by user'));
    await expect(p).rejects.toThrow('killed by user');
  });

  it('sends headers, filling those named from the environment', async () => {
    process.env.PF_TEST_LABELS_TOKEN = 'Bearer s3cr3t';
    state = { status: 200, body: '{}' };
    seenHeaders.length = 0;
    await pokeSensor(httpSensor, { url: `${base}/s`, headers: { 'x-team': 'ml' }, headers_from_env: { authorization: 'PF_TEST_LABELS_TOKEN' } }, ctx());
    const sent = seenHeaders.filter((h) => h.url === '/s');
    expect(sent.length).toBe(1);
    expect(sent[0].headers['x-team']).toBe('ml');
    expect(sent[0].headers.authorization).toBe('Bearer s3cr3t');
    await expect(pokeSensor(httpSensor, { url: `${base}/s`, headers_from_env: { authorization: 'PF_TEST_UNSET_VAR' } }, ctx())).rejects.toThrow(
      new SensorFailure("DAG 'retrain' task 'wait_for_labels': header 'authorization' comes from environment variable PF_TEST_UNSET_VAR, which is not set on this worker; set it or drop the header"),
    );
  });

  it('rejects a non-http URL and a predicate without a value', () => {
    expect(() => parseSensorArgs(httpSensor, { url: 'file:///etc/passwd' }, ctx())).toThrow(/field 'url'/);
    expect(() => parseSensorArgs(httpSensor, { url: base, json_predicate: { path: 'a', op: 'eq' } }, ctx())).toThrow(
      /field 'json_predicate.value': needs a value unless op is 'exists'/,
    );
  });
});

import { describe, expect, it, afterEach } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { LineageEmitter, openLineageConfigFromEnv, createEmitterFromEnv } from '../../src/lineage/emitter.ts';
import { FileTransport, HttpTransport } from '../../src/lineage/transports.ts';
import { dagRunEvent, openLineageContext, type RunEvent } from '../../src/lineage/openlineage.ts';

/** A pino logger whose lines the test can read. */
function captureLogger(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const ctx = openLineageContext('test');
function event(i: number): RunEvent {
  return dagRunEvent(ctx, 'START', { dag_id: `dag_${i}`, run_id: 'r', data_interval_start: null, data_interval_end: null, dag_file: '/d.ts', git: null });
}

interface Receiver {
  url: string;
  port: number;
  bodies: RunEvent[];
  headers: IncomingMessage['headers'][];
  /** Answers are held until released when `hold` is true. */
  hold: boolean;
  release(): void;
  status: number;
  /** Statuses answered first, one per request, before falling back to `status`. */
  statusSeq: number[];
  close(): Promise<void>;
}

async function receiver(port = 0): Promise<Receiver> {
  const held: (() => void)[] = [];
  const r = { bodies: [], headers: [], hold: false, status: 201, statusSeq: [] } as unknown as Receiver;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const answer = () => {
        r.bodies.push(JSON.parse(body));
        r.headers.push(req.headers);
        res.writeHead(r.statusSeq.shift() ?? r.status, { 'content-type': 'application/json' }).end('{}');
      };
      if (r.hold) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
  const addr = server.address();
  r.port = typeof addr === 'object' && addr ? addr.port : 0;
  r.url = `http://127.0.0.1:${r.port}`;
  r.release = () => {
    r.hold = false;
    for (const a of held.splice(0)) a();
  };
  r.close = () =>
    new Promise<void>((ok) => {
      r.release();
      server.closeAllConnections();
      server.close(() => ok());
    });
  return r;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('LineageEmitter', () => {
  it('delivers events in the order they were emitted, with the bearer token', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    const { logger } = captureLogger();
    const em = new LineageEmitter(new HttpTransport({ url: rcv.url, apiKey: 's3cret' }), { logger });
    cleanups.push(() => em.close());
    for (let i = 0; i < 20; i++) em.emit(event(i));
    expect(await em.flush(10_000)).toBe(true);
    expect(rcv.bodies.map((b) => b.job.name)).toEqual(Array.from({ length: 20 }, (_, i) => `dag_${i}`));
    expect(rcv.headers[0].authorization).toBe('Bearer s3cret');
    expect(em.stats()).toEqual({ emitted: 20, delivered: 20, dropped: 0, failed: 0, queued: 0 });
  });

  it('drops and counts events once the queue is full, and still delivers the ones it kept', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    rcv.hold = true;
    const { logger } = captureLogger();
    const em = new LineageEmitter(new HttpTransport({ url: rcv.url }), { logger, queueSize: 3 });
    cleanups.push(() => em.close());
    for (let i = 0; i < 10; i++) em.emit(event(i));
    // synchronous emits: the loop has not taken anything yet, so the queue holds exactly 3
    expect(em.stats()).toEqual({ emitted: 10, delivered: 0, dropped: 7, failed: 0, queued: 3 });
    rcv.release();
    expect(await em.flush(10_000)).toBe(true);
    expect(rcv.bodies.map((b) => b.job.name)).toEqual(['dag_0', 'dag_1', 'dag_2']);
    expect(em.stats()).toEqual({ emitted: 10, delivered: 3, dropped: 7, failed: 0, queued: 0 });
  });

  it('retries a 503 with backoff and then delivers', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    rcv.statusSeq = [503, 503];
    const { logger, lines } = captureLogger();
    const em = new LineageEmitter(new HttpTransport({ url: rcv.url }), { logger, retries: 3, backoffMs: 5 });
    cleanups.push(() => em.close());
    em.emit(event(1));
    expect(await em.flush(10_000)).toBe(true);
    expect([rcv.bodies.length, em.stats().delivered, em.stats().failed, lines.length]).toEqual([3, 1, 0, 0]);
  });

  it('counts events a down receiver never got as failed, logs the outage once, and logs the recovery', async () => {
    const rcv = await receiver();
    const port = rcv.port;
    await rcv.close(); // nothing listens on the port now: connections are refused
    const { logger, lines } = captureLogger();
    const em = new LineageEmitter(new HttpTransport({ url: `http://127.0.0.1:${port}` }), { logger, retries: 2, backoffMs: 1 });
    cleanups.push(() => em.close());
    for (let i = 0; i < 5; i++) em.emit(event(i));
    expect(await em.flush(30_000)).toBe(true);
    expect(em.stats()).toEqual({ emitted: 5, delivered: 0, dropped: 0, failed: 5, queued: 0 });
    const warns = lines.filter((l) => l.level === 40);
    expect(warns.length).toBe(1);
    expect(warns[0].msg).toContain(`OpenLineage events cannot be delivered (http http://127.0.0.1:${port}/api/v1/lineage): POST`);

    const back = await receiver(port);
    cleanups.push(() => back.close());
    em.emit(event(5));
    expect(await em.flush(10_000)).toBe(true);
    expect(em.stats()).toEqual({ emitted: 6, delivered: 1, dropped: 0, failed: 5, queued: 0 });
    expect(lines.filter((l) => l.level === 30).map((l) => l.msg)).toEqual([
      `OpenLineage receiver (http http://127.0.0.1:${port}/api/v1/lineage) is reachable again; 5 event(s) were not delivered during the outage`,
    ]);
  });

  it('does not retry an event the receiver rejects as invalid (400)', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    rcv.status = 400;
    const { logger } = captureLogger();
    const em = new LineageEmitter(new HttpTransport({ url: rcv.url }), { logger, retries: 3, backoffMs: 1 });
    cleanups.push(() => em.close());
    em.emit(event(1));
    expect(await em.flush(10_000)).toBe(true);
    expect([rcv.bodies.length, em.stats().failed]).toEqual([1, 1]);
  });

  it('is a no-op without a transport', () => {
    const { logger } = captureLogger();
    const em = new LineageEmitter(null, { logger });
    em.emit(event(1));
    expect([em.enabled, em.stats()]).toEqual([false, { emitted: 0, delivered: 0, dropped: 0, failed: 0, queued: 0 }]);
  });

  it('appends NDJSON lines with the file transport', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pf-ol-file-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'nested', 'ol.ndjson');
    const { logger } = captureLogger();
    const em = new LineageEmitter(new FileTransport(file), { logger });
    em.emit(event(1));
    em.emit(event(2));
    await em.close();
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l).job.name);
    expect(lines).toEqual(['dag_1', 'dag_2']);
  });

  it('logs each event with the console transport', async () => {
    const { logger, lines } = captureLogger();
    const { emitter } = createEmitterFromEnv({ PODFLOW_OPENLINEAGE_TRANSPORT: 'console' }, logger);
    emitter.emit(event(7));
    await emitter.close();
    expect(lines.map((l) => l.msg)).toEqual(['openlineage START dag_7']);
  });
});

describe('OpenLineage configuration from the environment', () => {
  it('is off by default', () => {
    expect(openLineageConfigFromEnv({})).toEqual({
      transport: 'none',
      url: undefined,
      apiKey: undefined,
      file: undefined,
      namespace: 'podflow',
      queueSize: 10_000,
      timeoutMs: 5000,
      retries: 3,
    });
  });

  it('says what to set when http has no URL', () => {
    expect(() => openLineageConfigFromEnv({ PODFLOW_OPENLINEAGE_TRANSPORT: 'http' })).toThrow(
      'PODFLOW_OPENLINEAGE_TRANSPORT=http needs PODFLOW_OPENLINEAGE_URL (e.g. http://marquez:5000); set it, or set PODFLOW_OPENLINEAGE_TRANSPORT=none',
    );
  });

  it('rejects an unknown transport and a bad queue size', () => {
    expect(() => openLineageConfigFromEnv({ PODFLOW_OPENLINEAGE_TRANSPORT: 'kafka' })).toThrow('PODFLOW_OPENLINEAGE_TRANSPORT="kafka" is not one of none, http, file, console');
    expect(() => openLineageConfigFromEnv({ PODFLOW_OPENLINEAGE_QUEUE_SIZE: '0' })).toThrow('PODFLOW_OPENLINEAGE_QUEUE_SIZE="0" is not a whole number >= 1; unset it to use the default 10000');
  });

  it('posts to <url>/api/v1/lineage whether or not the URL names the endpoint', () => {
    expect(new HttpTransport({ url: 'http://marquez:5000' }).description).toBe('http http://marquez:5000/api/v1/lineage');
    expect(new HttpTransport({ url: 'http://marquez:5000/api/v1/lineage/' }).description).toBe('http http://marquez:5000/api/v1/lineage');
  });

  it('sends credentials written in the URL as Basic auth and keeps them out of its description', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    const t = new HttpTransport({ url: `http://ol:p%40ss@127.0.0.1:${rcv.port}` });
    await t.send(event(1));
    expect([t.description, rcv.headers[0].authorization]).toEqual([
      `http http://127.0.0.1:${rcv.port}/api/v1/lineage`,
      `Basic ${Buffer.from('ol:p@ss').toString('base64')}`,
    ]);
  });
});

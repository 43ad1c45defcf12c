import { beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { createPodOperator } from '../index.ts';
import { resetImageWarning } from '../local-runner.ts';
import { podRequest, silent, until } from './helpers.ts';

const op = createPodOperator({ mode: 'local', logger: silent, metricsRegistry: new Registry() });
const node = process.execPath;

beforeEach(() => resetImageWarning());

describe('local mode', () => {
  it('runs command + args as a process without a shell; stdout and stderr go to the task log', async () => {
    const t = podRequest({
      taskId: 'local_ok',
      params: { who: 'world; echo injected' },
      args: { image: 'python:3.12', command: [node, '-e', 'console.log("hello", process.argv[1]); console.error("warn line")'], args: ['{{ params.who }}'] },
    });
    const out = await op.execute(t.req);
    expect(out).toMatchObject({ state: 'success', exit_code: 0 });
    expect(t.log.lines).toEqual(['hello world; echo injected', 'warn line']);
  });

  it('local_command replaces command + args, and PODFLOW_* ids are in its environment', async () => {
    const t = podRequest({
      taskId: 'local_cmd',
      args: { image: 'x', command: ['/nonexistent'], local_command: [node, '-e', 'console.log(process.env.PODFLOW_DAG_ID, process.env.PODFLOW_TASK_ID, process.env.PODFLOW_TRY_NUMBER, process.env.LR)'], env: { LR: '0.1' } },
    });
    const out = await op.execute(t.req);
    expect(out.state).toBe('success');
    expect(t.log.lines).toEqual(['gpu_finetune local_cmd 1 0.1']);
  });

  it('the exit code decides: non-zero fails with it, skip_on_exit_code skips', async () => {
    const fail = await op.execute(podRequest({ taskId: 'local_fail', args: { image: 'x', local_command: [node, '-e', 'process.exit(3)'] } }).req);
    expect(fail).toMatchObject({ state: 'failed', exit_code: 3 });
    expect(fail.error).toContain('exited with code 3');
    const skip = await op.execute(podRequest({ taskId: 'local_skip', args: { image: 'x', local_command: [node, '-e', 'process.exit(99)'], skip_on_exit_code: 99 } }).req);
    expect(skip).toMatchObject({ state: 'skipped', exit_code: 99 });
  });

  it('result_file: the JSON written to $PODFLOW_RESULT_FILE becomes the return value', async () => {
    const t = podRequest({
      taskId: 'local_result',
      args: { image: 'x', result_file: '/out/result.json', local_command: [node, '-e', 'require("fs").writeFileSync(process.env.PODFLOW_RESULT_FILE, JSON.stringify({ loss: 0.25 }))'] },
    });
    expect(await op.execute(t.req)).toMatchObject({ state: 'success', return_value: { loss: 0.25 } });
  });

  it('result_file metrics: numbers under a top-level "metrics" object are recorded as task metrics; others are skipped with a warning', async () => {
    const result = { accuracy: 0.97, metrics: { accuracy: 0.97, loss: 0.08, note: 'x' } };
    const t = podRequest({
      taskId: 'local_metrics',
      args: { image: 'x', result_file: '/out/result.json', local_command: [node, '-e', `require("fs").writeFileSync(process.env.PODFLOW_RESULT_FILE, ${JSON.stringify(JSON.stringify(result))})`] },
    });
    expect(await op.execute(t.req)).toMatchObject({ state: 'success', return_value: result });
    expect(t.metrics).toEqual({ accuracy: 0.97, loss: 0.08 });
    expect(t.log.messages.filter((m) => m.level === 'warn' && m.msg.includes("metric 'note'"))).toHaveLength(1);
  });

  it('result_file artifacts: each entry with a uri is registered for lineage with the rest as its metadata', async () => {
    const result = { artifacts: [{ uri: '/data/model.json', media_type: 'application/json', size: 12 }, { uri: 's3://b/k' }, { path: 'no-uri' }] };
    const t = podRequest({
      taskId: 'local_artifacts',
      args: { image: 'x', result_file: '/out/result.json', local_command: [node, '-e', `require("fs").writeFileSync(process.env.PODFLOW_RESULT_FILE, ${JSON.stringify(JSON.stringify(result))})`] },
    });
    expect((await op.execute(t.req)).state).toBe('success');
    expect(t.artifacts).toEqual([{ uri: '/data/model.json', meta: { media_type: 'application/json', size: 12 } }, { uri: 's3://b/k' }]);
    expect(t.log.messages.filter((m) => m.level === 'warn' && m.msg.includes('has no "uri"'))).toHaveLength(1);
  });

  it('a failed step records no metrics from its result file', async () => {
    const t = podRequest({
      taskId: 'local_metrics_fail',
      args: { image: 'x', result_file: '/out/result.json', local_command: [node, '-e', 'require("fs").writeFileSync(process.env.PODFLOW_RESULT_FILE, JSON.stringify({ metrics: { accuracy: 0.5 } })); process.exit(1)'] },
    });
    expect((await op.execute(t.req)).state).toBe('failed');
    expect(t.metrics).toEqual({});
  });

  it('warns once per process that the image is ignored', async () => {
    const warnings: string[] = [];
    const sink = new Writable({ write: (chunk, _e, cb) => (warnings.push(String(chunk)), cb()) });
    const logged = createPodOperator({ mode: 'local', logger: pino({ level: 'warn' }, sink), metricsRegistry: new Registry() });
    for (let i = 0; i < 3; i++) {
      await logged.execute(podRequest({ taskId: `warn${i}`, args: { image: 'python:3.12', local_command: [node, '-e', ''] } }).req);
    }
    expect(warnings.filter((w) => w.includes('images are ignored'))).toHaveLength(1);
  });

  it('a missing program fails fatally with the fix', async () => {
    const out = await op.execute(podRequest({ taskId: 'local_missing', args: { image: 'x', local_command: ['/no/such/program'] } }).req);
    expect(out).toMatchObject({ state: 'failed', fatal: true });
    expect(out.error).toContain('check local_command');
  });

  it('no command at all fails fatally', async () => {
    const out = await op.execute(podRequest({ taskId: 'local_none', args: { image: 'x' } }).req);
    expect(out).toMatchObject({ state: 'failed', fatal: true });
    expect(out.error).toContain('local mode needs a command');
  });

  it('execution_timeout stops the process', async () => {
    const t = podRequest({ taskId: 'local_timeout', args: { image: 'x', local_command: [node, '-e', 'console.log("started"); setInterval(() => {}, 1000)'] } });
    const p = op.execute(t.req);
    await until(() => t.log.lines.includes('started'), 'process started');
    t.abort({ kind: 'timeout', message: 'execution_timeout of 1s exceeded' });
    const out = await p;
    expect(out.state).toBe('failed');
    expect(out.error).toContain('execution_timeout of 1s exceeded');
  });
});

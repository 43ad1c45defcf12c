import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { buildProgram, type CliContext } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config/config.ts';
import { dag } from '../../src/dag/dag.ts';
import type { DagSpec } from '../../src/dag/types.ts';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { StateStore } from '../../src/state/store.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

describe('CLI: unknown DAGs, mapped task logs, argument checks, failed --wait, pools', () => {
  let redis: Redis;
  let store: StateStore;
  let ctx: CliContext;
  let spec: DagSpec;
  let runId: string;
  const out: string[] = [];
  const cli = (...args: string[]) => buildProgram(ctx).exitOverride().parseAsync(['node', 'podflow', ...args]);

  beforeAll(async () => {
    redis = new Redis(redisUrl());
    const prefix = uniquePrefix('cli');
    store = new StateStore(redis, prefix);
    ctx = { config: loadConfig({ REDIS_URL: redisUrl(), PODFLOW_PREFIX: prefix }), store: async () => store, out: (t) => void out.push(t) };
    spec = dag({ dag_id: 'm', schedule: null }, (d) => {
      d.task('fan', async () => 1, { expand: [1, 2, 3] });
      d.task('b', async () => 1);
    }).toSpec('dags/m.ts', 'h');
    await store.putDag(spec);
    runId = (await triggerDagRun(store, spec)).dag_run_id;
    await store.expandTi(spec, runId, 'fan', 3, 1);
    await store.updateTi({ dag_id: 'm', dag_run_id: runId, task_id: 'b', map_index: -1 }, { try_number: 1 });
  });
  afterAll(() => redis.disconnect());
  afterEach(() => {
    out.length = 0;
    process.exitCode = undefined;
    vi.restoreAllMocks();
  });

  it('runs list of an unknown DAG fails saying it is unknown and listing the known DAGs', async () => {
    await expect(cli('runs', 'list', 'nope')).rejects.toThrow("DAG 'nope' is unknown; known DAGs: m (see also `podflow dags list` and `podflow dags errors`)");
  });

  it('runs show of an unknown DAG says the DAG is unknown', async () => {
    await expect(cli('runs', 'show', 'nope', 'x')).rejects.toThrow("DAG 'nope' is unknown; known DAGs: m");
  });

  it('tasks logs of a mapped task without --map-index says it is mapped and lists the valid map indexes', async () => {
    await expect(cli('tasks', 'logs', 'm', runId, 'fan')).rejects.toThrow(
      `task 'fan' in run '${runId}' of DAG 'm' is mapped: pick one instance with --map-index (valid: 0, 1, 2)`,
    );
  });

  it('rejects a --map-index that is not a whole number', async () => {
    await expect(cli('tasks', 'logs', 'm', runId, 'fan', '--map-index', 'x')).rejects.toThrow(
      "--map-index must be a whole number (0, 1, … for a mapped task; -1 for an unmapped one), not 'x'",
    );
  });

  it.each(['abc', '0', '-1'])('rejects --try %s with a sentence saying what a try number is', async (bad) => {
    await expect(cli('tasks', 'logs', 'm', runId, 'b', `--try=${bad}`)).rejects.toThrow(`--try must be a try number of 1 or more (1 is the first try), not '${bad}'`);
  });

  it('trigger --wait on a failed run names the failed task instances with their notes and how to read the log', async () => {
    const err: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    const done = cli('dags', 'trigger', 'm', '--logical-date', '2026-06-01T00:00:00Z', '--run-id', 'waited', '--wait');
    for (let i = 0; i < 100 && !(await store.getRun('m', 'waited')); i++) await new Promise((r) => setTimeout(r, 20));
    await store.updateTi({ dag_id: 'm', dag_run_id: 'waited', task_id: 'b', map_index: -1 }, { state: 'failed', note: 'exit code 137 (out of memory)' });
    await store.updateRun('m', 'waited', { state: 'failed' });
    await done;
    expect(process.exitCode).toBe(1);
    expect(out).toEqual(['run waited: failed']);
    expect(err.at(-1)).toBe('failed task instances:\n  b: failed (exit code 137 (out of memory))\nread a log with: npx podflow tasks logs m waited b\n');
  });

  it('dags trigger twice at one logical date reports the logical date clash, naming --logical-date', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    await cli('dags', 'trigger', 'm', '--logical-date', '2026-07-01T00:00:00Z');
    await expect(cli('dags', 'trigger', 'm', '--logical-date', '2026-07-01T00:00:00Z')).rejects.toThrow(
      "DAG 'm' already has a run for logical date 2026-07-01T00:00:00.000Z ('manual__2026-07-01T00:00:00.000Z'); pick another logical date (CLI --logical-date, API field logical_date) or clear that run",
    );
  });

  it('pools set keeps an existing description when none is given, and refuses more than 1,000,000 slots', async () => {
    await cli('pools', 'set', 'gpu', '4', '--description', 'the two A100 boxes');
    await cli('pools', 'set', 'gpu', '8');
    expect(await store.getPool('gpu')).toMatchObject({ slots: 8, description: 'the two A100 boxes' });
    await expect(cli('pools', 'set', 'gpu', '2000000')).rejects.toThrow('slots must be at most 1,000,000 (use -1 for unlimited), not 2000000');
    expect((await store.getPool('gpu'))!.slots).toBe(8);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { buildProgram, type CliContext } from '../../src/cli/main.ts';
import { Keys } from '../../src/state/keys.ts';
import { OPERATOR_TOKEN, startTestPodflow, type TestPodflow } from '../support/podflow.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

const TICKER = `
import { dag } from 'podflow';
export default dag({ dag_id: 'ticker', schedule: 'every 1 second', catchup: false }, (d) => {
  d.task('tick', () => 'tick');
});
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('pause and unpause end to end', () => {
  let pf: TestPodflow;
  const prefix = uniquePrefix('pause');
  beforeAll(async () => {
    // Paused before the scheduler first sees the DAG.
    const r = new Redis(redisUrl());
    await r.hset(new Keys(prefix).dagMeta('ticker'), 'is_paused', '1');
    r.disconnect();
    pf = await startTestPodflow({ files: { 'ticker.ts': TICKER }, env: { PODFLOW_PREFIX: prefix } });
  });
  afterAll(async () => pf?.close());

  async function cli(...args: string[]): Promise<string[]> {
    const out: string[] = [];
    const ctx: CliContext = { config: pf.config, store: async () => pf.store, out: (t) => out.push(t) };
    await buildProgram(ctx).exitOverride().parseAsync(['node', 'podflow', ...args]);
    return out;
  }
  const count = () => pf.store.countRuns('ticker');

  it('a paused DAG creates no runs; unpaused by the API it does; paused by the CLI it stops again', async () => {
    await sleep(2500); // two and a half intervals
    expect(await count()).toBe(0);

    const res = await fetch(`${pf.api!.url}/api/v1/dags/ticker`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ is_paused: false }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { is_paused: boolean }).is_paused).toBe(false);
    for (let i = 0; i < 100 && (await count()) < 2; i++) await sleep(50);
    expect(await count()).toBeGreaterThanOrEqual(2);
    const runs = await pf.store.listRuns('ticker');
    expect(new Set(runs.map((r) => r.run_type))).toEqual(new Set(['scheduled']));

    expect(await cli('dags', 'pause', 'ticker')).toEqual(['DAG ticker paused']);
    await sleep(300); // a tick that began before the pause may still finish
    const frozen = await count();
    await sleep(2500);
    expect(await count()).toBe(frozen);
  });
});

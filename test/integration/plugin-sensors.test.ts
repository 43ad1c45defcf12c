import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

// A user plugin that adds a sensor: it fires once, for the event named in its args.
const PLUGIN = `
import { z } from 'zod';
export function register(ctx) {
  ctx.sensors.register({
    type: 'ticket',
    argsSchema: z.object({ id: z.string() }),
    async poke(args) {
      return { done: true, xcom: { ticket: args.id }, event_key: 'ticket-' + args.id };
    },
  });
}
`;

const DAG = `
import { dag } from 'podflow';
export default dag({ dag_id: 'on_ticket', trigger: { sensor: 'ticket', args: { id: 'T-7' }, interval: '1s' } }, (d) => {
  d.task('handle', async (ctx) => ctx.conf);
});
`;

describe('a plugin sensor in a scheduler-only process', () => {
  let pf: TestPodflow | undefined;
  const plugins = join(new URL('../.tmp/', import.meta.url).pathname, `plugins-${randomUUID()}`);
  afterAll(async () => {
    await pf?.close();
    rmSync(plugins, { recursive: true, force: true });
  });

  it('triggers a sensor-triggered DAG once per event (plugins load for the scheduler role too)', async () => {
    mkdirSync(join(plugins, 'tickets'), { recursive: true });
    writeFileSync(join(plugins, 'tickets', 'index.mjs'), PLUGIN);
    pf = await startTestPodflow({ files: { 'on_ticket.ts': DAG }, roles: { scheduler: true }, env: { PODFLOW_PLUGINS_FOLDER: plugins } });
    let runs = await pf.store.listRuns('on_ticket');
    for (let i = 0; i < 100 && runs.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      runs = await pf.store.listRuns('on_ticket');
    }
    await new Promise((r) => setTimeout(r, 2500)); // more pokes: the same event must not fire again
    runs = await pf.store.listRuns('on_ticket');
    expect(runs.map((r) => [r.run_type, r.conf])).toEqual([['sensor_triggered', { ticket: 'T-7', trigger_event_key: 'ticket-T-7' }]]);
  });
});

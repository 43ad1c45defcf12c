/**
 * `@kubernetes/client-node` takes seconds to import, so local mode must never load it. A child
 * process with the client made unimportable (fixtures/block-kube-client.mjs) proves it.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const fixtures = new URL('./fixtures/', import.meta.url).pathname;

describe('lazy @kubernetes/client-node', () => {
  it('local mode registers and runs a pod task with the client unimportable; only cluster mode loads it', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--import', `${fixtures}block-kube-client.mjs`, `${fixtures}local-without-client.ts`], { timeout: 60_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop()!) as { state: string; lines: string[]; cluster: string };
    expect(out.state).toBe('success');
    expect(out.lines).toEqual(['ran locally']);
    expect(out.cluster).toMatch(/^cannot load @kubernetes\/client-node \(needed for PODFLOW_KUBE_MODE=cluster\): BLOCKED: @kubernetes\/client-node imported from .*\/plugins\/kubernetes\/kube-client\.ts; run npm install, or set PODFLOW_KUBE_MODE=local$/);
  }, 90_000);
});

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { costOf, gitCommitOf, gitInfoOf, parseCpu, parseMemoryGib, resourcesAsked, summarizeXCom, tryId } from '../../src/lineage/records.ts';

describe('resources asked and their cost', () => {
  it('reads Kubernetes quantities for CPU and memory', () => {
    expect([parseCpu('500m'), parseCpu('2'), parseCpu(1.5), parseCpu('lots')]).toEqual([0.5, 2, 1.5, null]);
    expect([parseMemoryGib('512Mi'), parseMemoryGib('2Gi'), parseMemoryGib(1024 ** 3), parseMemoryGib('1G')]).toEqual([0.5, 2, 1, 1e9 / 1024 ** 3]);
  });

  it('reads the pod shorthand with gpus: N', () => {
    expect(resourcesAsked({ resources: { cpu: '4', memory: '16Gi', gpus: 2 } })).toEqual({ cpu: 4, memory_gib: 16, gpu: 2 });
  });

  it('reads Kubernetes requests and limits, requests first, and names a non-NVIDIA accelerator', () => {
    expect(
      resourcesAsked({ resources: { requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi', 'amd.com/gpu': 1 } } }),
    ).toEqual({ cpu: 0.25, memory_gib: 1, gpu: 1, gpu_resource: 'amd.com/gpu' });
  });

  it("reads the pod operator's named accelerator", () => {
    expect(resourcesAsked({ resources: { cpu: '1', accelerator: { resource: 'google.com/tpu', count: 4 } } })).toEqual({
      cpu: 1,
      memory_gib: null,
      gpu: 4,
      gpu_resource: 'google.com/tpu',
    });
  });

  it('states nothing for an inline task without resources', () => {
    expect(resourcesAsked({})).toEqual({ cpu: null, memory_gib: null, gpu: null });
  });

  it('costs asked resources times the duration, an unstated resource counting zero', () => {
    expect(costOf({ cpu: 0.5, memory_gib: 2, gpu: 1 }, 90)).toEqual({ cpu_seconds: 45, memory_gib_seconds: 180, gpu_seconds: 90 });
    expect(costOf({ cpu: null, memory_gib: null, gpu: null }, 90)).toEqual({ cpu_seconds: 0, memory_gib_seconds: 0, gpu_seconds: 0 });
  });
});

describe('return value summary', () => {
  it('keeps a small value whole', () => {
    expect(summarizeXCom({ accuracy: 0.96 })).toEqual({ type: 'object', bytes: 17, value: { accuracy: 0.96 } });
  });

  it('keeps only keys and a preview of a large object', () => {
    const big = { train: Array.from({ length: 300 }, (_, i) => i), test: [1, 2] };
    const s = summarizeXCom(big);
    expect([s?.type, s?.bytes, s?.keys, s?.value, s?.preview?.length]).toEqual(['object', JSON.stringify(big).length, ['train', 'test'], undefined, 200]);
  });

  it('is null when the task returned nothing', () => {
    expect(summarizeXCom(undefined)).toBeNull();
  });
});

describe('try ids', () => {
  it('joins dag, run, task, map index and try number', () => {
    expect(tryId({ dag_id: 'iris_training', run_id: 'manual__2026-01-01T00:00:00+00:00', task_id: 'train', map_index: -1, try_number: 2 })).toBe(
      'iris_training/manual__2026-01-01T00:00:00+00:00/train/-1/2',
    );
  });
});

describe('git commit of the DAGs folder', () => {
  let repo: string;
  let plain: string;
  beforeAll(async () => {
    repo = await mkdtemp(join(tmpdir(), 'pf-lineage-git-'));
    plain = await mkdtemp(join(tmpdir(), 'pf-lineage-nogit-'));
    await mkdir(join(repo, 'dags'));
    await writeFile(join(repo, 'dags', 'iris.ts'), 'export {}\n');
    const g = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim();
    g('init', '-q');
    g('add', '.');
    g('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'dags');
    g('remote', 'add', 'origin', 'git@github.com:acme/pipelines.git');
  });
  afterAll(async () => {
    await rm(repo, { recursive: true, force: true });
    await rm(plain, { recursive: true, force: true });
  });

  it('is HEAD of the repository holding the folder, with its root and origin', async () => {
    const head = execFileSync('git', ['-C', repo, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    expect(await gitCommitOf(join(repo, 'dags'))).toBe(head);
    const info = await gitInfoOf(join(repo, 'dags'));
    expect(info).toEqual({ commit: head, toplevel: execFileSync('git', ['-C', repo, 'rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim(), remote: 'git@github.com:acme/pipelines.git' });
  });

  it('is null for a folder outside any repository', async () => {
    expect(await gitCommitOf(plain)).toBeNull();
  });
});

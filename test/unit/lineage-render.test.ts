import { describe, expect, it } from 'vitest';
import { renderProvenance, renderTree, shortHash } from '../../src/lineage/render.ts';
import type { DatasetNode, RunProvenance, TryNode } from '../../src/lineage/query.ts';

const tryNode = (over: Partial<TryNode>): TryNode => ({
  kind: 'try',
  id: 'ft/r1/finetune/-1/1',
  dag_id: 'ft',
  run_id: 'r1',
  task_id: 'finetune',
  map_index: -1,
  try_number: 1,
  state: 'success',
  start: '2026-12-01T00:00:00.000Z',
  end: '2026-12-01T00:01:40.000Z',
  dag_file: '/dags/ft.ts',
  dag_file_hash: 'c'.repeat(64),
  git_commit: null,
  operator: 'pod',
  executor: 'kubernetes',
  image: 'ghcr.io/acme/ft:v3',
  image_digest: `ghcr.io/acme/ft@sha256:${'ab'.repeat(32)}`,
  params: {},
  conf: {},
  metrics: {},
  return_value: null,
  inputs: [],
  upstream: [],
  outputs: [],
  downstream: [],
  ...over,
});

const dataset = (over: Partial<DatasetNode>): DatasetNode => ({
  kind: 'dataset',
  uri: 's3://models/ft/model.safetensors',
  sha256: null,
  size: 3 * 1024 ** 3,
  media_type: 'application/x-safetensors',
  etag: '"e-1"',
  version_id: 'v7',
  produced_by: [],
  consumed_by: [],
  ...over,
});

describe('renderTree', () => {
  it('shows a remote artifact by version, a pod try by image digest, mapped index and depth elision', () => {
    const g = dataset({
      produced_by: [tryNode({ map_index: 2, conf: { tag: 'v3' }, upstream: [tryNode({ task_id: 'prep', image: null, image_digest: null, elided: 'depth' })] })],
    });
    expect(renderTree(g)).toBe(
      [
        's3://models/ft/model.safetensors  version v7  3.0 GiB  application/x-safetensors',
        '└─ produced by ft.finetune[2]  try 1  success',
        '   │  run r1  2026-12-01T00:00:00.000Z → 2026-12-01T00:01:40.000Z',
        `   │  code /dags/ft.ts sha256:${'c'.repeat(12)}`,
        `   │  image ghcr.io/acme/ft:v3  digest sha256:${'ab'.repeat(6)}`,
        '   │  conf tag=v3',
        '   └─ after ft.prep  try 1  success',
        '         same run  2026-12-01T00:00:00.000Z → 2026-12-01T00:01:40.000Z',
        '         (depth limit reached; query this try’s inputs to go further)',
        '',
      ].join('\n'),
    );
  });

  it('shortens hashes with their algorithm', () => {
    expect([shortHash('f'.repeat(64)), shortHash(`md5:${'1'.repeat(32)}`), shortHash(null)]).toEqual([`sha256:${'f'.repeat(12)}`, `md5:${'1'.repeat(12)}`, '-']);
  });
});

describe('renderProvenance', () => {
  it('lists code, settings, cost, inputs, outputs and each try', () => {
    const p: RunProvenance = {
      dag_id: 'ft',
      run_id: 'r1',
      run_type: 'scheduled',
      logical_date: '2026-12-01T00:00:00.000Z',
      dag_file: '/dags/ft.ts',
      dag_file_hash: 'c'.repeat(64),
      git_commit: 'd'.repeat(40),
      conf: {},
      params: { lr: 0.0001 },
      start: '2026-12-01T00:00:00.000Z',
      end: '2026-12-01T00:01:40.000Z',
      inputs: [{ uri: 's3://lake/data.parquet', sha256: null, size: null, media_type: 'application/vnd.apache.parquet', etag: '"x"', version_id: null }],
      outputs: [],
      metrics: { loss: 0.12 },
      cost: { cpu_seconds: 400, memory_gib_seconds: 1600, gpu_seconds: 100 },
      tries: [
        {
          id: 'ft/r1/finetune/-1/1',
          task_id: 'finetune',
          map_index: -1,
          try_number: 1,
          state: 'failed',
          start: '2026-12-01T00:00:00.000Z',
          end: '2026-12-01T00:01:40.000Z',
          duration_s: 100,
          operator: 'pod',
          executor: 'kubernetes',
          image: 'ghcr.io/acme/ft:v3',
          image_digest: null,
          argv: ['python', 'train.py'],
          resources: { cpu: 4, memory_gib: 16, gpu: 1 },
          node: 'gke-spot-a100-1',
          gpu_model: 'NVIDIA-A100-SXM4-40GB',
          exit_code: 137,
          error: 'OOMKilled',
          metrics: {},
          return_value: null,
          inputs: [],
          outputs: [],
          upstream_tries: [],
          cost: { cpu_seconds: 400, memory_gib_seconds: 1600, gpu_seconds: 100 },
        },
      ],
    };
    expect(renderProvenance(p)).toBe(
      [
        'run r1 of ft (scheduled)  2026-12-01T00:00:00.000Z → 2026-12-01T00:01:40.000Z',
        `code /dags/ft.ts sha256:${'c'.repeat(12)}  git ${'d'.repeat(12)}`,
        'params lr=0.0001',
        'metrics loss=0.12',
        'cost cpu 400 core·s  memory 1600 GiB·s  gpu 100 GPU·s (asked)',
        'inputs',
        '  s3://lake/data.parquet  etag "x"  application/vnd.apache.parquet',
        'outputs',
        '  (none)',
        'tries',
        '  finetune  try 1  failed  100s  pod/kubernetes  exit 137',
        '    image ghcr.io/acme/ft:v3',
        '    argv ["python","train.py"]',
        '    on gke-spot-a100-1 gpu NVIDIA-A100-SXM4-40GB',
        '    error OOMKilled',
        '',
      ].join('\n'),
    );
  });
});

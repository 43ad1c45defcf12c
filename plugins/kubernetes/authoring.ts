/**
 * Authoring helper for DAG files: `d.operator('train', podTask({ image, command, ... }))`.
 */
import type { Json } from '../../src/dag/types.ts';
import type { PodTaskArgs } from './pod-args.ts';

export type { PodTaskArgs } from './pod-args.ts';

/**
 * A Kubernetes pod task. Arguments are validated when the task runs (and the error names
 * the DAG, task and field); see plugins/kubernetes/README.md for every field and default.
 *
 * @example
 * d.operator('finetune', podTask({
 *   image: 'ghcr.io/acme/llm-tune:2.1',
 *   command: ['python', '-m', 'tune'],
 *   args: ['--epochs', '{{ params.epochs }}', '--run', '{{ run_id }}'],
 *   resources: { cpu: 8, memory: '48Gi', gpus: 1 },
 *   capacity: 'spot',
 *   volumes: [{ name: 'data', pvc: { claim_name: 'datasets' }, mount_path: '/data', read_only: true }],
 *   local_command: ['node', '{{ dag_dir }}/lib/finetune-step.mjs', 'tune'],
 * }), { retries: 3 });
 */
export function podTask(args: PodTaskArgs): { operator: 'pod'; operator_args: Record<string, Json> } {
  // A JSON round trip keeps operator_args plain JSON, as TaskSpec requires.
  return { operator: 'pod', operator_args: JSON.parse(JSON.stringify(args)) as Record<string, Json> };
}

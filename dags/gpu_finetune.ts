/**
 * gpu_finetune: fine-tune a pretrained model on new data, on a GPU spot node, with the data
 * on a PVC. prepare (CPU, on-demand) -> finetune (1 GPU, spot, retried on reclaim) ->
 * evaluate (CPU, fails the run below params.min_accuracy).
 *
 * On a cluster (PODFLOW_KUBE_MODE=cluster or a KUBECONFIG, plus PODFLOW_KUBE_CAPACITY_PROFILES
 * for spot) each step is a pod of `params`-templated argv with the `finetune-data` PVC at /data.
 * Without a cluster each step runs its `local_command`: dags/lib/finetune-step.mjs, a small
 * softmax classifier fine-tuned on a shifted domain (seconds on a laptop); data and checkpoints
 * go under $PODFLOW_ARTIFACTS/gpu_finetune/runs/<run id>.
 *
 * Trigger: `npx podflow dags trigger gpu_finetune --wait --conf '{"epochs": 3}'`
 */
import { dag } from 'podflow';
import { podTask } from '../plugins/kubernetes/authoring.ts';

const IMAGE = 'ghcr.io/acme/finetune:1.4.0';
const STEP = ['node', '{{ dag_dir }}/lib/finetune-step.mjs'];
// One folder per run on the shared volume, so concurrent runs never mix data.
const RUN_DATA = '/data/runs/{{ run_id }}';
const data = [{ name: 'data', pvc: { claim_name: 'finetune-data' }, mount_path: '/data' }];

export default dag(
  {
    dag_id: 'gpu_finetune',
    description: 'Fine-tune a pretrained classifier on new data on a GPU spot node',
    schedule: null,
    start_date: '2026-01-01',
    tags: ['gpu', 'example'],
    params: { epochs: 1, learning_rate: 0.05, samples: 600, seed: 7, min_accuracy: 0.8 },
  },
  (d) => {
    const prep = d.operator(
      'prepare',
      podTask({
        image: IMAGE,
        command: ['python', '-m', 'finetune.prepare'],
        args: ['--data', RUN_DATA, '--samples', '{{ params.samples }}', '--seed', '{{ params.seed }}'],
        resources: { cpu: 2, memory: '4Gi' },
        capacity: 'on-demand',
        volumes: data,
        result_file: '/tmp/result.json',
        local_command: [...STEP, 'prepare', '--samples', '{{ params.samples }}', '--seed', '{{ params.seed }}'],
      }),
      { retries: 1, execution_timeout: '30m' },
    );

    const tune = d.operator(
      'finetune',
      podTask({
        image: IMAGE,
        command: ['python', '-m', 'finetune.train'],
        args: ['--data', RUN_DATA, '--epochs', '{{ params.epochs }}', '--lr', '{{ params.learning_rate }}'],
        env: { HF_TOKEN: { secret_key_ref: { name: 'huggingface', key: 'token', optional: true } } },
        resources: { cpu: 8, memory: '48Gi', ephemeral_storage: '50Gi', gpus: 1 },
        capacity: 'spot',
        volumes: [...data, { name: 'shm', empty_dir: { medium: 'Memory', size_limit: '8Gi' }, mount_path: '/dev/shm' }],
        // A GPU may take a while to be provisioned on spot; past this, fail with the scheduler's reason.
        schedule_timeout_seconds: 1800,
        active_deadline_seconds: 4 * 3600,
        result_file: '/tmp/result.json',
        local_command: [...STEP, 'finetune', '--epochs', '{{ params.epochs }}', '--lr', '{{ params.learning_rate }}'],
      }),
      // Spot reclaims are retried; a reclaim before the container started costs no try.
      { retries: 3, retry_delay: '1m', execution_timeout: '5h' },
    );

    const evaluate = d.operator(
      'evaluate',
      podTask({
        image: IMAGE,
        command: ['python', '-m', 'finetune.evaluate'],
        args: ['--data', RUN_DATA, '--min-accuracy', '{{ params.min_accuracy }}'],
        resources: { cpu: 1, memory: '2Gi' },
        capacity: 'on-demand',
        volumes: data,
        result_file: '/tmp/result.json',
        local_command: [...STEP, 'evaluate', '--min-accuracy', '{{ params.min_accuracy }}'],
      }),
      { retries: 0 },
    );

    prep.then(tune).then(evaluate);
  },
);

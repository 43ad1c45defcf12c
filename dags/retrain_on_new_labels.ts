/**
 * retrain_on_new_labels: retrain the Iris classifier when newly labelled data has drifted.
 *
 * Scheduled on the dataset `dataset://podflow/iris/labels`: a labelling job that declares it
 * as an outlet, a webhook, `podflow datasets event dataset://podflow/iris/labels`, or
 * `POST /api/v1/datasets/events` starts a run (several updates before the run starts collapse
 * into one run). The newest event's `extra` may carry the batch itself
 * (`{ "features": [[5.1, 3.5, 1.4, 0.2], …], "labels": ["setosa", …] }`); without one, the run
 * simulates a batch with `simulateNewLabels` (params `batch_size`, `simulated_shift`, `seed`).
 *
 * collect_labels -> check_drift (PSI and Kolmogorov–Smirnov per feature against the training
 * rows) -> decide (branch) -> retrain (hyper-parameter search on training + new rows, as
 * iris_training does, then train and evaluate) or keep_model -> report.
 * Artifacts go under PODFLOW_ARTIFACTS (default ./artifacts)/retrain_on_new_labels/.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { dag, type Json, type TaskContext } from 'podflow';
import { featureDrift, simulateNewLabels, type DriftReport, type LabelledBatch } from './lib/drift.ts';
import {
  IRIS_FEATURE_NAMES,
  evaluateModel,
  evaluateSetting,
  loadIris,
  pick,
  searchSpace,
  selectBest,
  stratifiedSplit,
  trainForest,
} from './lib/iris.ts';

export const LABELS_DATASET = 'dataset://podflow/iris/labels';
export const MODEL_DATASET = 'dataset://podflow/iris/model';

function artifactsRoot(): string {
  return resolve(process.env.PODFLOW_ARTIFACTS ?? './artifacts');
}

async function runFolder(ctx: TaskContext): Promise<string> {
  const dir = join(artifactsRoot(), 'retrain_on_new_labels', 'runs', ctx.run_id.replace(/[^A-Za-z0-9_.-]/g, '_'));
  await mkdir(dir, { recursive: true });
  return dir;
}

const num = (v: Json | undefined, name: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`param '${name}' must be a number, got ${JSON.stringify(v)}`);
  return v;
};

type EventLike = { id: number; extra?: Record<string, Json> };

/** The batch carried by the newest triggering event, or null when none carries one. */
function batchFromEvents(ctx: TaskContext): { batch: LabelledBatch; event_id: number } | null {
  const byUri = (ctx.conf.triggering_dataset_events ?? {}) as Record<string, EventLike[]>;
  const events = (byUri[LABELS_DATASET] ?? []).slice().sort((a, b) => b.id - a.id);
  for (const ev of events) {
    const x = ev.extra ?? {};
    const src = (x.batch ?? x) as { features?: unknown; labels?: unknown };
    if (!Array.isArray(src.features) || !Array.isArray(src.labels)) continue;
    const features = src.features as number[][];
    const labels = src.labels as string[];
    const bad = features.findIndex((r) => !Array.isArray(r) || r.length !== IRIS_FEATURE_NAMES.length || r.some((v) => typeof v !== 'number'));
    if (bad >= 0 || labels.length !== features.length) {
      throw new Error(
        `dataset event ${ev.id} on ${LABELS_DATASET} carries a malformed batch (row ${bad}, ${features.length} rows, ${labels.length} labels): send { features: number[${IRIS_FEATURE_NAMES.length}][], labels: string[] } of equal length`,
      );
    }
    return { batch: { features, labels }, event_id: ev.id };
  }
  return null;
}

export default dag(
  {
    dag_id: 'retrain_on_new_labels',
    description: 'Retrain the Iris model when newly labelled data drifts from the training data',
    schedule: [LABELS_DATASET],
    max_active_runs: 1,
    tags: ['ml', 'example', 'datasets'],
    params: { seed: 42, test_fraction: 0.2, validation_fraction: 0.25, psi_threshold: 0.2, p_value_threshold: 0.05, batch_size: 60, simulated_shift: 0 },
    default_args: { retries: 1, retry_delay: '5s', execution_timeout: '10m', owner: 'ml-platform' },
  },
  (d) => {
    const collect = d.task(
      'collect_labels',
      async (ctx) => {
        const carried = batchFromEvents(ctx);
        const seed = num(ctx.params.seed, 'seed');
        const batch =
          carried?.batch ??
          simulateNewLabels(loadIris(), { n: num(ctx.params.batch_size, 'batch_size'), shift: num(ctx.params.simulated_shift, 'simulated_shift'), seed });
        const file = join(await runFolder(ctx), 'new_labels.json');
        await writeFile(file, `${JSON.stringify(batch)}\n`);
        await ctx.artifact(file, { media_type: 'application/json' });
        const source = carried ? `dataset event ${carried.event_id}` : 'simulated (the triggering events carry no batch)';
        ctx.log.info(`collected ${batch.labels.length} newly labelled rows from ${source}`);
        return { ...batch, source } as unknown as Json;
      },
      { inlets: [LABELS_DATASET], doc: 'The new labelled batch: from the dataset event, else simulated' },
    );

    const drift = d.task(
      'check_drift',
      async (ctx) => {
        const batch = (await ctx.xcom.pull('collect_labels')) as unknown as LabelledBatch;
        const ds = loadIris();
        const split = stratifiedSplit(ds, { test_fraction: num(ctx.params.test_fraction, 'test_fraction'), seed: num(ctx.params.seed, 'seed') });
        const report = featureDrift(pick(ds.features, split.train_idx), batch.features, IRIS_FEATURE_NAMES, {
          psi_threshold: num(ctx.params.psi_threshold, 'psi_threshold'),
          p_value_threshold: num(ctx.params.p_value_threshold, 'p_value_threshold'),
        });
        await ctx.metric('max_psi', report.max_psi);
        await ctx.metric('min_p_value', report.min_p_value);
        ctx.log.info(
          `drift: max PSI ${report.max_psi.toFixed(3)}, min KS p ${report.min_p_value.toExponential(2)}; drifted: ${report.drifted_features.join(', ') || 'none'}`,
        );
        return report as unknown as Json;
      },
      { doc: 'Population stability index and KS test per feature, training rows vs the new batch' },
    );

    const decide = d.branch('decide', async (ctx) => {
      const report = (await ctx.xcom.pull('check_drift')) as unknown as DriftReport;
      return report.drifted ? 'retrain' : 'keep_model';
    });

    const retrain = d.task(
      'retrain',
      async (ctx) => {
        const batch = (await ctx.xcom.pull('collect_labels')) as unknown as LabelledBatch;
        const seed = num(ctx.params.seed, 'seed');
        const base = loadIris();
        const split = stratifiedSplit(base, { test_fraction: num(ctx.params.test_fraction, 'test_fraction'), seed });
        // New rows join the training side; the held-out Iris rows stay the test set.
        const features = [...base.features, ...batch.features];
        const labels = [...base.labels, ...batch.labels];
        const extraIdx = batch.labels.map((_, i) => base.labels.length + i);
        const trainIdx = [...split.train_idx, ...extraIdx];
        const combined = { ...base, features, labels };
        // One stratified validation split per setting (iris_training uses k-fold CV; a retrain
        // triggered by data should be quick, and the new rows already widen the training set).
        const validation_fraction = num(ctx.params.validation_fraction, 'validation_fraction');
        const results = searchSpace().map((p) => evaluateSetting(combined, { train_idx: trainIdx }, p, seed, { validation_fraction }));
        const best = selectBest(results);
        const { model_json } = trainForest(pick(features, trainIdx), pick(labels, trainIdx), best.params, seed);
        const onTest = evaluateModel(model_json, base, split.test_idx);
        const onNew = evaluateModel(model_json, combined, extraIdx);
        await ctx.metric('validation_accuracy', best.validation_accuracy);
        await ctx.metric('accuracy', onTest.accuracy);
        const out = join(artifactsRoot(), 'retrain_on_new_labels');
        await mkdir(out, { recursive: true });
        const model = join(out, 'model.json');
        await writeFile(model, `${JSON.stringify(model_json)}\n`);
        await ctx.artifact(model, { media_type: 'application/json' });
        ctx.log.info(`retrained ${best.params.id} on ${trainIdx.length} rows: test accuracy ${onTest.accuracy.toFixed(4)}, new-batch accuracy ${onNew.accuracy.toFixed(4)}`);
        return { model, params: best.params as unknown as Json, test_accuracy: onTest.accuracy, new_batch_accuracy: onNew.accuracy, rows: trainIdx.length };
      },
      { outlets: [MODEL_DATASET], doc: 'Hyper-parameter search and training on training + new rows (iris_training steps)' },
    );

    const keep = d.task('keep_model', async (ctx) => {
      const report = (await ctx.xcom.pull('check_drift')) as unknown as DriftReport;
      ctx.log.info(`no feature drifted (max PSI ${report.max_psi.toFixed(3)} < ${report.psi_threshold} or KS not significant); the current model stays`);
      return { kept: true, max_psi: report.max_psi };
    });

    const report = d.task(
      'report',
      async (ctx) => {
        const driftReport = (await ctx.xcom.pull('check_drift')) as unknown as DriftReport;
        const retrained = await ctx.xcom.pull('retrain');
        const summary = {
          dag_id: ctx.dag_id,
          run_id: ctx.run_id,
          drifted: driftReport.drifted,
          drifted_features: driftReport.drifted_features,
          max_psi: driftReport.max_psi,
          min_p_value: driftReport.min_p_value,
          decision: driftReport.drifted ? 'retrained' : 'kept',
          retrained,
        };
        const file = join(await runFolder(ctx), 'report.json');
        await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
        await ctx.artifact(file, { media_type: 'application/json' });
        return summary as unknown as Json;
      },
      { trigger_rule: 'none_failed_min_one_success' },
    );

    collect.then(drift).then(decide).then([retrain, keep]);
    retrain.then(report);
    keep.then(report);
  },
);

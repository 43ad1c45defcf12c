/**
 * `POST /hooks/{dag_id}`: start a run from a signed webhook, with the JSON body as conf.
 *
 * - Public route: the HMAC-SHA256 signature is the authentication (see
 *   src/api/webhook-signature.ts for the `X-Podflow-Signature` and GitHub
 *   `X-Hub-Signature-256` formats and the replay window).
 * - Secret: the env var named by the DAG's `extra.webhook_secret_env`, else
 *   PODFLOW_WEBHOOK_SECRET. Without one, the hook answers 403.
 * - The raw body is read with express.raw before any JSON parsing (the signature covers the
 *   exact bytes), limited to PODFLOW_WEBHOOK_MAX_BYTES (default 1 MiB).
 * - De-duplicated by delivery id (`X-Podflow-Delivery` / `X-GitHub-Delivery`): a resent
 *   delivery answers with the run the first one started and starts nothing.
 * - GitHub's `ping` event (sent when a repository webhook is created) is answered, once
 *   verified, without starting a run.
 */
import express, { type Request, type Response } from 'express';
import type { Json } from '../../dag/types.ts';
import { DagRunExistsError } from '../../state/store.ts';
import { TriggerError } from '../../scheduler/trigger.ts';
import { triggerAtNow } from '../../triggers/trigger-run.ts';
import { ApiProblem, badRequest, conflict, notFound } from '../problem.ts';
import { dagRunToApi } from '../serializers.ts';
import type { ApiDeps, ApiRoute } from '../server.ts';
import { DeliveryDedup, verifyWebhook } from '../webhook-signature.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The webhook route group. */
export function webhookRoutes({ store, config, logger }: ApiDeps): ApiRoute[] {
  const dedup = new DeliveryDedup(store.redis, store.keys.prefix);
  const maxBytes = Number(config.env.PODFLOW_WEBHOOK_MAX_BYTES ?? '') || 1024 * 1024;
  const windowSec = Number(config.env.PODFLOW_WEBHOOK_REPLAY_WINDOW_SEC ?? '') || 300;
  const log = logger.child({ route: 'webhook' });

  return [
    {
      method: 'post',
      path: '/hooks/:dag_id',
      summary: "Start a DAG run from a signed webhook; the JSON body becomes the run's conf",
      description:
        'Sign the raw body with HMAC-SHA256: `X-Podflow-Signature: t=<unix>,v1=<hex of HMAC(secret, `${t}.${body}`)>` or GitHub\'s `X-Hub-Signature-256: sha256=<hex>`. ' +
        'A repeated `X-Podflow-Delivery`/`X-GitHub-Delivery` id returns the first run and starts nothing.',
      role: 'public',
      tags: ['Webhook'],
      requestContentType: 'application/json',
      before: [express.raw({ type: () => true, limit: maxBytes })],
      responses: {
        200: { description: 'the run started by this delivery (or by its first copy: `duplicate: true`)' },
        400: { description: 'malformed signature header or body' },
        401: { description: 'missing or wrong signature, or outside the replay window' },
        403: { description: 'no webhook secret configured' },
        404: { description: 'no such DAG' },
        413: { description: 'body over the size limit' },
      },
      handler: async (req: Request, res: Response) => {
        const dagId = String(req.params.dag_id);
        const dag = await store.getDag(dagId);
        const envName = dag && typeof dag.extra?.webhook_secret_env === 'string' ? dag.extra.webhook_secret_env : null;
        const secret = envName ? config.env[envName] : config.webhookSecret;
        // A missing body (no Content-Length) leaves req.body as {}; the signature covers zero bytes then.
        const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const v = verifyWebhook({ rawBody, headers: req.headers, secret, replayWindowSec: windowSec });
        if (!v.ok) {
          const reason =
            v.status === 403 && envName
              ? `Webhooks of DAG '${dagId}' are disabled: its extra.webhook_secret_env names ${envName}, which is not set on the API server. Set it and sign deliveries with it.`
              : v.reason;
          log.warn({ dag_id: dagId, status: v.status }, `webhook for ${dagId} refused: ${reason}`);
          throw new ApiProblem(v.status, reason);
        }
        // Checked after the signature, so an unsigned caller cannot probe which DAGs exist.
        if (!dag) throw notFound(`DAG '${dagId}' is not defined; point the webhook at /hooks/<dag_id> of a loaded DAG (GET /api/v1/dags lists them)`);
        const conf = parseConf(rawBody);
        if (req.headers['x-github-event'] === 'ping') {
          return { pong: true, dag_id: dagId, detail: `signature verified; deliveries to /hooks/${dagId} will start runs of ${dagId}` };
        }

        if (!(await dedup.claim(dagId, v.deliveryId))) {
          const runId = await waitForRunId(dedup, dagId, v.deliveryId);
          const run = runId ? await store.getRun(dagId, runId) : null;
          log.info({ dag_id: dagId, delivery: v.deliveryId, run_id: runId }, 'resent webhook delivery ignored');
          if (!run) throw conflict(`delivery '${v.deliveryId}' of DAG '${dagId}' is already being handled; retry in a few seconds`);
          res.status(200);
          return { ...dagRunToApi(run), delivery_id: v.deliveryId, duplicate: true };
        }
        try {
          const run = await triggerAtNow(store, dag, { run_type: 'webhook', conf, note: `webhook delivery ${v.deliveryId} (${v.format} signature)` });
          await dedup.setRunId(dagId, v.deliveryId, run.dag_run_id);
          log.info({ dag_id: dagId, delivery: v.deliveryId, run_id: run.dag_run_id }, `webhook started run ${run.dag_run_id} of ${dagId}`);
          return { ...dagRunToApi(run), delivery_id: v.deliveryId, duplicate: false };
        } catch (e) {
          // Let the sender's retry through: this delivery started nothing.
          await dedup.release(dagId, v.deliveryId);
          if (e instanceof DagRunExistsError) throw conflict(e.message);
          if (e instanceof TriggerError) throw badRequest(e.message);
          throw e;
        }
      },
    },
  ];
}

function parseConf(raw: Buffer): Record<string, Json> {
  const text = raw.toString('utf8').trim();
  if (text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw badRequest(`The webhook body is not JSON (${(e as Error).message}); send a JSON object, which becomes the run's conf.`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw badRequest('The webhook body must be a JSON object (it becomes the run\'s conf), e.g. {"ref": "main"}.');
  }
  return v as Record<string, Json>;
}

/** The run id a concurrent first copy of this delivery records; '' while it is still creating the run. */
async function waitForRunId(dedup: DeliveryDedup, dagId: string, deliveryId: string): Promise<string | null> {
  for (let i = 0; i < 40; i++) {
    const id = await dedup.runIdOf(dagId, deliveryId);
    if (id === null) return null;
    if (id !== '') return id;
    await sleep(50);
  }
  return null;
}

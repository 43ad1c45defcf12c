import type { TaskOutcome } from '../dag/types.ts';
import { renderTemplate } from '../util/template.ts';
import { runChild } from './child-process.ts';
import type { AbortReason, Operator, OperatorRunRequest } from './operator.ts';

/** Runs an argv array as a child process; a non-zero exit fails the try. */
export class CommandOperator implements Operator {
  readonly type = 'command';

  async execute(req: OperatorRunRequest): Promise<TaskOutcome> {
    const args = req.task.operator_args as { argv: string[]; env: Record<string, string>; cwd: string | null };
    const ctx = req.context;
    let argv: string[];
    let userEnv: Record<string, string>;
    try {
      argv = args.argv.map((a) => renderTemplate(a, ctx));
      userEnv = Object.fromEntries(Object.entries(args.env ?? {}).map(([k, v]) => [k, renderTemplate(String(v), ctx)]));
    } catch (e) {
      return { state: 'failed', fatal: true, error: `task '${req.task.task_id}': ${(e as Error).message}` };
    }
    const env = {
      ...process.env,
      ...userEnv,
      PODFLOW_DAG_ID: req.dag.dag_id,
      PODFLOW_RUN_ID: req.run.dag_run_id,
      PODFLOW_TASK_ID: req.task.task_id,
      PODFLOW_MAP_INDEX: String(req.ti.map_index),
      PODFLOW_TRY_NUMBER: String(req.ti.try_number),
      PODFLOW_LOGICAL_DATE: req.run.logical_date,
    };
    req.log.info(`running ${JSON.stringify(argv)}`);
    const res = await runChild(argv, { env, cwd: args.cwd ?? undefined, signal: req.signal, log: req.log });
    const facts = { argv, exit_code: res.exit_code };
    if (res.spawn_error) return { state: 'failed', fatal: true, error: res.spawn_error, exit_code: null, facts };
    if (req.signal.aborted) {
      const reason = req.signal.reason as AbortReason | undefined;
      return { state: 'failed', error: `${reason?.message ?? 'stopped'}; the process was killed`, exit_code: res.exit_code, facts };
    }
    if (res.exit_code === 0) {
      return { state: 'success', exit_code: 0, return_value: res.last_line, facts };
    }
    return {
      state: 'failed',
      exit_code: res.exit_code,
      error: res.signal ? `command was killed by ${res.signal}` : `command exited with code ${res.exit_code}`,
      facts,
    };
  }
}

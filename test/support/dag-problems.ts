import { DagDefinitionError } from '../../src/dag/dag.ts';

/** The problems toSpec() reports for a DAG (empty when it is valid). */
export function problems(build: () => { toSpec(): unknown }): string[] {
  try {
    build().toSpec();
  } catch (e) {
    if (e instanceof DagDefinitionError) return e.problems;
    throw e;
  }
  return [];
}

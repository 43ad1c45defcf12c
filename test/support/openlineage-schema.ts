import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** ../shared/openlineage beside the repository clone, as CI lays it out. */
export const SHARED_OPENLINEAGE_DIR = fileURLToPath(new URL('../../../shared/openlineage/', import.meta.url));
/** The copy vendored in this repository, so a fresh clone without ../shared can run the lineage tests. */
export const VENDORED_OPENLINEAGE_DIR = fileURLToPath(new URL('./openlineage/', import.meta.url));

/**
 * The folder holding OpenLineage.json and facets/: ../shared/openlineage when it exists
 * (the reference copy CI provides), else the vendored copy in test/support/openlineage/.
 * test/unit/openlineage-schema.test.ts keeps the two byte-identical.
 */
export function openLineageSchemaDir(): string {
  return existsSync(`${SHARED_OPENLINEAGE_DIR}OpenLineage.json`) ? SHARED_OPENLINEAGE_DIR : VENDORED_OPENLINEAGE_DIR;
}

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLineageSchemaDir, SHARED_OPENLINEAGE_DIR, VENDORED_OPENLINEAGE_DIR } from '../support/openlineage-schema.ts';

/** Every file below `dir`, as paths relative to it, sorted. */
function files(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length).replace(/^\/+/, ''))
    .sort();
}

const hasShared = existsSync(join(SHARED_OPENLINEAGE_DIR, 'OpenLineage.json'));

describe('vendored OpenLineage schema', () => {
  it('holds the core schema and the facet schemas', () => {
    expect(files(VENDORED_OPENLINEAGE_DIR)).toEqual([
      'OpenLineage.json',
      'README.md',
      'facets/DatasetVersionDatasetFacet.json',
      'facets/ErrorMessageRunFacet.json',
      'facets/JobTypeJobFacet.json',
      'facets/NominalTimeRunFacet.json',
      'facets/OutputStatisticsOutputDatasetFacet.json',
      'facets/ParentRunFacet.json',
      'facets/ProcessingEngineRunFacet.json',
      'facets/SourceCodeLocationJobFacet.json',
    ]);
  });

  it('uses ../shared/openlineage when it exists, else the vendored copy', () => {
    expect(openLineageSchemaDir()).toBe(hasShared ? SHARED_OPENLINEAGE_DIR : VENDORED_OPENLINEAGE_DIR);
  });

  it.skipIf(!hasShared)('is byte-identical to ../shared/openlineage (the README only gains a NOTICE)', () => {
    expect(files(VENDORED_OPENLINEAGE_DIR)).toEqual(files(SHARED_OPENLINEAGE_DIR));
    for (const f of files(SHARED_OPENLINEAGE_DIR)) {
      const shared = readFileSync(join(SHARED_OPENLINEAGE_DIR, f));
      const vendored = readFileSync(join(VENDORED_OPENLINEAGE_DIR, f));
      if (f === 'README.md') {
        expect(vendored.subarray(0, shared.length).equals(shared), `${f} must start with the shared README`).toBe(true);
        expect(vendored.subarray(shared.length).toString('utf8')).toContain('NOTICE: ');
      } else {
        expect(vendored.equals(shared), `${f} differs from ${SHARED_OPENLINEAGE_DIR}${f}: copy it again`).toBe(true);
      }
    }
  });
});

import type { Command } from 'commander';
import type { CliContext } from './main.ts';
import { addBackfillCommands } from './backfill-commands.ts';
import { addDatasetCommands } from './dataset-commands.ts';
import { addLineageCommands } from './lineage-commands.ts';

/**
 * Command groups beyond the core (backfill, datasets, lineage …). Each feature module exports
 * an adder and is listed here, so `podflow --help` shows one program.
 */
export const extraCommands: ((program: Command, ctx: CliContext) => void)[] = [addDatasetCommands, addBackfillCommands, addLineageCommands];

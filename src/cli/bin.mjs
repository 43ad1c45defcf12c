#!/usr/bin/env node
// The `podflow` command. Sources and DAG files are TypeScript, run through tsx's loader
// without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
await main(process.argv);

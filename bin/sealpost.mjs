#!/usr/bin/env node
// Entry of the `sealpost` command. The sources are TypeScript, run through
// tsx's loader so there is no separate compile step to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

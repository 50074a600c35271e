#!/usr/bin/env node
/** Entry point of the `lane-vision` command (package.json "bin"). */
import { runCli } from './run.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    // exitCode, not exit(): stdout may still be draining into a pipe.
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`lane-vision: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

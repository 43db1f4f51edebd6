#!/usr/bin/env node
// The sluice command: a thin launcher for the compiled CLI (run `npm run build` first in a checkout).
import { main } from '../dist/cli/main.js';

// Job bundles carry inline source maps: stack traces of user code then point at the user's own files.
process.setSourceMapsEnabled(true);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

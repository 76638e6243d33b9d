#!/usr/bin/env node
// The `mm` / `middle-management` command: the CLI bundled by scripts/build-cli.mjs
// (run on `npm ci` / `npm install`, or `npm run build:cli`).
import('../dist/cli/main.mjs').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli/main.mjs')) {
    process.stderr.write('mm: the CLI is not built yet; run `npm run build:cli` (npm ci does it too).\n');
    process.exit(7);
  }
  throw error;
});

// In this repository (devDependencies installed): patch serverless-offline and build the mm CLI.
// Installed as someone's dependency there is nothing to patch, and dist/ ships prebuilt (prepack).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const installed = (name) => existsSync(fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url)));
const run = (script, ...args) => execFileSync(process.execPath, [script, ...args], { stdio: 'inherit' });

if (installed('patch-package') && installed('serverless-offline')) {
  run(fileURLToPath(new URL('../node_modules/patch-package/index.js', import.meta.url)));
}
if (installed('esbuild')) {
  run(fileURLToPath(new URL('./build-cli.mjs', import.meta.url)), '--quiet');
}

// `prepare`: runs in this repository after `npm ci`/`npm install`, and before `npm pack`;
// never in a project that installs the package from a tarball or a registry.
// Applies patches/ (while there is one) and builds the library, the CommonJS entries and the CLI.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const installed = (name) => existsSync(here(`../node_modules/${name}/package.json`));
const run = (script, ...args) => execFileSync(process.execPath, [script, ...args], { stdio: 'inherit' });

if (existsSync(here('../patches')) && installed('patch-package')) {
  run(here('../node_modules/patch-package/index.js'));
}
run(here('./build.mjs'), '--quiet');

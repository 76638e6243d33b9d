// What a build-time command manifest could save: in a fresh process, after the
// bundle is loaded, the time to load (evaluate) one command module, then every
// other one, as a first GET /__manage__ does to describe the allowed commands.
// argv[2]: a bundle exporting `commands` (name → loader). Writes JSON to fd 3.
import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const { commands } = await import(pathToFileURL(process.argv[2]).href);
const loaders = Object.values(commands);
let t = performance.now();
await loaders[0]();
const oneMs = performance.now() - t;
t = performance.now();
await Promise.all(loaders.slice(1).map((load) => load()));
const restMs = performance.now() - t;
writeSync(3, JSON.stringify({ count: loaders.length, oneMs, restMs, allMs: oneMs + restMs }));

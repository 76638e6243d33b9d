// Cold init probe: a fresh `node` loads one bundled handler and exits.
// argv[2]: the bundle (absent: load nothing, the ESM-loader floor). Writes {importMs, importCpuMs} to fd 3 when BENCH_FD3 is set.
import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const bundle = process.argv[2];
const started = performance.now();
const cpu = process.cpuUsage();
if (bundle) {
  const module = await import(pathToFileURL(bundle).href);
  if (typeof module.handler !== 'function') throw new Error(`${bundle} exports no handler`);
}
const importMs = performance.now() - started;
const { user, system } = process.cpuUsage(cpu);
// CPU time (all threads) is less disturbed than wall time by other load on the machine.
const importCpuMs = (user + system) / 1000;
if (process.env.BENCH_FD3) writeSync(3, JSON.stringify({ importMs, importCpuMs, bootMs: started }));

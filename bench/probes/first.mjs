// First-invocation probe: a fresh `node` loads a bundled handler, then times its
// first and second invocation with the same HTTP event (a real token; the JWKS
// comes from a loopback issuer, the item goes to a local DynamoDB).
// argv[2]: the bundle; env BENCH_TOKEN, BENCH_PATH. Writes JSON to fd 3.
import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { httpEvent } from './http-event.mjs';

const [bundle] = process.argv.slice(2);
const token = process.env.BENCH_TOKEN;
const path = process.env.BENCH_PATH ?? '/__manage__/echo';
const body = JSON.stringify({ data: { message: 'hello' } });

const event = () => httpEvent({ path, token, body });

function context() {
  const end = Date.now() + 900_000;
  return { awsRequestId: `bench-${Math.random().toString(36).slice(2)}`, getRemainingTimeInMillis: () => end - Date.now() };
}

const cpuMs = (since) => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1000;
};
const t0 = performance.now();
const c0 = process.cpuUsage();
const { handler } = await import(pathToFileURL(bundle).href);
const t1 = performance.now();
const importCpuMs = cpuMs(c0);
const c1 = process.cpuUsage();
const first = await handler(event(), context());
const t2 = performance.now();
const firstCpuMs = cpuMs(c1);
const second = await handler(event(), context());
const t3 = performance.now();
for (const response of [first, second]) {
  if (response?.statusCode !== 200) throw new Error(`handler answered ${response?.statusCode}: ${response?.body}`);
}
writeSync(3, JSON.stringify({ importMs: t1 - t0, importCpuMs, firstMs: t2 - t1, firstCpuMs, secondMs: t3 - t2 }));

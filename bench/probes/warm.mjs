// Warm-overhead probe: one process, the handler built once with in-memory audit
// and state stores and the real token verifier (JWKS fetched once from the
// loopback issuer), then `echo` through the whole handler (HTTP event, token
// verified every time) and `echo`'s own `run` called directly, alternately.
// argv[2]: the warm bundle (bench/entries/warm.ts); env BENCH_TOKEN, BENCH_ITERATIONS, BENCH_WARMUP.
// Writes JSON to fd 3.
import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { httpEvent } from './http-event.mjs';

const mm = await import(pathToFileURL(process.argv[2]).href);
const iterations = Number(process.env.BENCH_ITERATIONS ?? 3000);
const warmup = Number(process.env.BENCH_WARMUP ?? 500);
const token = process.env.BENCH_TOKEN;
const path = '/__manage__/echo';
const body = JSON.stringify({ data: { message: 'hello' } });

const config = mm.loadConfig(process.env, Object.keys(mm.commandLoaders));
const handler = mm.createManageHandler(config, {
  commands: mm.commandLoaders,
  audit: new mm.MemoryAuditStore(),
  state: new mm.MemoryStateStore(),
});

const event = () => httpEvent({ path, token, body });
const end = Date.now() + 900_000;
const context = { awsRequestId: 'bench', getRemainingTimeInMillis: () => end - Date.now() };

// What the pipeline hands `run`: validated arguments, and a context.
const args = mm.validateArguments(mm.echo.args, { message: 'hello' });
const direct = async () => {
  const output = [];
  const ctx = { executionId: 'x', actor: { kind: 'invoke', name: 'bench' }, deadline: Date.now() + 30_000, signal: new AbortController().signal, log: (...parts) => output.push(parts.join(' ')) };
  return mm.echo.run(args, ctx);
};
const through = async () => {
  const response = await handler(event(), context);
  if (response.statusCode !== 200) throw new Error(`echo answered ${response.statusCode}: ${response.body}`);
};

for (let i = 0; i < warmup; i++) {
  await through();
  await direct();
}
const handlerMs = [];
const directMs = [];
for (let i = 0; i < iterations; i++) {
  let t = performance.now();
  await through();
  handlerMs.push(performance.now() - t);
  t = performance.now();
  await direct();
  directMs.push(performance.now() - t);
}
writeSync(3, JSON.stringify({ handlerMs, directMs }));

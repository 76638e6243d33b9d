/**
 * `npm run fuzz`: the request property of ./properties.ts, FUZZ_RUNS times
 * (default 10,000) within FUZZ_TIME_LIMIT_MS (default 10 minutes). FUZZ_SEED
 * replays a run; the seed is printed either way.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { envNumber, fuzzRequests } from './properties.js';

const runs = envNumber('FUZZ_RUNS', 10_000);
const timeLimitMs = envNumber('FUZZ_TIME_LIMIT_MS', 600_000);
const seed = envNumber('FUZZ_SEED', Date.now() % 2_147_483_647);

it(`${runs} random requests through the handler keep to the contract (seed ${seed})`, { timeout: timeLimitMs + 120_000 }, async (t) => {
  t.diagnostic(`fuzz: ${runs} runs, seed ${seed} (FUZZ_SEED=${seed} replays it)`);
  const stats = await fuzzRequests({ numRuns: runs, timeLimitMs, seed, progress: (line) => t.diagnostic(`fuzz: ${line}`) });
  t.diagnostic(
    `fuzz: ${stats.runs} runs in ${(stats.durationMs / 1000).toFixed(1)} s, ${stats.executions} executions audited, statuses ${JSON.stringify(stats.statuses)}`,
  );
  assert.equal(stats.runs, runs, `only ${stats.runs} of ${runs} runs fitted in ${timeLimitMs} ms`);
});

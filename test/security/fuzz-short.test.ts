/**
 * The short request fuzz of `npm test`: a few hundred random requests through
 * the handler with a fixed seed (FUZZ_SEED overrides it), checked against the
 * contract by the property of test/fuzz/properties.ts. `npm run fuzz` runs the
 * same property 10,000+ times with a random seed.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { envNumber, fuzzRequests } from '../fuzz/properties.js';

const runs = envNumber('FUZZ_SHORT_RUNS', 300);

it(`${runs} random requests keep to the contract, leave prototypes clean and audit every run`, { timeout: 60_000 }, async () => {
  const stats = await fuzzRequests({ numRuns: runs, timeLimitMs: 30_000, seed: envNumber('FUZZ_SEED', 20_240_601) });
  assert.ok(stats.runs >= Math.min(runs, 100), `only ${stats.runs} runs in the time limit`);
  assert.ok(stats.executions > 0, 'some requests ran a command');
});

#!/usr/bin/env node
/**
 * How fast `mm --help` starts: runs the built CLI N times (default 20) as a
 * child process and prints the median, p95 and max wall time. Fails when the
 * median is 300 ms or more (the goal is well under half a second).
 *
 *   node scripts/bench-cli.mjs [runs]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'mm.js');
if (!existsSync(join(root, 'dist', 'cli', 'main.mjs'))) {
  const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-cli.mjs')], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
const runs = Number(process.argv[2] ?? 20);
const times = [];
for (let i = 0; i < runs; i++) {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0 || !result.stdout.includes('Exit codes')) {
    process.stderr.write(`mm --help failed (exit ${result.status}): ${result.stderr}\n`);
    process.exit(1);
  }
  times.push(ms);
}
times.sort((a, b) => a - b);
const pick = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
const line = `mm --help start-up over ${runs} runs: median ${pick(0.5).toFixed(0)} ms, p95 ${pick(0.95).toFixed(0)} ms, max ${times.at(-1).toFixed(0)} ms`;
process.stdout.write(`${line}\n`);
if (pick(0.5) >= 300) {
  process.stderr.write('too slow: the goal is well under 500 ms\n');
  process.exit(1);
}

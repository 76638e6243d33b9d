/**
 * `npm run load` itself, small: a clean run reconciles and exits 0; a run that
 * loses outcome writes (--drop-outcomes) is caught and exits 1.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

function load(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=NodeVersionSupportWarning', '--import', 'tsx', 'scripts/load.ts', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOAD_URL: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

it('a small load run reconciles with the audit and exits 0', { timeout: 90_000 }, async () => {
  const run = await load(['--requests', '150', '--concurrency', '8', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout);
  assert.equal(summary.requests, 150);
  assert.equal(summary.unexpectedStatuses, 0);
  assert.equal(summary.reconciliationProblems, 0);
  assert.equal(summary.auditItemsAdded, 2 * summary.executions);
  for (const status of ['200', '400', '401', '403', '500']) assert.ok(summary.statuses[status] > 0, `some ${status}`);
});

it('a load run that loses outcome records exits 1 and says which', { timeout: 90_000 }, async () => {
  const run = await load(['--requests', '200', '--concurrency', '8', '--drop-outcomes', '--seed', '7']);
  assert.equal(run.code, 1, run.stdout);
  assert.match(run.stderr, /FAIL .*outcome/);
});

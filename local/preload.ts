/**
 * Preloaded (node --import) into the service's `serverless offline` process by
 * the dev stack, which holds the write end of that process's stdin. When the dev
 * stack goes away, even SIGKILLed, stdin ends and the whole process group
 * (offline and anything it spawned, e.g. esbuild) is terminated, so no server
 * outlives the stack.
 *
 * Kept as source text: the stack writes it to `<service>/.middle-management/`
 * (the bundled CLI has no file of its own to point node at).
 */
export const EXIT_WITH_PARENT_SOURCE = `// Written by \`middle-management dev\`; see local/preload.ts in serverless-middle-management.
import process from 'node:process';

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  try {
    process.kill(-process.pid, 'SIGTERM');
  } catch {
    process.kill(process.pid, 'SIGTERM');
  }
  // Offline may hang on a running handler: do not outlive the parent by more than a few seconds.
  setTimeout(() => process.exit(1), 5000).unref();
}

if (!process.stdin.isTTY) {
  process.stdin.on('end', stop).on('close', stop).on('error', stop);
  process.stdin.resume();
  // Only a watchdog: it must not keep the process alive by itself.
  process.stdin.unref?.();
}
`;

// Preloaded (node --import) into serverless-offline by local/start.ts, which
// holds the write end of this process's stdin. When start.ts goes away, even
// SIGKILLed, stdin ends and this process group (offline and anything it spawned,
// e.g. esbuild) is terminated, so no server outlives the stack.
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

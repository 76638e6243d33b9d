/**
 * Runs the built `mm` CLI as a child process, as an operator would: the CLI is
 * bundled once per test process into a temporary directory (so tests always
 * run the current sources and never race on dist/), and every run gets a
 * clean environment with its own configuration directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

let built: string | undefined;

/** Bundles cli/ with scripts/build-cli.mjs into a temp dir; returns the entry file. */
export function buildCli(): string {
  if (built) return built;
  // MM_TEST_CLI_ENTRY: run the tests against another build (e.g. an older commit's, to show a test reproduces a bug).
  if (process.env.MM_TEST_CLI_ENTRY) return (built = resolve(process.env.MM_TEST_CLI_ENTRY));
  const outdir = mkdtempSync(join(tmpdir(), 'mm-cli-build-'));
  const result = spawnSync(process.execPath, [join(root, 'scripts', 'build-cli.mjs'), '--outdir', outdir, '--quiet'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.status !== 0) throw new Error(`CLI build failed: ${result.stderr}`);
  process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
  built = join(outdir, 'main.mjs');
  return built;
}

export interface MmResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface MmOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
  /** Sees stderr as it comes (e.g. to act on a device code while mm waits). */
  onStderr?(soFar: string): void;
}

/** A temporary home with its own config directory. */
export function makeHome(): { home: string; configDir: string; cleanup(): void } {
  const home = mkdtempSync(join(tmpdir(), 'mm-cli-home-'));
  const configDir = join(home, 'config');
  return { home, configDir, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

export function writeConfig(configDir: string, config: unknown): void {
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'config.json'), JSON.stringify(config));
}

/** Runs `mm args…` with only the variables given (plus PATH), stdin a closed pipe (no TTY). Bounded in time. */
export function mm(args: string[], options: MmOptions = {}): Promise<MmResult> {
  const entry = buildCli();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NO_COLOR: '1',
    MM_RETRY_DELAYS_MS: '20,20,20',
    MM_POLL_INTERVAL_MS: '30',
  };
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [entry, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      options.onStderr?.(stderr);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mm ${args.join(' ')} did not finish in ${options.timeoutMs ?? 15_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 15_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface FakeServer {
  url: string;
  requests: Recorded[];
  close(): Promise<void>;
}

/** A small HTTP server on loopback whose answers the test writes. */
export async function fakeServer(
  handle: (request: Recorded, res: ServerResponse, req: IncomingMessage) => void | Promise<void>,
): Promise<FakeServer> {
  const requests: Recorded[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const recorded: Recorded = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    requests.push(recorded);
    try {
      await handle(recorded, res, req);
    } catch (error) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'TestServerError', message: String(error) } }));
    }
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise((resolveClose) => {
        server.closeAllConnections?.();
        server.close(() => resolveClose());
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(typeof body === 'string' ? body : JSON.stringify(body));
}

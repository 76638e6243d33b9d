/**
 * Fault injection for the audit store, at two levels:
 *
 * - {@link faultyStore}: an AuditStore wrapper that fails chosen writes
 *   (attempt or outcome) with chosen errors, and records every call;
 * - {@link startDynamoProxy}: a proxy on loopback in front of dynalite that the
 *   handler's real DynamoDB client talks to. Per request it forwards, delays,
 *   holds the response, answers an AWS error (ThrottlingException 400, 500),
 *   damages the answer's checksum, resets the connection or never answers; and
 *   it can be stopped outright. It keeps each request as it came, for checks of
 *   what a client sends.
 *
 * Both classify a write as an attempt or an outcome record whatever the store's
 * item layout (see ../security/support.ts).
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { AuditStore } from '../../src/stores/audit/store.js';
import { classifyItem, type RecordKind } from '../security/support.js';

export type WriteKind = RecordKind;

export interface StoreCall {
  kind: WriteKind;
  method: string;
  at: number;
  failed: boolean;
}

/**
 * Wraps a store; `fault(kind, n)` is asked before each write (n counts writes of
 * that kind from 1) and returns the error to fail it with, or undefined to let it through.
 * Works with `recordAttempt`/`recordOutcome` stores and with `append({ kind })` stores.
 */
export function faultyStore(
  inner: AuditStore,
  fault: (kind: WriteKind, n: number, executionId: string | undefined) => unknown,
): AuditStore & { calls: StoreCall[] } {
  const calls: StoreCall[] = [];
  const counts: Record<WriteKind, number> = { attempt: 0, outcome: 0, other: 0 };
  const kindOf = (method: string, args: unknown[]): WriteKind | undefined => {
    if (method === 'recordAttempt') return 'attempt';
    if (method === 'recordOutcome') return 'outcome';
    if (method === 'append') {
      const kind = (args[0] as { kind?: string } | undefined)?.kind;
      return kind === 'attempt' || kind === 'outcome' ? kind : 'other';
    }
    return undefined;
  };
  return new Proxy(inner as AuditStore & { calls: StoreCall[] }, {
    get(target, property, receiver) {
      if (property === 'calls') return calls;
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        const kind = kindOf(property, args);
        if (kind === undefined) return value.apply(target, args);
        const n = ++counts[kind];
        const written = args[0] as { executionId?: string; record?: { executionId?: string } } | undefined;
        const error = fault(kind, n, written?.record?.executionId ?? written?.executionId);
        const failed = error !== undefined;
        calls.push({ kind, method: property, at: Date.now(), failed });
        if (failed) return Promise.reject(error);
        return value.apply(target, args);
      };
    },
  });
}

/** What the proxy saw of one request. */
export interface ProxiedRequest {
  /** e.g. `DynamoDB_20120810.PutItem` */
  target: string;
  /** For a PutItem: which record it writes. */
  write?: WriteKind;
  /** 1-based index among all requests. */
  n: number;
  /** The request as it came: method, path, headers and body (what a signature covers). */
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export type ProxyAction =
  | { kind: 'forward' }
  /** Wait, then forward. */
  | { kind: 'delay'; ms: number }
  /** Forward at once (the write happens), but hold the response back. */
  | { kind: 'holdResponse'; ms: number }
  /** Answer an AWS JSON error without forwarding. */
  | { kind: 'error'; status: number; type: string; message?: string }
  | { kind: 'reset' }
  | { kind: 'hang' }
  /** Forward, but change the answer's `x-amz-crc32`: an answer damaged on the way. */
  | { kind: 'corruptChecksum' };

export const forward: ProxyAction = { kind: 'forward' };
export const throttle: ProxyAction = {
  kind: 'error',
  status: 400,
  type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException',
  message: 'Rate of requests exceeds the allowed throughput.',
};
export const internalError: ProxyAction = { kind: 'error', status: 500, type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'Internal server error' };

export interface DynamoProxy {
  url: string;
  /** Decides each request; default: forward everything. */
  rule: (request: ProxiedRequest) => ProxyAction;
  requests: ProxiedRequest[];
  /** Stops listening and drops every connection: the endpoint refuses from now on. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

function writeKindOf(target: string, body: string): WriteKind | undefined {
  if (!target.endsWith('.PutItem')) return undefined;
  try {
    const item = (JSON.parse(body) as { Item?: Record<string, Record<string, unknown>> }).Item ?? {};
    // The wire format is typed ({ S: "…" }); the classifier reads plain values.
    const plain = Object.fromEntries(Object.entries(item).map(([k, v]) => [k, v?.S ?? v?.N ?? v]));
    return classifyItem(plain).kind;
  } catch {
    return 'other';
  }
}

export async function startDynamoProxy(targetEndpoint: string): Promise<DynamoProxy> {
  const target = new URL(targetEndpoint);
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };
  let stopped = false;

  const proxy: DynamoProxy = {
    url: '',
    rule: () => forward,
    requests: [],
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      await proxy.stop();
    },
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const amzTarget = String(req.headers['x-amz-target'] ?? '');
      const write = writeKindOf(amzTarget, body.toString('utf8'));
      const seen: ProxiedRequest = {
        target: amzTarget,
        ...(write ? { write } : {}),
        n: proxy.requests.length + 1,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: body.toString('utf8'),
      };
      proxy.requests.push(seen);
      const action = proxy.rule(seen);
      const send = (status: number, headers: IncomingHttpHeaders, payload: Buffer) => {
        if (!res.destroyed) res.writeHead(status, headers as Record<string, string>).end(payload);
      };
      const pass = (holdMs = 0, corrupt = false) => {
        const upstream = httpRequest(
          { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
          (response) => {
            const parts: Buffer[] = [];
            response.on('data', (chunk: Buffer) => parts.push(chunk));
            response.on('end', () => {
              const headers = corrupt ? { ...response.headers, 'x-amz-crc32': String((Number(response.headers['x-amz-crc32'] ?? 0) + 1) >>> 0) } : response.headers;
              const done = () => send(response.statusCode ?? 502, headers, Buffer.concat(parts));
              if (holdMs > 0) later(holdMs, done);
              else done();
            });
          },
        );
        upstream.on('error', () => res.destroy());
        upstream.end(body);
      };
      switch (action.kind) {
        case 'forward':
          return pass();
        case 'delay':
          return later(action.ms, () => pass());
        case 'holdResponse':
          return pass(action.ms);
        case 'corruptChecksum':
          return pass(0, true);
        case 'error': {
          const payload = Buffer.from(JSON.stringify({ __type: action.type, message: action.message ?? action.type }));
          return send(action.status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `proxy-${seen.n}` }, payload);
        }
        case 'reset':
          return req.socket.destroy();
        case 'hang':
          return;
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

/** Collects unhandled rejections while a suite runs. */
export function watchUnhandledRejections(): { reasons: unknown[]; stop(): void } {
  const reasons: unknown[] = [];
  const listener = (reason: unknown) => reasons.push(reason);
  process.on('unhandledRejection', listener);
  return { reasons, stop: () => process.off('unhandledRejection', listener) };
}

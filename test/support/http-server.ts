/**
 * Serves a `manage` handler over real HTTP on loopback, translating each request
 * into an API Gateway HTTP API (payload 2.0) event as API Gateway would: for
 * clients under test (the CLI, load runs) without booting serverless-offline.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lambdaContext } from './stack.js';

export interface ServedHandler {
  url: string;
  close(): Promise<void>;
}

type Handler = (event: any, context: any) => Promise<any>;

export async function serveHandler(handler: Handler, options: { remainingMs?: number } = {}): Promise<ServedHandler> {
  const server: Server = createServer(async (req, res) => {
    try {
      const event = await toEvent(req);
      const response = await handler(event, lambdaContext(options.remainingMs ?? 30_000));
      // As API Gateway does: a base64 body (isBase64Encoded, e.g. the console's gzip-compressed assets) goes out as its bytes.
      const body = response.isBase64Encoded ? Buffer.from(response.body ?? '', 'base64') : (response.body ?? '');
      res.writeHead(response.statusCode, response.headers ?? {}).end(body);
    } catch (error) {
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Internal Server Error' }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

async function toEvent(req: IncomingMessage) {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!;
    // API Gateway joins repeated headers with commas.
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = value;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    requestContext: {
      http: { method: req.method ?? 'GET', path: url.pathname, sourceIp: req.socket.remoteAddress ?? '127.0.0.1', userAgent: headers['user-agent'] ?? '', protocol: 'HTTP/1.1' },
      requestId: `local-${Math.random().toString(36).slice(2)}`,
      stage: '$default',
    },
    ...(body.length ? { body: body.toString('base64'), isBase64Encoded: true } : {}),
  };
}

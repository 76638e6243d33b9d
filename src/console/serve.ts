/**
 * The web console (issue 14), served by the `manage` function itself:
 * `GET <base>/__manage__/console` (the page) and `…/console/app.js`, `…/console/app.css`.
 *
 * Loaded by a dynamic import from the HTTP transport for these paths only, so API
 * requests never load (or parse) the page's code. The page is public: it holds no
 * data and no secret; everything it shows comes from the bearer API.
 *
 * The two assets are kept gzip-compressed (./assets.ts, by scripts/build-console.mjs):
 * a client that accepts gzip gets those bytes as they are (`content-encoding: gzip`,
 * a base64 body with `isBase64Encoded`), when the transport carries binary bodies;
 * any other answer is the text, decompressed on first use and kept.
 */
import type { ConsoleConfig, ManageConfig } from '../config.js';
import { scriptGzip, scriptVersion, styleGzip, styleVersion } from './assets.js';

export interface ConsoleRequest {
  method: string;
  path: string;
  query?: Record<string, string>;
  /** The request's Accept-Encoding header. */
  acceptEncoding?: string;
  /**
   * Whether the response may be binary (a base64 body with `isBase64Encoded`):
   * API Gateway HTTP APIs and function URLs decode it; a REST API does so only
   * with binary media types set up, so its events get text.
   */
  binary?: boolean;
}

export interface ConsoleResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  /** The body is base64 of the bytes to send (the gzip-compressed asset). */
  isBase64Encoded?: boolean;
}

interface Asset {
  type: string;
  version: string;
  gzip: string;
  /** The text, once a client that takes no gzip asked for it. */
  text?: string;
}

const ASSETS: Record<string, Asset> = {
  'app.js': { type: 'text/javascript; charset=utf-8', version: scriptVersion, gzip: scriptGzip },
  'app.css': { type: 'text/css; charset=utf-8', version: styleVersion, gzip: styleGzip },
};

/**
 * Whether an Accept-Encoding header takes gzip: `gzip` (or `x-gzip`) with a
 * non-zero q-value, or `*` with one when gzip is not named (RFC 9110 §12.5.3).
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  let gzip: number | undefined;
  let any: number | undefined;
  for (const part of header.split(',')) {
    const [coding = '', ...parameters] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const q = parameters.find((parameter) => /^q\s*=/.test(parameter));
    const weight = q === undefined ? 1 : Number(q.slice(q.indexOf('=') + 1).trim());
    const quality = Number.isFinite(weight) && weight > 0 ? weight : 0;
    if (coding === 'gzip' || coding === 'x-gzip') gzip = Math.max(gzip ?? 0, quality);
    else if (coding === '*') any = quality;
  }
  return (gzip ?? any ?? 0) > 0;
}

/** `<stage?>/__manage__/console` and anything under it. */
export const CONSOLE_PATH = /^(?:\/[^/]+)?\/__manage__\/console(?:\/.*)?$/;

export async function serveConsole(request: ConsoleRequest, config: Pick<ManageConfig, 'console'>): Promise<ConsoleResponse> {
  const match = /^(.*\/__manage__\/console)(?:\/(.*))?$/.exec(request.path);
  const base = match?.[1] ?? '/__manage__/console';
  const asset = match?.[2] ?? '';
  const head = request.method === 'HEAD';
  const version = request.query?.v;
  if (asset === '') return respond(200, pageHeaders(config.console), head ? '' : page(base, config.console));
  const file = Object.hasOwn(ASSETS, asset) ? ASSETS[asset] : undefined;
  if (file) return serveAsset(file, request, version === file.version, head);
  return respond(404, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }, JSON.stringify({ error: { code: 'NotFound', message: 'No such route.' } }));
}

function respond(statusCode: number, headers: Record<string, string>, body: string): ConsoleResponse {
  return { statusCode, headers, body };
}

/** The compressed bytes as they are when the client and the transport take them; the text otherwise. */
async function serveAsset(file: Asset, request: ConsoleRequest, versioned: boolean, head: boolean): Promise<ConsoleResponse> {
  const headers = assetHeaders(file.type, versioned);
  if (request.binary && acceptsGzip(request.acceptEncoding)) {
    headers['content-encoding'] = 'gzip';
    return head ? respond(200, headers, '') : { statusCode: 200, headers, body: file.gzip, isBase64Encoded: true };
  }
  if (head) return respond(200, headers, '');
  // node:zlib is loaded here, for the rare client that takes no gzip: a static import would load it at every cold start.
  file.text ??= (await import('node:zlib')).gunzipSync(Buffer.from(file.gzip, 'base64')).toString('utf8');
  return respond(200, headers, file.text);
}

/** The only origins the page may talk to: itself (the API) and the issuer (discovery, token endpoint). */
export function contentSecurityPolicy(settings: ConsoleConfig | undefined): string {
  const auth = settings ? [...new Set([new URL(settings.issuer).origin, ...settings.authOrigins])] : [];
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self' ${auth.join(' ')}`.trim(),
    `form-action 'self' ${auth.join(' ')}`.trim(),
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; ');
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // The sign-in answer's code is in the address bar for a moment: never send it on.
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

function pageHeaders(settings: ConsoleConfig | undefined): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': contentSecurityPolicy(settings),
    ...SECURITY_HEADERS,
  };
}

function assetHeaders(type: string, versioned: boolean): Record<string, string> {
  return {
    'content-type': type,
    // A versioned URL never changes content; an unversioned one is revalidated.
    'cache-control': versioned ? 'public, max-age=31536000, immutable' : 'no-cache',
    // The same URL is answered gzip-compressed or not, by the request's Accept-Encoding.
    vary: 'accept-encoding',
    ...SECURITY_HEADERS,
  };
}

function attribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The settings travel as data attributes: no inline script, nothing the CSP must allow. */
function page(base: string, settings: ConsoleConfig | undefined): string {
  const data = settings
    ? Object.entries({
        issuer: settings.issuer,
        'client-id': settings.clientId,
        'redirect-uri': settings.redirectUri ?? '',
        scopes: settings.scopes,
        resource: settings.resource ?? '',
        'token-use': settings.tokenUse,
      })
        .filter(([, value]) => value !== '')
        .map(([name, value]) => ` data-${name}="${attribute(value)}"`)
        .join('')
    : '';
  const href = attribute(base);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>middle-management console</title>
<link rel="stylesheet" href="${href}/app.css?v=${styleVersion}">
<script type="module" src="${href}/app.js?v=${scriptVersion}"></script>
</head>
<body${data}>
<header>
<a class="brand" href="#/commands">middle-management</a>
<nav aria-label="Main"><ul>
<li><a href="#/commands">Commands</a></li>
<li><a href="#/executions">Executions</a></li>
<li><a href="#/approvals">Approvals</a></li>
<li><a href="#/audit">Audit</a></li>
</ul></nav>
<div id="user"></div>
</header>
<main id="main"><h1>Loading…</h1><noscript><p>The console needs JavaScript. The <code>mm</code> CLI does everything it does.</p></noscript></main>
</body>
</html>
`;
}

/**
 * AWS calls as small SigV4-signed HTTP requests: DynamoDB (both stores), Lambda
 * (the worker invocation) and Step Functions (task tokens).
 *
 * Why not the SDK's clients: the `manage` function makes a handful of kinds of
 * calls, and the DynamoDB client alone brought ≈ 250 kB of code into every
 * service's bundle (its retry and middleware stacks, and the credential
 * providers of every environment but Lambda's), paid at each cold start. The
 * signing is still the SDK's own (`@smithy/signature-v4`).
 *
 * Requests go over node:http(s) with keep-alive, not `fetch()`: fetch's first
 * use costs ≈ 200 ms of set-up per instance.
 */
import { createHash, createHmac } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { SignatureV4 } from '@smithy/signature-v4';

/** An AWS access key, as the signer needs it. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Where credentials come from; read at each call, so rotated ones are picked up. */
export type CredentialSource = () => AwsCredentials | Promise<AwsCredentials>;

export class AwsCallError extends Error {
  override readonly name: string = 'AwsCallError';
  constructor(
    message: string,
    /** The HTTP status of AWS's answer; undefined when none came (timeout, connection refused). */
    readonly status?: number,
    options?: ErrorOptions & {
      /** Whether another attempt may succeed: yes for a lost connection or a timeout (the default), no for missing credentials. */
      retryable?: boolean;
    },
  ) {
    super(message, options);
    this.retryable = options?.retryable ?? true;
  }

  readonly retryable: boolean;
}

/**
 * The Lambda's own credentials: Lambda puts its execution role's keys in the
 * environment. Elsewhere (a laptop against real AWS) export them the same way,
 * e.g. `eval "$(aws configure export-credentials --format env)"`, or pass a source.
 */
export const environmentCredentials: CredentialSource = () => {
  const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN } = process.env;
  if (!AWS_ACCESS_KEY_ID || !AWS_SECRET_ACCESS_KEY) {
    throw new AwsCallError('no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set', undefined, { retryable: false });
  }
  return { accessKeyId: AWS_ACCESS_KEY_ID, secretAccessKey: AWS_SECRET_ACCESS_KEY, ...(AWS_SESSION_TOKEN ? { sessionToken: AWS_SESSION_TOKEN } : {}) };
};

/**
 * Where a service's calls go when no endpoint is configured for it: `AWS_ENDPOINT_URL`
 * when set (as the SDKs read it, unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`),
 * else its public endpoint in the region (China's regions have their own domain).
 */
export function regionalEndpoint(service: string, region: string): string {
  const configured = process.env.AWS_ENDPOINT_URL;
  if (configured && !/^true$/i.test(process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? '')) return configured;
  const fips = /^true$/i.test(process.env.AWS_USE_FIPS_ENDPOINT ?? '') ? '-fips' : '';
  return `https://${service}${fips}.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

export interface SignedPost {
  /** The signing name: `dynamodb`, `lambda`, `states`. */
  service: string;
  region: string;
  /** Base URL, e.g. `https://dynamodb.eu-west-1.amazonaws.com` or a local endpoint. */
  endpoint: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** The whole request, connection included; past it the request is abandoned. */
  timeoutMs: number;
  credentials?: CredentialSource;
}

export interface SignedAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** node:crypto as the SHA-256 the signer expects. */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView) {
    this.hash.update(toBytes(data));
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

// One pool per protocol for the instance's life: a warm invocation reuses the connection.
const agents = { 'http:': new HttpAgent({ keepAlive: true }), 'https:': new HttpsAgent({ keepAlive: true }) };
const signers = new Map<string, SignatureV4>();

function signerFor(service: string, region: string, credentials: CredentialSource): SignatureV4 {
  // Only signers reading the environment are shared; one given its own source (a test's) gets its own.
  const key = `${service}\n${region}`;
  const cached = credentials === environmentCredentials ? signers.get(key) : undefined;
  if (cached) return cached;
  const signer = new SignatureV4({ service, region, sha256: Sha256, credentials: async () => credentials() });
  if (credentials === environmentCredentials) signers.set(key, signer);
  return signer;
}

/**
 * Signs and sends one POST; answers whatever status came back (the caller reads
 * AWS's error from the body). Rejects with {@link AwsCallError} (no status) when
 * no answer came in time or the connection failed.
 */
export async function signedPost(options: SignedPost): Promise<SignedAnswer> {
  const url = new URL(options.path, options.endpoint);
  const signer = signerFor(options.service, options.region, options.credentials ?? environmentCredentials);
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    headers: { host: url.host, 'user-agent': 'serverless-middle-management', ...options.headers },
    body: options.body,
  });
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const agent = url.protocol === 'https:' ? agents['https:'] : agents['http:'];
  return new Promise<SignedAnswer>((resolve, reject) => {
    const request = send(url, { method: 'POST', agent, headers: { ...signed.headers, 'content-length': String(Buffer.byteLength(options.body)) } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', fail);
      response.on('end', () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) });
      });
    });
    const timer = setTimeout(() => request.destroy(new AwsCallError(`${options.service} did not answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    function fail(error: Error) {
      clearTimeout(timer);
      reject(error instanceof AwsCallError ? error : new AwsCallError(`${options.service} could not be reached: ${error.message}`, undefined, { cause: error }));
    }
    request.on('error', fail);
    request.end(options.body);
  });
}

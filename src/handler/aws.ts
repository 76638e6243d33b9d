/**
 * The two AWS calls besides DynamoDB — invoking this function's worker and
 * reporting to a Step Functions task token — made as small signed HTTP
 * requests rather than with two more SDK clients on the cold path.
 * Credentials are the Lambda's own, from its environment.
 */
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

export interface AwsCallOptions {
  service: 'lambda' | 'states';
  region: string;
  /** Base URL, e.g. `https://lambda.eu-west-1.amazonaws.com` or a local endpoint. */
  endpoint: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export const awsCallDefaults = { timeoutMs: 3000 } as const;

export class AwsCallError extends Error {
  override readonly name = 'AwsCallError';
  constructor(message: string, readonly status?: number) {
    super(message);
  }
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

export async function awsCall(options: AwsCallOptions): Promise<{ status: number; body: string }> {
  const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN } = process.env;
  if (!AWS_ACCESS_KEY_ID || !AWS_SECRET_ACCESS_KEY) throw new AwsCallError('no AWS credentials in the environment');
  const url = new URL(options.path, options.endpoint);
  const signer = new SignatureV4({
    service: options.service,
    region: options.region,
    sha256: Sha256,
    credentials: { accessKeyId: AWS_ACCESS_KEY_ID, secretAccessKey: AWS_SECRET_ACCESS_KEY, ...(AWS_SESSION_TOKEN ? { sessionToken: AWS_SESSION_TOKEN } : {}) },
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    headers: { host: url.host, ...options.headers },
    body: options.body,
  });
  const response = await fetch(url, {
    method: 'POST',
    headers: signed.headers as Record<string, string>,
    body: options.body,
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  const body = await response.text();
  if (response.status >= 300) throw new AwsCallError(`${options.service} answered ${response.status}: ${body.slice(0, 300)}`, response.status);
  return { status: response.status, body };
}

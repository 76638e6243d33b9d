// The API Gateway HTTP API (payload 2.0) event both handler probes send: a POST
// with a bearer token and a JSON body.
export function httpEvent({ path, token, body }) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'user-agent': 'bench' },
    requestContext: {
      http: { method: 'POST', path, sourceIp: '127.0.0.1', userAgent: 'bench', protocol: 'HTTP/1.1' },
      requestId: `bench-${Math.random().toString(36).slice(2)}`,
      stage: '$default',
    },
    body,
    isBase64Encoded: false,
  };
}

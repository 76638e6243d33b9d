/**
 * test/support/oidc-provider.ts with the few provider behaviours `mm`'s
 * documented `mm configure` lines rely on and the shared harness does not
 * offer (wrapped here, the harness is unchanged):
 *
 * - `audienceParameter` (Auth0): the non-standard `audience` parameter of the
 *   device authorization and token requests picks the API (a resource server
 *   of `resources`); without it (and without `resource`) the access token is
 *   opaque, as Auth0's is without an audience.
 * - `defaultResource` (Okta custom authorization server, Entra's scope-selected
 *   API, Keycloak's audience mapper): every access token is a JWT for that API
 *   though the client names none; that is the shared harness' own option.
 * - `postAuthClients`: confidential clients registered for
 *   `client_secret_post` (`mm configure … --client-auth post`).
 * - `claimsByScope`: oidc-provider's `claims` (which scope releases which claim
 *   in ID tokens), e.g. Google's `hd` with `openid`.
 */
import { resourceServerInfo, startOidcProvider, type OidcProviderOptions, type TestOidcProvider } from '../support/oidc-provider.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface ShapedProviderOptions extends OidcProviderOptions {
  audienceParameter?: boolean;
  postAuthClients?: string[];
  claimsByScope?: Record<string, string[]>;
}

export async function startShapedProvider(options: ShapedProviderOptions): Promise<TestOidcProvider> {
  const { audienceParameter, postAuthClients = [], claimsByScope, ...base } = options;
  const configuration: Record<string, unknown> = { ...base.configuration };
  if (claimsByScope) configuration.claims = claimsByScope;
  if (postAuthClients.length > 0) {
    // The harness registers every confidential client for client_secret_basic; re-register the same clients, some for _post.
    configuration.clients = (base.clients ?? []).map((c) => ({
      client_id: c.clientId,
      ...(c.clientSecret
        ? { client_secret: c.clientSecret, token_endpoint_auth_method: postAuthClients.includes(c.clientId) ? 'client_secret_post' : 'client_secret_basic' }
        : { token_endpoint_auth_method: 'none' }),
      grant_types: c.grantTypes ?? (c.clientSecret ? ['client_credentials'] : [DEVICE_GRANT, 'refresh_token']),
      response_types: [],
      redirect_uris: [],
    }));
  }
  if (audienceParameter) {
    const oidcProviderModule = 'oidc-provider';
    const { errors } = (await import(oidcProviderModule)) as { errors: any };
    const resources = base.resources ?? {};
    // The harness' features, with a defaultResource that reads Auth0's `audience` (the token endpoint drops unknown
    // parameters from ctx.oidc.params, so it is read from the parsed body there).
    configuration.features = {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx: any, _client: unknown, oneOf?: string[]) => {
          if (oneOf) return oneOf;
          const audience = ctx.oidc?.body?.audience ?? ctx.oidc?.params?.audience;
          return typeof audience === 'string' && audience !== '' ? audience : undefined;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: resourceServerInfo(resources, errors),
      },
    };
  }
  return startOidcProvider({ ...base, configuration });
}

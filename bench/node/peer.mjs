// node-oidc-provider 9, set up as bench/server_bench.py's peer: JWT access tokens for one resource
// server (RFC 8707 resource indicators), one client_credentials client with client_secret_basic,
// ES256, in-memory adapter, no per-request log, a cluster of PEER_WORKERS processes on one port.
//
//   PEER_PORT=8100 PEER_WORKERS=2 PEER_CLIENT_ID=... PEER_CLIENT_SECRET=... node peer.mjs
import { isPrimary, startPrimary, workerKey } from './cluster.mjs';

const port = Number(process.env.PEER_PORT ?? 8100);
const workers = Number(process.env.PEER_WORKERS ?? 2);
const audience = process.env.PEER_AUDIENCE ?? 'https://api.example';

if (isPrimary) {
  startPrimary(workers);
} else {
  const { default: Provider } = await import('oidc-provider');
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.PEER_CLIENT_ID,
      client_secret: process.env.PEER_CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
      scope: 'items:read',
    }],
    jwks: { keys: [workerKey()] },
    scopes: ['items:read'],
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'items:read',
          audience,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  // Sealring's benchmark runs without its rate limiter; node-oidc-provider has none.
  provider.listen(port, '127.0.0.1');
}

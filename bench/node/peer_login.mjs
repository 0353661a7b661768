// node-oidc-provider 9, set up as bench/login_bench.py's peer for the user grants: one confidential
// client (client_secret_basic) registered for authorization_code (PKCE S256 required) and
// refresh_token, refresh tokens rotated on every use, JWT access tokens (ES256) for one resource
// server through resource indicators, no ID token (the scope has no `openid`), and every code,
// refresh token and grant in Redis (./redis_adapter.mjs), shared by all processes of the cluster.
//
//   serve: PEER_PORT=8100 PEER_WORKERS=2 PEER_REDIS_URL=redis://127.0.0.1:6379/0 \
//          PEER_REDIS_PREFIX=bench:1: PEER_CLIENT_ID=... PEER_CLIENT_SECRET=... \
//          PEER_REDIRECT_URI=... node peer_login.mjs
//   mint:  (same environment, PEER_CODE_CHALLENGE=... for codes)
//          node peer_login.mjs mint code|refresh COUNT FILE
//
// Mint mode creates, with the provider's own models, COUNT grants for the bench user and one
// authorization code (bound to the redirect URI and the S256 challenge) or one refresh token per
// grant, and writes their values to FILE, one per line: what the authorization endpoint would have
// stored, made before the timed window.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';

import { isPrimary, startPrimary, workerKey } from './cluster.mjs';
import adapterFactory, { connect } from './redis_adapter.mjs';

const env = process.env;
const port = Number(env.PEER_PORT ?? 8100);
const workers = Number(env.PEER_WORKERS ?? 2);
const audience = env.PEER_AUDIENCE ?? 'https://api.example';
const scope = 'items:read';
const accountId = 'bench-user';

async function makeProvider(jwks) {
  const { default: Provider } = await import('oidc-provider');
  connect(env.PEER_REDIS_URL ?? 'redis://127.0.0.1:6379/0');
  return new Provider(`http://127.0.0.1:${port}`, {
    adapter: adapterFactory(env.PEER_REDIS_PREFIX ?? 'bench:'),
    clients: [{
      client_id: env.PEER_CLIENT_ID,
      client_secret: env.PEER_CLIENT_SECRET,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [env.PEER_REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
      scope,
    }],
    jwks,
    scopes: [scope],
    // The account exists; node-oidc-provider looks it up on every code exchange and refresh.
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    pkce: { required: () => true },
    // As Sealring: a refresh token whenever the client is registered for the grant, and a new one
    // on every use (node's default rotates only for public clients or old tokens).
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      RefreshToken: 14 * 86400,
      Grant: 90 * 86400,
    },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope,
          audience,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
}

async function mint(kind, count, file) {
  // Minting only stores opaque handles; nothing is signed, so any key will do here.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const provider = await makeProvider({ keys: [{ ...privateKey.export({ format: 'jwk' }), alg: 'ES256' }] });
  const client = await provider.Client.find(env.PEER_CLIENT_ID);
  const authTime = Math.floor(Date.now() / 1000);
  const one = async () => {
    const grant = new provider.Grant({ accountId, clientId: client.clientId });
    grant.addResourceScope(audience, scope);
    const grantId = await grant.save();
    const common = { accountId, client, grantId, scope, resource: audience, authTime };
    if (kind === 'code') {
      return new provider.AuthorizationCode({
        ...common,
        redirectUri: env.PEER_REDIRECT_URI,
        codeChallenge: env.PEER_CODE_CHALLENGE,
        codeChallengeMethod: 'S256',
      }).save();
    }
    return new provider.RefreshToken({ ...common, gty: 'authorization_code', rotations: 0 }).save();
  };
  const values = [];
  for (let done = 0; done < count; done += 500) {
    const batch = Array.from({ length: Math.min(500, count - done) }, one);
    values.push(...await Promise.all(batch));
  }
  writeFileSync(file, `${values.join('\n')}\n`);
  process.exit(0);
}

if (process.argv[2] === 'mint') {
  const [kind, count, file] = process.argv.slice(3);
  if (!['code', 'refresh'].includes(kind) || !(Number(count) > 0) || !file) {
    console.error('usage: node peer_login.mjs mint code|refresh COUNT FILE');
    process.exit(2);
  }
  await mint(kind, Number(count), file);
} else if (isPrimary) {
  startPrimary(workers);
} else {
  const provider = await makeProvider({ keys: [workerKey()] });
  // Why a grant was refused (node answers only "grant request is invalid"); stderr is discarded
  // during timed runs.
  provider.on('grant.error', (_ctx, error) => console.error(`grant.error: ${error.error_detail ?? error.message}`));
  provider.listen(port, '127.0.0.1');
}

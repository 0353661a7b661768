// Drive a Sealring authorization server with openid-client (v6), as a third-party client would:
// node server_openid_client.mjs CONFIG_JSON
// CONFIG_JSON: {"issuer", "client_id", "method": "basic"|"post"|"private_key_jwt",
//               "secret"?, "jwk"? (private, ES256), "params"? (token request parameters)}
// Prints one JSON line: the token response and introspection before and after revocation, or
// {"error", "status", "challenges"?} when the server refuses (as openid-client parsed it).
import * as client from 'openid-client';

const config = JSON.parse(process.argv[2]);

async function clientAuth() {
  if (config.method === 'basic') return client.ClientSecretBasic(config.secret);
  if (config.method === 'post') return client.ClientSecretPost(config.secret);
  const { d, kty, crv, x, y } = config.jwk;
  const key = await crypto.subtle.importKey(
    'jwk',
    { d, kty, crv, x, y },
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  return client.PrivateKeyJwt({ key, kid: config.jwk.kid });
}

try {
  // RFC 8414 discovery (not OIDC: the server is a plain OAuth 2.0 authorization server); plain
  // HTTP is allowed because the test server listens on loopback only.
  const as = await client.discovery(
    new URL(config.issuer),
    config.client_id,
    undefined,
    await clientAuth(),
    { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
  );
  const token = await client.clientCredentialsGrant(as, config.params ?? {});
  const before = await client.tokenIntrospection(as, token.access_token);
  await client.tokenRevocation(as, token.access_token, { token_type_hint: 'access_token' });
  const after = await client.tokenIntrospection(as, token.access_token);
  const metadata = as.serverMetadata();
  process.stdout.write(
    JSON.stringify({
      token: { ...token },
      before,
      after,
      token_endpoint: metadata.token_endpoint,
      issuer: metadata.issuer,
    }),
  );
} catch (err) {
  if (err instanceof client.ResponseBodyError) {
    process.stdout.write(JSON.stringify({ error: err.error, status: err.status }));
  } else if (err instanceof client.WWWAuthenticateChallengeError) {
    // A 401 with a challenge (RFC 6749 §5.2 invalid_client): report what openid-client parsed.
    const body = await err.response.json().catch(() => null);
    process.stdout.write(
      JSON.stringify({ error: body?.error, status: err.status, challenges: err.cause }),
    );
  } else {
    process.stderr.write(`${err.code ?? 'ERR'}: ${err.message}\n`);
    process.exit(1);
  }
}

// Verify a Sealring access token with node's jose, as an independent implementation would:
// node server_verify.mjs JWKS_URI ISSUER AUDIENCE TOKEN
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUri, issuer, audience, token] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksUri));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: 'at+jwt',
    algorithms: ['ES256'],
    requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
  });
  process.stdout.write(JSON.stringify({ header: protectedHeader, payload }));
} catch (err) {
  process.stderr.write(`${err.code ?? 'ERR'}: ${err.message}\n`);
  process.exit(1);
}

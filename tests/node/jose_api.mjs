// A resource server on node's jose, for the rotation soak (tests/integration/test_soak.py):
// node jose_api.mjs PORT JWKS_URI ISSUER AUDIENCE COOLDOWN_MS CACHE_MAX_AGE_MS
// GET /verify with "Authorization: Bearer TOKEN" answers 200 or 401 (with jose's error code).
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [port, jwksUri, issuer, audience, cooldown, maxAge] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksUri), {
  cooldownDuration: Number(cooldown),
  cacheMaxAge: Number(maxAge),
  timeoutDuration: 5000,
});

http
  .createServer(async (req, res) => {
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    try {
      await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt', algorithms: ['ES256'] });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    } catch (err) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: err.code ?? 'ERR' }));
    }
  })
  .listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\n'));

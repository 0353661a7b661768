// A relying party built with openid-client (v6), driven by a real browser in tests/browser:
// node browser_rp.mjs CONFIG_JSON
// CONFIG_JSON: {"issuer", "client_id", "port", "scope", "alg"}: a public client (PKCE S256, no
// secret) on http://127.0.0.1:PORT with /login, /callback, /refresh, /reuse, /logout and
// /logged-out, like tests/browser/authlib_rp.py. openid-client checks state, iss (RFC 9207), the
// ID token (signature with the JWKS, iss, aud, exp, iat, nonce, the registered alg) and the
// userinfo subject itself; every page shows what it saw as JSON in <pre id="result">. Prints "ready" once
// listening.
import http from 'node:http';
import * as client from 'openid-client';

const config = JSON.parse(process.argv[2]);
const base = `http://127.0.0.1:${config.port}`;
const as = await client.discovery(
  new URL(config.issuer),
  config.client_id,
  { id_token_signed_response_alg: config.alg },
  client.None(),
  { execute: [client.allowInsecureRequests] },
);
const memory = {};

// A page a browser shows as it is: the JSON inside <pre id="result">.
function json(res, status, body) {
  const text = JSON.stringify(body)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;');
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>RP</title><pre id="result">${text}</pre>`);
}

async function error(res, err) {
  json(res, 400, { error: err.error ?? err.code ?? 'ERR', message: err.message });
}

async function refresh(token) {
  try {
    const tokens = await client.refreshTokenGrant(as, token);
    return { status: 200, tokens };
  } catch (err) {
    return { status: err.status ?? 0, error: err.error ?? err.code };
  }
}

const routes = {
  async '/login'(req, res, url) {
    memory.verifier = client.randomPKCECodeVerifier();
    memory.state = client.randomState();
    memory.nonce = client.randomNonce();
    const params = {
      redirect_uri: `${base}/callback`,
      scope: config.scope,
      code_challenge: await client.calculatePKCECodeChallenge(memory.verifier),
      code_challenge_method: 'S256',
      state: memory.state,
      nonce: memory.nonce,
    };
    if (url.searchParams.get('prompt')) params.prompt = url.searchParams.get('prompt');
    res.writeHead(303, { location: client.buildAuthorizationUrl(as, params).href });
    res.end();
  },
  async '/callback'(req, res, url) {
    const tokens = await client.authorizationCodeGrant(as, url, {
      pkceCodeVerifier: memory.verifier,
      expectedState: memory.state,
      expectedNonce: memory.nonce,
      idTokenExpected: true,
    });
    memory.tokens = tokens;
    const claims = tokens.claims();
    const info = await client.fetchUserInfo(as, tokens.access_token, claims.sub);
    json(res, 200, {
      id_token_claims: claims,
      userinfo: info,
      scope: tokens.scope,
      has_refresh_token: Boolean(tokens.refresh_token),
      iss_param: url.searchParams.get('iss'),
    });
  },
  async '/refresh'(req, res) {
    const before = memory.tokens;
    const answer = await refresh(before.refresh_token);
    if (answer.status !== 200) return json(res, 400, answer);
    memory.previous = before.refresh_token;
    memory.tokens = answer.tokens;
    const info = await client.fetchUserInfo(as, answer.tokens.access_token, before.claims().sub);
    json(res, 200, {
      rotated: answer.tokens.refresh_token !== before.refresh_token,
      new_access_token: answer.tokens.access_token !== before.access_token,
      userinfo: info,
    });
  },
  async '/reuse'(req, res) {
    const reused = await refresh(memory.previous);
    const current = await refresh(memory.tokens.refresh_token);
    json(res, 200, {
      status: reused.status,
      error: reused.error,
      current_status: current.status,
      current_error: current.error,
    });
  },
  async '/logout'(req, res) {
    memory.logoutState = client.randomState();
    const url = client.buildEndSessionUrl(as, {
      id_token_hint: memory.tokens.id_token,
      post_logout_redirect_uri: `${base}/logged-out`,
      state: memory.logoutState,
    });
    res.writeHead(303, { location: url.href });
    res.end();
  },
  async '/logged-out'(req, res, url) {
    json(res, 200, { logged_out: true, state_ok: url.searchParams.get('state') === memory.logoutState });
  },
};

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, base);
    const route = routes[url.pathname];
    if (!route) return json(res, 404, { error: 'not_found' });
    try {
      await route(req, res, url);
    } catch (err) {
      await error(res, err);
    }
  })
  .listen(config.port, '127.0.0.1', () => process.stdout.write('ready\n'));

// A stand-in for the two things the original front end (saebyn/glowing-telegram-frontend)
// expects around it in production, so that its unmodified production build can run against
// our API on one machine:
//
// 1. Cognito. The front end hard-codes its OIDC authority as
//    `https://cognito-idp.{VITE_AWS_REGION}.amazonaws.com/{VITE_COGNITO_USER_POOL_ID}`
//    (FE:src/utilities/auth.ts) and its logout URL as `https://{VITE_COGNITO_DOMAIN}/logout`.
//    This server answers HTTPS for both host names (the browser is started with
//    `--host-resolver-rules` mapping them to 127.0.0.1 and a throw-away certificate) at
//    Cognito's own paths: discovery and JWKS under `/{pool}/`, `/oauth2/authorize` (a login
//    form), `/oauth2/token` (authorization_code with PKCE S256, refresh_token),
//    `/oauth2/userInfo`, `/logout`. Tokens are RS256 JWTs with Cognito's claims
//    (`token_use`, `aud` = client id on the id_token, `client_id` on the access token).
// 2. One origin for the app, the API, its WebSocket and the media: the front end builds
//    `/playlist/{id}.m3u8` at the root of VITE_CONTENT_URL, and the API's `gt_media` cookie is
//    `SameSite=Strict`, so the HLS player only gets its media when the page and the API share a
//    site. Plain HTTP on FE_PORT serves the build (`dist/`, SPA fallback to index.html),
//    forwards `/api/*` (prefix stripped), `/playlist/*` and `/media/*` to the API, tunnels the
//    WebSocket upgrade on `/api/ws`, and serves the JWKS at `/__oidc/jwks.json` for the API's
//    `GT_JWKS_URL`.
//
// No npm dependencies: node's crypto signs the tokens. Configuration is environment only
// (see `run`).

'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const path = require('node:path');

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`server.cjs: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const FE_DIST = required('FE_DIST');
const API = new URL(required('GT_API_URL'));
const FE_PORT = Number(process.env.FE_PORT || 5173);
const OIDC_TLS_PORT = Number(process.env.OIDC_TLS_PORT || 443);
const TLS_CERT = required('OIDC_TLS_CERT');
const TLS_KEY = required('OIDC_TLS_KEY');
const SIGNING_KEY_FILE = required('OIDC_SIGNING_KEY');
const REGION = required('COGNITO_REGION');
const POOL = required('COGNITO_POOL_ID');
const DOMAIN = required('COGNITO_DOMAIN');
const CLIENT_ID = required('COGNITO_CLIENT_ID');
const TOKEN_TTL_S = Number(process.env.OIDC_TOKEN_TTL_S || 3600);

const ISSUER_HOST = `cognito-idp.${REGION}.amazonaws.com`;
const ISSUER = `https://${ISSUER_HOST}/${POOL}`;

// The one test user. `sub` is a UUID like Cognito's.
const USER = {
  sub: process.env.OIDC_USER_SUB || '7d1c6f0e-5a3b-4c2d-9e8f-0a1b2c3d4e5f',
  username: process.env.OIDC_USER_NAME || 'fe-tester',
  password: process.env.OIDC_USER_PASSWORD || 'fe-tester-password',
  email: 'fe-tester@example.com',
  name: 'FE Tester',
};

// ---------- keys and tokens ----------

function loadSigningKey() {
  if (!fs.existsSync(SIGNING_KEY_FILE)) {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(SIGNING_KEY_FILE, privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
  }
  return crypto.createPrivateKey(fs.readFileSync(SIGNING_KEY_FILE));
}

const signingKey = loadSigningKey();
const publicJwk = crypto.createPublicKey(signingKey).export({ format: 'jwk' });
const KID = crypto
  .createHash('sha256')
  .update(`${publicJwk.n}.${publicJwk.e}`)
  .digest('base64url')
  .slice(0, 16);
const JWKS = { keys: [{ ...publicJwk, kid: KID, alg: 'RS256', use: 'sig' }] };

const b64u = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function signJwt(claims) {
  const input = `${b64u({ alg: 'RS256', kid: KID, typ: 'JWT' })}.${b64u(claims)}`;
  const sig = crypto.sign('RSA-SHA256', Buffer.from(input), signingKey).toString('base64url');
  return `${input}.${sig}`;
}

function verifyJwt(token) {
  const [h, p, s] = String(token).split('.');
  if (!s) return null;
  const ok = crypto.verify(
    'RSA-SHA256',
    Buffer.from(`${h}.${p}`),
    crypto.createPublicKey(signingKey),
    Buffer.from(s, 'base64url'),
  );
  if (!ok) return null;
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  return claims.exp > Date.now() / 1000 ? claims : null;
}

function issueTokens(nonce) {
  const now = Math.floor(Date.now() / 1000);
  const common = { sub: USER.sub, iss: ISSUER, iat: now, auth_time: now, exp: now + TOKEN_TTL_S };
  const idToken = signJwt({
    ...common,
    aud: CLIENT_ID,
    token_use: 'id',
    'cognito:username': USER.username,
    email: USER.email,
    email_verified: true,
    name: USER.name,
    ...(nonce ? { nonce } : {}),
  });
  const accessToken = signJwt({
    ...common,
    client_id: CLIENT_ID,
    token_use: 'access',
    scope: 'openid profile email aws.cognito.signin.user.admin',
    username: USER.username,
    jti: crypto.randomUUID(),
  });
  const refreshToken = crypto.randomBytes(32).toString('base64url');
  refreshTokens.set(refreshToken, true);
  return {
    id_token: idToken,
    access_token: accessToken,
    refresh_token: refreshToken,
    token_type: 'Bearer',
    expires_in: TOKEN_TTL_S,
  };
}

const codes = new Map(); // code -> {redirect_uri, code_challenge, nonce, expires}
const refreshTokens = new Map();

// ---------- helpers ----------

function send(res, status, body, headers = {}) {
  const isJson = typeof body !== 'string' && !Buffer.isBuffer(body);
  res.writeHead(status, {
    'content-type': isJson ? 'application/json' : 'text/html; charset=utf-8',
    ...headers,
  });
  res.end(isJson ? JSON.stringify(body) : body);
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, content-type',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
};

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(params, error) {
  const hidden = Object.entries(params)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  return `<!doctype html><html><head><title>Sign in (local Cognito stand-in)</title></head>
<body style="font-family:sans-serif;max-width:24em;margin:4em auto">
<h1>Sign in</h1>${error ? `<p id="error" style="color:#b00">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/login">${hidden}
<p><label>Username <input id="username" name="username" autocomplete="username"></label></p>
<p><label>Password <input id="password" name="password" type="password"></label></p>
<p><button id="signin" type="submit">Sign in</button></p></form></body></html>`;
}

// ---------- the Cognito stand-in (HTTPS) ----------

async function oidc(req, res) {
  const url = new URL(req.url, `https://${req.headers.host}`);
  const p = url.pathname;
  if (req.method === 'OPTIONS') return send(res, 204, '', CORS);

  if (p === `/${POOL}/.well-known/openid-configuration`) {
    // Cognito's own discovery document points the endpoints at the hosted-UI domain.
    return send(
      res,
      200,
      {
        issuer: ISSUER,
        authorization_endpoint: `https://${DOMAIN}/oauth2/authorize`,
        token_endpoint: `https://${DOMAIN}/oauth2/token`,
        userinfo_endpoint: `https://${DOMAIN}/oauth2/userInfo`,
        jwks_uri: `${ISSUER}/.well-known/jwks.json`,
        response_types_supported: ['code', 'token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid', 'email', 'phone', 'profile'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        code_challenge_methods_supported: ['S256'],
      },
      CORS,
    );
  }
  if (p === `/${POOL}/.well-known/jwks.json`) return send(res, 200, JWKS, CORS);

  if (p === '/oauth2/authorize' && req.method === 'GET') {
    const q = Object.fromEntries(url.searchParams);
    const problem = checkAuthorize(q);
    if (problem) return send(res, 400, { error: 'invalid_request', error_description: problem });
    return send(res, 200, loginPage(q));
  }
  if (p === '/login' && req.method === 'POST') {
    const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
    const { username, password, ...q } = form;
    const problem = checkAuthorize(q);
    if (problem) return send(res, 400, { error: 'invalid_request', error_description: problem });
    if (username !== USER.username || password !== USER.password) {
      return send(res, 200, loginPage(q, 'Incorrect username or password.'));
    }
    const code = crypto.randomBytes(24).toString('base64url');
    codes.set(code, {
      redirect_uri: q.redirect_uri,
      code_challenge: q.code_challenge,
      nonce: q.nonce,
      expires: Date.now() + 5 * 60_000,
    });
    const back = new URL(q.redirect_uri);
    back.searchParams.set('code', code);
    if (q.state) back.searchParams.set('state', q.state);
    res.writeHead(302, { location: back.toString() });
    return res.end();
  }
  if (p === '/oauth2/token' && req.method === 'POST') {
    const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
    if (form.client_id !== CLIENT_ID) return send(res, 400, { error: 'invalid_client' }, CORS);
    if (form.grant_type === 'authorization_code') {
      const grant = codes.get(form.code);
      codes.delete(form.code); // single use
      if (!grant || grant.expires < Date.now() || grant.redirect_uri !== form.redirect_uri) {
        return send(res, 400, { error: 'invalid_grant' }, CORS);
      }
      const challenge = crypto
        .createHash('sha256')
        .update(form.code_verifier || '')
        .digest('base64url');
      if (challenge !== grant.code_challenge) {
        return send(res, 400, { error: 'invalid_grant', error_description: 'PKCE' }, CORS);
      }
      return send(res, 200, issueTokens(grant.nonce), {
        ...CORS,
        'cache-control': 'no-store',
      });
    }
    if (form.grant_type === 'refresh_token' && refreshTokens.has(form.refresh_token)) {
      return send(res, 200, issueTokens(undefined), { ...CORS, 'cache-control': 'no-store' });
    }
    return send(res, 400, { error: 'unsupported_grant_type' }, CORS);
  }
  if (p === '/oauth2/userInfo') {
    const auth = String(req.headers.authorization || '').replace(/^Bearer /, '');
    const claims = verifyJwt(auth);
    if (!claims || claims.token_use !== 'access') return send(res, 401, { error: 'invalid_token' }, CORS);
    return send(
      res,
      200,
      { sub: USER.sub, email: USER.email, email_verified: 'true', name: USER.name, username: USER.username },
      CORS,
    );
  }
  if (p === '/logout') {
    // Cognito's hosted-UI logout: back to `logout_uri`.
    const to = url.searchParams.get('logout_uri');
    if (url.searchParams.get('client_id') !== CLIENT_ID || !to) {
      return send(res, 400, { error: 'invalid_request' });
    }
    res.writeHead(302, { location: to });
    return res.end();
  }
  return send(res, 404, { error: 'not_found', path: p });
}

function checkAuthorize(q) {
  if (q.client_id !== CLIENT_ID) return `unknown client_id ${q.client_id}`;
  if (q.response_type !== 'code') return 'response_type must be code';
  if (!q.redirect_uri) return 'redirect_uri is required';
  if (q.code_challenge_method !== 'S256' || !q.code_challenge) return 'PKCE S256 is required';
  return null;
}

// ---------- the app origin (HTTP) ----------

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain',
};

function apiPathFor(p) {
  if (p === '/api' || p.startsWith('/api/')) return p.slice(4) || '/';
  if (p.startsWith('/playlist/') || p.startsWith('/media/')) return p;
  return null;
}

function forward(req, res, apiPath, search) {
  const headers = { ...req.headers, host: API.host, 'x-forwarded-proto': 'http' };
  // The API checks CORS against its own list; same-origin through this proxy needs none.
  delete headers.origin;
  const upstream = http.request(
    { host: API.hostname, port: API.port, method: req.method, path: apiPath + search, headers },
    (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    },
  );
  upstream.on('error', (e) => send(res, 502, { message: `API unreachable: ${e.message}` }));
  req.pipe(upstream);
}

function serveStatic(req, res, p) {
  const root = path.resolve(FE_DIST);
  let file = path.resolve(root, `.${decodeURIComponent(p)}`);
  if (!file.startsWith(root)) return send(res, 400, 'bad path');
  if (!fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    // Client-side routes (react-router) get the app.
    if (path.extname(p) && !p.endsWith('.html')) return send(res, 404, 'not found');
    file = path.join(root, 'index.html');
  }
  res.writeHead(200, {
    'content-type': MIME[path.extname(file)] || 'application/octet-stream',
  });
  fs.createReadStream(file).pipe(res);
}

function app(req, res) {
  const url = new URL(req.url, 'http://local');
  if (url.pathname === '/__oidc/jwks.json') return send(res, 200, JWKS);
  const apiPath = apiPathFor(url.pathname);
  if (apiPath !== null) return forward(req, res, apiPath, url.search);
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
  return serveStatic(req, res, url.pathname);
}

function tunnelUpgrade(req, socket, head) {
  const url = new URL(req.url, 'http://local');
  const apiPath = apiPathFor(url.pathname);
  if (apiPath === null) return socket.destroy();
  const upstream = net.connect(Number(API.port), API.hostname, () => {
    const lines = [`${req.method} ${apiPath}${url.search} HTTP/1.1`];
    for (const [k, v] of Object.entries(req.headers)) {
      if (k === 'host') lines.push(`host: ${API.host}`);
      else if (k !== 'origin') lines.push(`${k}: ${v}`);
    }
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head?.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
}

const appServer = http.createServer(app);
appServer.on('upgrade', tunnelUpgrade);
appServer.listen(FE_PORT, '127.0.0.1', () => {
  console.log(`app + API proxy on http://127.0.0.1:${FE_PORT} -> ${API.origin}`);
});

const oidcServer = https.createServer(
  { cert: fs.readFileSync(TLS_CERT), key: fs.readFileSync(TLS_KEY) },
  (req, res) =>
    oidc(req, res).catch((e) => {
      console.error(e);
      send(res, 500, { error: 'server_error' });
    }),
);
oidcServer.listen(OIDC_TLS_PORT, '127.0.0.1', () => {
  console.log(`Cognito stand-in on https://127.0.0.1:${OIDC_TLS_PORT} for ${ISSUER_HOST} and ${DOMAIN}`);
  console.log(`issuer ${ISSUER}, client ${CLIENT_ID}, user ${USER.username} (sub ${USER.sub})`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));

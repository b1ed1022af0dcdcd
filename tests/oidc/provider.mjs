// A real OpenID Provider for the single sign-on tests: the OpenID-certified oidc-provider package, configured
// from a JSON file (argv[2]) that tests/oidc_provider.py writes. Test-only: in-memory storage, no real users.
//
// Config: {"issuer": "http://127.0.0.1:<proxy port>", "port": <listen port>, "jwks": {"keys": [<private JWK>]},
//          "clients": [<client metadata>], "users": {"<sub>": {"email", "email_verified", "name", "acr", "amr"}}}
//
// The issuer is the Python proxy's address (it forwards every request here unchanged, Host included), so this
// process trusts the proxy headers and builds its URLs from the Host it sees.
import fs from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const users = config.users || {};

const esc = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (title, body) => `<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><main><h1>${esc(title)}</h1>${body}</main></body></html>`;

const acrValues = [...new Set(Object.values(users).map((u) => u.acr).filter(Boolean))];

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  findAccount: async (ctx, sub) => {
    const user = users[sub];
    if (!user) return undefined;
    return {
      accountId: sub,
      // acr and amr are session facts (set at login below), not user claims.
      claims: async () => ({
        sub, email: user.email, email_verified: user.email_verified, name: user.name,
      }),
    };
  },
  // acr, amr and auth_time under the openid scope: so every ID token carries them, not only when the client
  // asks with the claims parameter.
  claims: {
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    sid: null,
  },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  acrValues,
  // Put email, email_verified and name into the ID token, not only into the userinfo response.
  conformIdTokenClaims: false,
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  pkce: { required: () => true },
  responseTypes: ['code'],
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // A plain form the harness submits without a browser: the hidden xsrf field plus logout=yes.
      logoutSource: async (ctx, form) => {
        ctx.type = 'html';
        ctx.body = page('Abmelden', `${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Abmelden</button>`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.type = 'html';
        ctx.body = page('Abgemeldet', '<p>Sie sind abgemeldet.</p>');
      },
    },
  },
  // The back-channel logout receivers live on 127.0.0.1; the package's SSRF guard (its own dispatcher, which
  // refuses loopback addresses) would drop those requests, so the default undici dispatcher is used instead.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Fehler', Object.entries(out).map(([k, v]) => `<pre>${esc(k)}: ${esc(v)}</pre>`).join(''));
  },
  interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 86400, Grant: 86400,
  },
});
provider.proxy = true;

provider.on('backchannel.error', (ctx, err, client) => {
  process.stderr.write(`backchannel logout to ${client.clientId} failed: ${err.message}\n`);
});
provider.on('server_error', (ctx, err) => {
  process.stderr.write(`server_error: ${err.stack}\n`);
});

function loginForm(uid, error) {
  return page('Anmelden', `${error ? `<p role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label for="login">Benutzer</label> <input id="login" name="login" type="text" autocomplete="username">
<button type="submit">Anmelden</button>
</form>`);
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// The consent prompt is granted at once: the grant holds exactly what the client asked for.
async function grantConsent(req, res, details) {
  const { prompt: { details: missing }, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, url) {
  const match = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return send(res, 404, page('Nicht gefunden', ''));
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== match[1]) return send(res, 400, page('Fehler', '<p>Falsche Interaktion.</p>'));
  const promptName = details.prompt.name;

  if (req.method === 'GET') {
    if (promptName === 'consent') return grantConsent(req, res, details);
    return send(res, 200, loginForm(details.uid));
  }
  if (req.method === 'POST' && match[2] && promptName === 'login') {
    const sub = ((await readForm(req)).get('login') || '').trim();
    const user = users[sub];
    if (!user) return send(res, 200, loginForm(details.uid, 'Unbekannter Benutzer.'));
    const login = { accountId: sub };
    if (user.acr) login.acr = user.acr;
    if (user.amr) login.amr = user.amr;
    return provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, page('Fehler', '<p>Methode nicht erlaubt.</p>'));
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://placeholder');
  if (url.pathname.startsWith('/interaction/')) {
    interaction(req, res, url).catch((err) => {
      process.stderr.write(`interaction failed: ${err.stack}\n`);
      if (!res.headersSent) send(res, 500, page('Fehler', `<pre>${esc(err.message)}</pre>`));
      else res.end();
    });
    return;
  }
  callback(req, res);
});

// The package checks static client metadata only on first use; a mistake in the tests' config should stop the
// start instead, with the reason on stderr.
try {
  for (const { client_id: clientId } of config.clients) {
    if (!await provider.Client.find(clientId)) throw new Error(`client ${clientId} not found`);
  }
} catch (err) {
  process.stderr.write(`invalid client configuration: ${err.error_description || err.message}\n`);
  process.exit(2);
}

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The test process holds our stdin open; when it dies without stopping us, its end is our signal to go.
process.stdin.on('end', stop);
process.stdin.resume();
// Keep-alive connections would hold server.close() open; the tests want a quick exit.
process.on('SIGTERM', () => setTimeout(() => process.exit(0), 500).unref());

// provider.js — the OpenID provider of the OAuth tests: panva's oidc-provider
// (pinned in package.json / package-lock.json, installed by scripts/test.sh
// with `npm ci`) on 127.0.0.1, with one static confidential client and the
// development login form, where any login and password are accepted.
//
// Usage: node provider.js PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// The login typed in the form picks the test account:
//   "someone@example.org"       claims {sub, email}
//   "mail=someone@example.org"  claims {sub, mail}: an e-mail under another claim name
//   anything else               claims {sub}: no e-mail at all
// "mail" is released with the "email" scope, the only scope besides openid
// that the server asks for.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!redirectUri) {
  console.error('usage: node provider.js PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI');
  process.exit(2);
}

function claimsOf(login) {
  if (login.startsWith('mail=')) return { sub: login, mail: login.slice(5) };
  if (login.includes('@')) return { sub: login, email: login };
  return { sub: login };
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUri.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified', 'mail'] },
  pkce: { required: () => false },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => claimsOf(id) }),
  cookies: { keys: ['fractal-test-oidc-cookie-key'] },
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc provider listening on http://127.0.0.1:${port}`);
});

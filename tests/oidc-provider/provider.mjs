// A real, certified OpenID provider (panva's oidc-provider) for the interop end-to-end test
// (tests/e2e_oidc.rs): the filter must accept what a provider nobody here wrote publishes and
// issues. Everything it needs comes from the environment:
//
//   OIDC_ISSUER     the issuer, e.g. https://idp.oidc.test (its host is the TLS name: SNI and cert)
//   OIDC_TLS_CERT   PEM certificate (chain) for that host, OIDC_TLS_KEY its private key
//   OIDC_TLS_PORT   the HTTPS port on 127.0.0.1 Envoy reaches (fixed, so a restart comes back on it)
//   OIDC_KEY_DIR    where signing keys are kept, so a restart publishes the same keys again
//   OIDC_KEYS       the signing keys to publish, in JWKS order, by kid; the prefix names the type
//                   (rsa-, p256-, p384-, ed25519-); a kid seen for the first time gets a new key
//   OIDC_RESOURCES  JSON {resource indicator: {"alg": "PS256", "ttl": 300}}: one resource server
//                   per indicator, issuing RFC 9068 JWT access tokens (typ at+jwt) with that alg
//
// Sender-constrained tokens (tests/e2e_binding.rs): DPoP is on (oidc-provider's default), so a
// token request with a `DPoP` proof gets a token bound to the proof's key (`cnf.jkt`). The client
// `interop-mtls` gets certificate-bound tokens (RFC 8705, `cnf.x5t#S256`): its client certificate
// comes in the `x-client-cert` header (URL-encoded PEM), as a TLS-terminating proxy in front of
// the provider passes it on.
//
// It serves the provider over HTTPS (only to clients that send the issuer's host as SNI) and, for
// the test's own token requests, over plain HTTP on a port the OS picks (the test's HTTP client has
// no TLS; Envoy's path to the provider is what the test is about). When both listen it prints one
// JSON line: {"http_port": N}. TLS handshakes (with their SNI) and requests are logged to stderr.
// SIGTERM stops it.

import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import Provider, { errors } from 'oidc-provider';

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const issuer = env('OIDC_ISSUER');
const tlsHost = new URL(issuer).hostname;
const keyDir = env('OIDC_KEY_DIR');
const resources = JSON.parse(env('OIDC_RESOURCES'));

// Key generation per kid prefix; node:crypto exports private JWKs (with kty, crv, d...).
const KEY_TYPES = {
  'rsa-': () => newKey('rsa', { modulusLength: 2048 }),
  'p256-': () => newKey('ec', { namedCurve: 'P-256' }),
  'p384-': () => newKey('ec', { namedCurve: 'P-384' }),
  'ed25519-': () => newKey('ed25519', {}),
};

// A new private key, generated as PEM and imported again. Exporting the key object that
// generateKeyPairSync returns can deadlock Node 20 for good: a garbage collection during the
// export runs the finished generation job's destructor, which waits for a lock the export holds
// (the provider then never starts; a loop of RSA or P-256 generations and JWK exports hangs
// within a few hundred). The imported key shares nothing with the job.
function newKey(type, options) {
  const { privateKey } = generateKeyPairSync(type, {
    ...options,
    privateKeyEncoding: { format: 'pem', type: 'pkcs8' },
    publicKeyEncoding: { format: 'pem', type: 'spki' },
  });
  return createPrivateKey(privateKey);
}

// The private JWK for `kid`, made once and kept in OIDC_KEY_DIR: a restarted provider signs with
// the same key, as a real one does across deployments.
function signingKey(kid) {
  const file = join(keyDir, `${kid}.json`);
  if (existsSync(file)) {
    return JSON.parse(readFileSync(file, 'utf8'));
  }
  const prefix = Object.keys(KEY_TYPES).find((p) => kid.startsWith(p));
  if (!prefix) {
    throw new Error(`kid ${kid}: no key type prefix (${Object.keys(KEY_TYPES).join(', ')})`);
  }
  const jwk = { ...KEY_TYPES[prefix]().export({ format: 'jwk' }), kid };
  mkdirSync(keyDir, { recursive: true });
  writeFileSync(file, JSON.stringify(jwk));
  return jwk;
}

// A client-credentials client of the test, with `extra` metadata.
function client(clientId, extra = {}) {
  return {
    client_id: clientId,
    client_secret: 'interop-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'read write',
    ...extra,
  };
}

const provider = new Provider(issuer, {
  jwks: { keys: env('OIDC_KEYS').split(',').map(signingKey) },
  clients: [
    client('interop'),
    client('interop-mtls', { tls_client_certificate_bound_access_tokens: true }),
  ],
  // DPoP proofs by RSA keys too (the default allows ES256, Ed25519 and EdDSA only).
  enabledJWA: { dPoPSigningAlgValues: ['ES256', 'PS256', 'RS256', 'EdDSA', 'Ed25519'] },
  scopes: ['read', 'write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      getCertificate(ctx) {
        const pem = ctx.get('x-client-cert');
        return pem ? decodeURIComponent(pem) : undefined;
      },
    },
    resourceIndicators: {
      enabled: true,
      // Each resource server signs its access tokens as JWTs with its own alg (the provider picks
      // the first published key that fits it) and audience = its indicator.
      getResourceServerInfo(ctx, indicator) {
        const server = resources[indicator];
        if (!server) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: 'read write',
          audience: indicator,
          accessTokenTTL: server.ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: server.alg } },
        };
      },
    },
  },
  cookies: { keys: ['interop-test-only'] },
});

// Log each request, and whether it came over TLS.
const app = provider.callback();
function handle(req, res) {
  console.error(`request ${req.method} ${req.url} over ${req.socket.encrypted ? 'https' : 'http'}`);
  app(req, res);
}

// The certificate goes only to a client that names the issuer's host in SNI: there is no default
// one, so a handshake without SNI or with another name fails. Each handshake is logged.
const tlsContext = createSecureContext({
  cert: readFileSync(env('OIDC_TLS_CERT')),
  key: readFileSync(env('OIDC_TLS_KEY')),
});
const https = createHttpsServer({
  SNICallback(servername, done) {
    console.error(`tls handshake sni=${servername}`);
    done(servername === tlsHost ? null : new Error(`unknown server name ${servername}`), tlsContext);
  },
}, handle);
https.on('tlsClientError', (error) => console.error(`tls refused: ${error.message}`));
const http = createHttpServer(handle);

await Promise.all([
  new Promise((resolve) => { https.listen(Number(env('OIDC_TLS_PORT')), '127.0.0.1', resolve); }),
  new Promise((resolve) => { http.listen(0, '127.0.0.1', resolve); }),
]);
console.log(JSON.stringify({ http_port: http.address().port }));

process.on('SIGTERM', () => process.exit(0));

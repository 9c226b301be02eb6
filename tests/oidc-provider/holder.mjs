// A DPoP client for the sender-constraint end-to-end test (tests/e2e_binding.rs): it holds key
// pairs and makes every DPoP proof with panva's `dpop` library (RFC 9449), which nobody here wrote,
// so the filter is shown to accept what a real client sends. It gets DPoP-bound access tokens from
// the provider (tests/oidc-provider/provider.mjs) with proofs of its own, and makes proofs for the
// test's requests through Envoy. Everything it needs comes from the environment:
//
//   OIDC_HTTP_PORT  the provider's plain HTTP port (its token endpoint is /token there)
//
// It serves JSON over plain HTTP on 127.0.0.1 (a port the OS picks, printed as one JSON line
// {"port": N}); every request is a POST with a JSON body:
//
//   /key    {"name", "alg"}                      a new key pair (ES256, PS256, RS256, Ed25519) -> {"jkt"}
//   /token  {"key", "resource", "scope"}         a client-credentials token bound to the key
//                                                 -> the provider's token answer
//   /proof  {"key", "htm", "htu", "token"?, "nonce"?}  a proof for one request -> {"proof"}
//
// SIGTERM stops it.

import { createServer } from 'node:http';
import * as DPoP from 'dpop';

const providerPort = Number(process.env.OIDC_HTTP_PORT);
if (!providerPort) {
  console.error('holder.mjs: OIDC_HTTP_PORT is not set');
  process.exit(2);
}
const keys = new Map();

async function newKey({ name, alg }) {
  // The public key must be extractable: the library puts it in each proof's `jwk`.
  const pair = await DPoP.generateKeyPair(alg, { extractable: true });
  keys.set(name, pair);
  return { jkt: await DPoP.calculateThumbprint(pair.publicKey) };
}

function pair(name) {
  const found = keys.get(name);
  if (!found) {
    throw new Error(`no key ${name}`);
  }
  return found;
}

async function token({ key, resource, scope }) {
  const url = `http://127.0.0.1:${providerPort}/token`;
  const proof = await DPoP.generateProof(pair(key), url, 'POST');
  const answer = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'interop',
      client_secret: 'interop-secret',
      resource,
      scope,
    }),
  });
  const body = await answer.json();
  if (answer.status !== 200) {
    throw new Error(`token request: ${answer.status} ${JSON.stringify(body)}`);
  }
  return body;
}

async function proof({ key, htm, htu, token, nonce }) {
  // JSON has null where the library wants undefined.
  return { proof: await DPoP.generateProof(pair(key), htu, htm, nonce ?? undefined, token ?? undefined) };
}

const routes = { '/key': newKey, '/token': token, '/proof': proof };

const server = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', async () => {
    const route = routes[req.url];
    let status = 200;
    let answer;
    try {
      if (!route || req.method !== 'POST') {
        throw new Error(`no ${req.method} ${req.url}`);
      }
      answer = await route(JSON.parse(body));
    } catch (error) {
      status = 500;
      answer = { error: error.message };
      console.error(`${req.url}: ${error.stack}`);
    }
    const text = JSON.stringify(answer);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
process.on('SIGTERM', () => process.exit(0));

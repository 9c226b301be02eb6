//! Interop end to end against a real OpenID provider nobody here wrote: panva's certified
//! `oidc-provider` (Node, `tests/oidc-provider/`, installed by `make oidc-provider`), behind HTTPS
//! with a certificate for a test host name made by the `openssl` CLI. A real Envoy
//! (`--concurrency 2`) runs the built module; the filter finds the JWKS through the provider's
//! `/.well-known/openid-configuration` (`oidc_discovery`) over a TLS cluster with SNI that trusts
//! only the test CA. The tokens are RFC 9068 JWT access tokens (`typ: at+jwt`) the provider
//! issues to a client-credentials client, one resource server (audience) per algorithm.
//!
//! Without Node, the installed provider or openssl the tests say why and skip (fail with CI=true).

#[path = "keys_common/mod.rs"]
mod keys_common;
mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime};
use support::config::{EnvoyConfig, Filter};
use support::envoy::Envoy;
use support::oidc::{ISSUER, OidcProvider, ProviderSetup, TLS_HOST, part, unix_now};
use support::servers::EchoUpstream;
use support::{http, upstream_headers};

const PROVIDER: &str = "oidc";
/// The algorithms a resource server each signs its access tokens with.
/// `Ed25519` is RFC 9864's name for EdDSA with Ed25519, which libraries now sign with.
const ALGS: [&str; 6] = ["RS256", "PS256", "ES256", "ES384", "EdDSA", "Ed25519"];
/// A resource server the filter is not configured for (another audience).
const OTHER_API: &str = "https://other.oidc.test/api";
/// A resource server whose tokens live `SHORT_TTL` seconds.
const SHORT_API: &str = "https://api.oidc.test/short";
const SHORT_TTL: u64 = 5;
/// The filter's `clock_skew_seconds` (0 would mean the default 60).
const SKEW: u64 = 1;

fn api(alg: &str) -> String {
    format!("https://api.oidc.test/{alg}")
}

/// The provider with one resource server per `ALGS` entry, plus `SHORT_API` (ES256, `SHORT_TTL`)
/// and `OTHER_API`; `None` when a tool is missing (the test skips).
fn prepare() -> Option<ProviderSetup> {
    let mut resources = json!({
        SHORT_API: {"alg": "ES256", "ttl": SHORT_TTL},
        OTHER_API: {"alg": "RS256", "ttl": 300},
    });
    for alg in ALGS {
        resources[api(alg)] = json!({"alg": alg, "ttl": 300});
    }
    ProviderSetup::prepare(resources)
}

/// The filter's policy: the provider's keys by discovery through the TLS cluster `idp`, every
/// `ALGS` resource server and `SHORT_API` as audiences, scopes `read` and `write` required, the
/// client id forwarded in `x-jwt-client`. Keys stay fresh 600 s, so only an unknown `kid` makes
/// the filter fetch again (at most once a second).
fn policy() -> Value {
    let mut audiences: Vec<String> = ALGS.iter().map(|alg| api(alg)).collect();
    audiences.push(SHORT_API.into());
    json!({
        "providers": {PROVIDER: {
            "issuer": ISSUER,
            "audiences": audiences,
            "oidc_discovery": {"cluster": "idp", "timeout": "5s"},
            "remote_jwks": {"cache_duration": "600s", "unknown_kid_refetch_interval": "1s"},
            "clock_skew_seconds": SKEW,
            "required_scopes": ["read", "write"],
            "claim_to_headers": [{"header_name": "x-jwt-client", "claim_name": "client_id"}]
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": PROVIDER}}]
    })
}

/// Envoy with the filter in front of an echo upstream, its `idp` cluster the provider over TLS.
struct Gateway {
    envoy: Envoy,
    _upstream: EchoUpstream,
}

impl Gateway {
    fn start(setup: &ProviderSetup) -> Gateway {
        let upstream = EchoUpstream::new();
        let config = EnvoyConfig::new(policy(), setup.tls_port, upstream.port())
            .idp_tls(TLS_HOST, &setup.file("ca.pem"));
        let envoy = Envoy::start(&config.yaml(Filter::Wasm), 2);
        Gateway { envoy, _upstream: upstream }
    }

    fn get(&self, token: &str) -> http::Response {
        http::get(self.envoy.port(), "/", Some(token))
    }

    /// A metric of the provider (`wasmcustom.jwt_authn_wasm.provider.oidc.<name>`), 0 if absent.
    fn metric(&self, name: &str) -> u64 {
        self.envoy.stat(&format!("wasmcustom.jwt_authn_wasm.provider.{PROVIDER}.{name}")).unwrap_or(0)
    }
}

fn assert_refused(r: &http::Response, status: u16, reason: &str, what: &str) {
    assert_eq!((r.status, r.body.as_str()), (status, reason), "{what}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.contains(reason), "{what}: challenge {challenge:?}");
}

#[test]
fn real_provider_tokens_through_discovery_over_tls() {
    let Some(mut setup) = prepare() else { return };
    let started = Instant::now();
    let provider = setup.start(&["rsa-1", "p256-1", "p384-1", "ed25519-1"]);
    let gateway = Gateway::start(&setup);

    // A short-lived token first: it must be accepted now and refused once it expired (below).
    let short = provider.token(SHORT_API, "read write");
    let exp = part(&short, 1)["exp"].as_u64().expect("exp");
    assert_eq!(exp - part(&short, 1)["iat"].as_u64().expect("iat"), SHORT_TTL);
    assert_eq!(gateway.get(&short).status, 200, "a fresh short-lived token");

    // One resource server per algorithm: each token is a JWT access token of that alg, accepted.
    for alg in ALGS {
        let token = provider.token(&api(alg), "read write");
        let header = part(&token, 0);
        assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some(alg), Some("at+jwt")), "{header}");
        let r = gateway.get(&token);
        let seen = upstream_headers(&r);
        assert_eq!(seen["x-jwt-client"], json!(["interop"]), "{alg}");
        assert!(seen.get("authorization").is_none(), "{alg}: the token went upstream");
    }

    // The keys came by discovery, over TLS, to a client that named the test host in SNI.
    let log = provider.log();
    for line in ["request GET /.well-known/openid-configuration over https", "request GET /jwks over https"] {
        assert!(log.contains(line), "no {line:?} in the provider's log:\n{log}");
    }
    assert!(log.contains(&format!("tls handshake sni={TLS_HOST}")) && !log.contains("tls refused"), "{log}");
    assert!(gateway.envoy.stat("cluster.idp.ssl.handshake").unwrap_or(0) >= 1, "no TLS handshake to idp");
    assert_eq!(gateway.metric("jwks_fetch_failed"), 0, "{}", gateway.envoy.log());

    // Another resource server's token: 403 as jwt_authn answers audiences; a missing scope: 403.
    let other = provider.token(OTHER_API, "read write");
    assert_refused(&gateway.get(&other), 403, "jwt_audience_not_allowed", "another audience");
    let read_only = provider.token(&api("ES256"), "read");
    assert_eq!(part(&read_only, 1)["scope"], json!("read"));
    assert_refused(&gateway.get(&read_only), 403, "jwt_insufficient_scope", "a missing scope");

    // Expiry: refused from `exp + clock_skew_seconds` on, on every worker (the verified-token
    // cache holds it, and must not keep it alive).
    let expired_at = exp + SKEW;
    std::thread::sleep(
        Duration::from_secs(expired_at.saturating_sub(unix_now())) + Duration::from_millis(200),
    );
    gateway
        .envoy
        .on_both_workers(|| assert_refused(&gateway.get(&short), 401, "jwt_expired", "an expired token"));

    gateway.envoy.assert_no_wasm_failures();
    eprintln!("interop test took {:?}", started.elapsed());
}

/// Restarts the provider publishing `keys` (kids, the new one first). The RS256 token it then
/// issues is signed with the first key and passes at once: the filter refetches the JWKS for its
/// unknown `kid` (the `refetches`th such refetch). Returns that token.
fn rotate(
    setup: &mut ProviderSetup,
    provider: &mut OidcProvider,
    gateway: &Gateway,
    keys: &[&str],
    refetches: u64,
) -> String {
    provider.stop();
    *provider = setup.start(keys);
    let token = provider.token(&api("RS256"), "read write");
    assert_eq!(part(&token, 0)["kid"], json!(keys[0]));
    assert_eq!(gateway.get(&token).status, 200, "the first token of the new key {}", keys[0]);
    assert_eq!(gateway.metric("jwks_refetch_unknown_kid"), refetches);
    token
}

#[test]
fn real_provider_key_rotation_by_restart() {
    let Some(mut setup) = prepare() else { return };
    let started = Instant::now();
    let mut provider = setup.start(&["rsa-1"]);
    let gateway = Gateway::start(&setup);
    let old: Vec<String> = (0..3).map(|_| provider.token(&api("RS256"), "read write")).collect();
    let [seen, unseen, late] = [&old[0], &old[1], &old[2]];
    assert_eq!(part(seen, 0)["kid"], json!("rsa-1"));
    assert_eq!(gateway.get(seen).status, 200, "the first key");

    // A new key first in the JWKS: the provider signs with it; its first token makes the filter
    // refetch (unknown kid) and passes at once. The old key is still published: old tokens pass.
    let new = rotate(&mut setup, &mut provider, &gateway, &["rsa-2", "rsa-1"], 1);
    gateway.envoy.on_both_workers(|| {
        assert_eq!(gateway.get(seen).status, 200, "an accepted old token, its key still published");
        assert_eq!(gateway.get(unseen).status, 200, "a new old token, its key still published");
    });

    // The old key retired, a newer one first: once the filter refetched (for the newest key's
    // token, after unknown_kid_refetch_interval), every token of the old key is refused, even one
    // it had accepted before; the previous key still serves. Each worker adopts the new set on its
    // own tick: until then it still accepts the token it had accepted, never after.
    std::thread::sleep(Duration::from_millis(1100));
    let rotated = SystemTime::now();
    rotate(&mut setup, &mut provider, &gateway, &["rsa-3", "rsa-2"], 2);
    let published = keys_common::published_after(&gateway.envoy, rotated);
    let request = || gateway.get(seen);
    let adopted = (401, Some("jwt_unknown_kid"));
    gateway.envoy.until_every_worker_answers(published, request, (200, None), adopted);
    gateway.envoy.on_both_workers(|| {
        for (token, what) in [(seen, "accepted before"), (unseen, "accepted before"), (late, "never seen")] {
            assert_refused(&gateway.get(token), 401, "jwt_unknown_kid", &format!("retired key, {what}"));
        }
        assert_eq!(gateway.get(&new).status, 200, "the previous key still serves");
    });
    gateway.envoy.assert_no_wasm_failures();
    eprintln!("rotation test took {:?}", started.elapsed());
}

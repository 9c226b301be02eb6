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

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::config::{EnvoyConfig, Filter};
use support::envoy::{Envoy, TempDir, terminate};
use support::servers::{EchoUpstream, free_private_port};
use support::{http, upstream_headers};

/// The provider's issuer; its host is the TLS name (SNI, certificate) and never resolves: Envoy's
/// cluster points at 127.0.0.1.
const ISSUER: &str = "https://idp.oidc.test";
const TLS_HOST: &str = "idp.oidc.test";
const PROVIDER: &str = "oidc";
/// The algorithms a resource server each signs its access tokens with.
const ALGS: [&str; 5] = ["RS256", "PS256", "ES256", "ES384", "EdDSA"];
/// A resource server the filter is not configured for (another audience).
const OTHER_API: &str = "https://other.oidc.test/api";
/// A resource server whose tokens live `SHORT_TTL` seconds.
const SHORT_API: &str = "https://api.oidc.test/short";
const SHORT_TTL: u64 = 5;
/// The filter's `clock_skew_seconds` (0 would mean the default 60).
const SKEW: u64 = 1;
/// How long the provider may take to start (Node loads oidc-provider; the machine is shared).
const PROVIDER_START: Duration = Duration::from_secs(30);

fn api(alg: &str) -> String {
    format!("https://api.oidc.test/{alg}")
}

/// Node, the installed provider and openssl; `None` after saying which is missing (the test
/// skips; fails with CI=true).
fn require_tools() -> Option<PathBuf> {
    let runs = |tool: &str, arg: &str| Command::new(tool).arg(arg).output().is_ok_and(|o| o.status.success());
    let dir = support::crate_root().join("tests/oidc-provider");
    let found = if !runs("node", "--version") {
        Err("no `node` on PATH (the interop test runs oidc-provider on Node)".to_string())
    } else if !dir.join("node_modules/oidc-provider/package.json").is_file() {
        Err(format!("oidc-provider is not installed in {}: run `make oidc-provider`", dir.display()))
    } else if !runs("openssl", "version") {
        Err("no `openssl` on PATH (the interop test makes its TLS certificates with it)".to_string())
    } else {
        Ok(dir)
    };
    support::available(found)
}

/// Runs openssl with these arguments (split at spaces) in `dir`; panics with its output when it
/// fails.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl").args(args.split(' ')).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA (`ca.pem`) and a certificate it signed for `TLS_HOST` (`idp.pem`, key `idp.key`),
/// valid for a day, in `dir`.
fn make_certificates(dir: &Path) {
    let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let ca_exts = "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign";
    openssl(
        dir,
        &format!("req -x509 -days 1 -subj /CN=test-CA {new_key} {ca_exts} -keyout ca.key -out ca.pem"),
    );
    openssl(dir, &format!("req -subj /CN={TLS_HOST} {new_key} -keyout idp.key -out idp.csr"));
    let exts =
        format!("subjectAltName=DNS:{TLS_HOST}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
    fs::write(dir.join("idp.ext"), exts).expect("write idp.ext");
    let sign = "x509 -req -in idp.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile idp.ext";
    openssl(dir, &format!("{sign} -out idp.pem"));
}

/// One run of `tests/oidc-provider/provider.mjs` (see its header for what it serves).
struct OidcProvider {
    child: Child,
    /// Its plain HTTP port, for the test's token requests.
    http_port: u16,
    stderr: PathBuf,
}

/// What every run of the provider in a test shares: its files, its TLS port, its resource servers.
struct ProviderSetup {
    script_dir: PathBuf,
    dir: TempDir,
    tls_port: u16,
    resources: Value,
    runs: usize,
}

impl ProviderSetup {
    /// `new`, when Node, the provider, openssl, Envoy and the module are all there; else `None`
    /// after saying which is missing (the test skips; fails with CI=true).
    fn prepare() -> Option<ProviderSetup> {
        let script_dir = require_tools()?;
        support::require_envoy()?;
        support::require_wasm()?;
        Some(ProviderSetup::new(script_dir))
    }

    /// Certificates in a new temporary directory, a TLS port kept free for every run, and one
    /// resource server per `ALGS` entry, plus `SHORT_API` (ES256, `SHORT_TTL`) and `OTHER_API`.
    fn new(script_dir: PathBuf) -> ProviderSetup {
        let dir = TempDir::new("oidc");
        make_certificates(dir.path());
        let mut resources = json!({
            SHORT_API: {"alg": "ES256", "ttl": SHORT_TTL},
            OTHER_API: {"alg": "RS256", "ttl": 300},
        });
        for alg in ALGS {
            resources[api(alg)] = json!({"alg": alg, "ttl": 300});
        }
        let tls_port = free_private_port().expect("a free port for the provider");
        ProviderSetup { script_dir, dir, tls_port, resources, runs: 0 }
    }

    /// Starts the provider publishing `keys` (kids, in JWKS order: the first that fits an alg
    /// signs) and waits until it listens.
    fn start(&mut self, keys: &[&str]) -> OidcProvider {
        self.runs += 1;
        let file = |name: &str| self.dir.path().join(name);
        let (stdout, stderr) =
            (file(&format!("provider-{}.out", self.runs)), file(&format!("provider-{}.err", self.runs)));
        let child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&self.script_dir)
            .env("OIDC_ISSUER", ISSUER)
            .env("OIDC_TLS_CERT", file("idp.pem"))
            .env("OIDC_TLS_KEY", file("idp.key"))
            .env("OIDC_TLS_PORT", self.tls_port.to_string())
            .env("OIDC_KEY_DIR", file("keys"))
            .env("OIDC_KEYS", keys.join(","))
            .env("OIDC_RESOURCES", self.resources.to_string())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("provider stdout"))
            .stderr(fs::File::create(&stderr).expect("provider stderr"))
            .spawn()
            .expect("node runs");
        let mut provider = OidcProvider { child, http_port: 0, stderr };
        let ready = support::wait_until(PROVIDER_START, || {
            let line = fs::read_to_string(&stdout).unwrap_or_default();
            let port = serde_json::from_str::<Value>(line.trim()).ok().and_then(|v| v["http_port"].as_u64());
            provider.http_port = port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
            provider.http_port != 0 || !matches!(provider.child.try_wait(), Ok(None))
        });
        assert!(ready && provider.http_port != 0, "the provider did not start:\n{}", provider.log());
        provider
    }
}

impl OidcProvider {
    /// An access token from the token endpoint for `resource`, with `scope`.
    fn token(&self, resource: &str, scope: &str) -> String {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "interop"),
            ("client_secret", "interop-secret"),
            ("resource", resource),
            ("scope", scope),
        ];
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect();
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let r = http::request_with_body(
            self.http_port,
            "POST",
            "/token",
            &headers,
            Some(body.join("&").as_bytes()),
        )
        .unwrap_or_else(|e| panic!("token request: {e}\n{}", self.log()));
        assert_eq!(r.status, 200, "token request for {resource}: {}", r.body);
        r.json()["access_token"].as_str().unwrap_or_else(|| panic!("no access_token: {}", r.body)).to_string()
    }

    /// Its stderr: oidc-provider's warnings, `tls handshake sni=NAME` per TLS handshake and
    /// `request METHOD PATH over http(s)` per request.
    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Stops it and waits for the exit, so the TLS port is free again.
    fn stop(&mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- provider log ---\n{}", self.log());
        }
    }
}

/// `application/x-www-form-urlencoded` for a value: unreserved characters as they are, every
/// other byte percent-encoded.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A token's header or payload (`part` 0 or 1) as JSON.
fn part(token: &str, index: usize) -> Value {
    let segment = token.split('.').nth(index).expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("JSON")
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
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
            .idp_tls(TLS_HOST, &setup.dir.path().join("ca.pem"));
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
    let Some(mut setup) = ProviderSetup::prepare() else { return };
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
    let Some(mut setup) = ProviderSetup::prepare() else { return };
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

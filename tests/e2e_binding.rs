//! Sender-constrained tokens end to end (issue 17): a real Envoy (`--concurrency 2`) with the
//! built module, the real `oidc-provider` (`tests/oidc-provider/provider.mjs`) issuing DPoP-bound
//! and certificate-bound JWT access tokens, and a DPoP client nobody here wrote: panva's `dpop`
//! library (`tests/oidc-provider/holder.mjs`) makes the token requests' proofs and the proofs of
//! the accepted requests. Envoy serves every case of one table (`envoy/e2e-binding.yaml.tmpl`):
//! - DPoP (RFC 9449): the library's proofs accepted (ES256, RS256 and Ed25519 keys, the last with
//!   RFC 9864's `alg` name `Ed25519`; the token a cache hit
//!   the second time); the same token refused from another holder (another key's proof, no
//!   proof, Bearer downgrade, Bearer beside DPoP);
//! - the negative proof cases of the OpenID Foundation's FAPI 2.0 DPoP tests, one row each, and
//!   the ones that must pass, with proofs the test mints (`support::mint::dpop_proof`) for a
//!   token the provider bound to the test's own key;
//! - a replayed proof refused, on the worker that accepted it and on the other one;
//! - server nonces (RFC 9449 §9): `use_dpop_nonce` with `DPoP-Nonce`, then accepted;
//! - certificate-bound tokens (RFC 8705): accepted over the mTLS listener with their certificate
//!   (certificates made by `openssl` at test time), refused with another one or none.
//!
//! Without Node, the installed packages or openssl the test says why and skips (fails with
//! CI=true).

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use support::config::EnvoyConfig;
use support::envoy::Envoy;
use support::mint::{Key, TestKey, b64, dpop_proof, tamper, unsigned};
use support::oidc::{
    ISSUER, NodeProcess, OidcProvider, ProviderSetup, TLS_HOST, form_encode, issue_certificate,
};
use support::servers::{EchoUpstream, free_private_port};
use support::{WORKERS, http};

/// The resource server (audience) the tokens are for.
const API: &str = "https://api.oidc.test/dpop";
/// The origin clients make proofs for (`dpop.public_url`: Envoy sits behind a load balancer).
const PUBLIC: &str = "https://api.oidc.test";
/// The mTLS listener's server name.
const SERVER_NAME: &str = "api.oidc.test";
/// The nonce step of `oidc_nonce` (short, so the test sees it turn).
const NONCE_STEP_MS: u64 = 2000;
/// The test's own DPoP key (proofs it mints, correct or not) and another one.
const MINE: TestKey = TestKey::P256A;
const OTHER: TestKey = TestKey::P256B;

/// The filter's policy: `oidc` accepts Bearer, DPoP (proofs for `PUBLIC`) and certificate-bound
/// tokens and forwards the thumbprints; `/nonce` needs DPoP with server nonces (`oidc_nonce`).
fn policy() -> Value {
    let provider = |dpop: Value| {
        json!({
            "issuer": ISSUER,
            "audiences": [API],
            "oidc_discovery": {"cluster": "idp", "timeout": "5s"},
            "remote_jwks": {"cache_duration": "600s"},
            "dpop": dpop,
            "certificate_bound": {"mode": "allowed"},
            "claim_to_headers": [
                {"header_name": "x-jwt-jkt", "claim_name": "cnf.jkt"},
                {"header_name": "x-jwt-x5t", "claim_name": "cnf.x5t#S256"}
            ]
        })
    };
    json!({
        "providers": {
            "oidc": provider(json!({"mode": "allowed", "public_url": PUBLIC})),
            "oidc_nonce": provider(json!({"mode": "required", "public_url": PUBLIC, "nonce": {"step": "2s"}}))
        },
        "rules": [
            {"match": {"prefix": "/nonce"}, "requires": {"provider_name": "oidc_nonce"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "oidc"}}
        ]
    })
}

/// `tests/oidc-provider/holder.mjs`: key pairs and proofs made by the `dpop` library.
struct Holder(NodeProcess);

impl Holder {
    fn start(setup: &ProviderSetup, provider: &OidcProvider) -> Holder {
        let env = [("OIDC_HTTP_PORT", provider.http_port.to_string())];
        Holder(NodeProcess::start(&setup.script_dir, "holder.mjs", &env, setup.dir.path(), "holder"))
    }

    fn call(&self, route: &str, body: Value) -> Value {
        let headers = [("content-type", "application/json")];
        let body = body.to_string();
        let r = http::request_with_body(self.0.port("port"), "POST", route, &headers, Some(body.as_bytes()))
            .unwrap_or_else(|e| panic!("holder {route}: {e}"));
        assert_eq!(r.status, 200, "holder {route}: {}\n{}", r.body, self.0.log());
        r.json()
    }

    /// A new key pair `name` of `alg`; its thumbprint.
    fn key(&self, name: &str, alg: &str) -> String {
        self.call("/key", json!({"name": name, "alg": alg}))["jkt"].as_str().expect("jkt").to_owned()
    }

    /// A token for `API` bound to key `name` (the token request's proof is the library's).
    fn token(&self, name: &str) -> String {
        let answer = self.call("/token", json!({"key": name, "resource": API, "scope": "read"}));
        assert_eq!(answer["token_type"], "DPoP", "{answer}");
        answer["access_token"].as_str().expect("access_token").to_owned()
    }

    /// The library's proof by key `name` for `GET PUBLIC<path>` with `token`.
    fn proof(&self, name: &str, path: &str, token: &str, nonce: Option<&str>) -> String {
        let request = json!({"key": name, "htm": "GET", "htu": format!("{PUBLIC}{path}"), "token": token, "nonce": nonce});
        self.call("/proof", request)["proof"].as_str().expect("proof").to_owned()
    }
}

/// What a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 200, with these upstream headers (name, value) seen.
    Pass(&'static [(&'static str, Check)]),
    /// Refused with this status and reason (body and `error_description`).
    Refused(u16, &'static str),
}

/// What an upstream header must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Absent,
    /// The value the case computed (`Case::seen`).
    Equals,
}

/// One request and what it must get.
struct Case {
    name: &'static str,
    port: u16,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    expect: Expect,
    /// The value `Check::Equals` compares with.
    seen: String,
}

fn dpop(token: &str, proofs: &[&str]) -> Vec<(&'static str, String)> {
    let mut headers = vec![("authorization", format!("DPoP {token}"))];
    headers.extend(proofs.iter().map(|p| ("dpop", p.to_string())));
    headers
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

/// Sends `case` and says what went wrong, if anything.
fn run(case: &Case) -> Result<http::Response, String> {
    let headers: Vec<(&str, &str)> = case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let r =
        http::request(case.port, "GET", case.path, &headers).map_err(|e| format!("{}: {e}", case.name))?;
    let problem = match case.expect {
        Expect::Pass(checks) if r.status == 200 => {
            let seen = &r.json()["headers"];
            checks.iter().find_map(|(name, check)| {
                let value = seen[name][0].as_str();
                match check {
                    Check::Absent if value.is_some() => Some(format!("{name} went upstream: {value:?}")),
                    Check::Equals if value != Some(case.seen.as_str()) => {
                        Some(format!("upstream {name}: {value:?}, expected {:?}", case.seen))
                    }
                    _ => None,
                }
            })
        }
        Expect::Pass(_) => Some(format!("expected 200, got {} {}", r.status, r.body)),
        Expect::Refused(status, reason) => {
            let challenges = r.header_values("www-authenticate");
            if (r.status, r.body.as_str()) != (status, reason) {
                Some(format!("expected {status} {reason}, got {} {}", r.status, r.body))
            } else if !challenges.iter().any(|c| c.contains(&format!("error_description=\"{reason}\""))) {
                Some(format!("no challenge names {reason}: {challenges:?}"))
            } else {
                None
            }
        }
    };
    match problem {
        Some(problem) => Err(format!("{}: {problem}", case.name)),
        None => Ok(r),
    }
}

/// The client certificates and the mTLS listener's, signed by the provider's test CA.
fn make_client_certificates(dir: &Path) {
    issue_certificate(dir, "api", SERVER_NAME, "serverAuth");
    issue_certificate(dir, "client-a", "client-a.oidc.test", "clientAuth");
    issue_certificate(dir, "client-b", "client-b.oidc.test", "clientAuth");
}

/// Envoy with the binding template: `api` (its first listener) and `mtls` with the filter, and
/// `as_a`, `as_b` in front of `mtls`.
fn start_envoy(setup: &ProviderSetup, upstream: &EchoUpstream) -> Envoy {
    let file = |name: &str| json!(setup.file(name).to_string_lossy());
    let mtls_port = free_private_port().expect("a free port for the mTLS listener");
    let values = [
        ("MTLS_PORT", json!(mtls_port)),
        ("SERVER_NAME", json!(SERVER_NAME)),
        ("CA_CERT", file("ca.pem")),
        ("SERVER_CERT", file("api.pem")),
        ("SERVER_KEY", file("api.key")),
        ("CLIENT_A_CERT", file("client-a.pem")),
        ("CLIENT_A_KEY", file("client-a.key")),
        ("CLIENT_B_CERT", file("client-b.pem")),
        ("CLIENT_B_KEY", file("client-b.key")),
    ];
    let config = EnvoyConfig::new(policy(), setup.tls_port, upstream.port())
        .idp_tls(TLS_HOST, &setup.file("ca.pem"))
        .template_nodes("e2e-binding.yaml.tmpl", &values);
    Envoy::start(&config.wasm(), 2)
}

/// A token for `API` bound to `key` by the provider, which checks the test's own proof for the
/// token request (the test's minter against a verifier nobody here wrote).
fn token_bound_to(provider: &OidcProvider, key: &Key) -> String {
    let htu = format!("http://127.0.0.1:{}/token", provider.http_port);
    let proof = dpop_proof(key, "POST", &htu, None).sign();
    let host = format!("127.0.0.1:{}", provider.http_port);
    let token = provider.token_for("interop", API, "read", &[("dpop", &proof), ("host", &host)]);
    assert_eq!(support::oidc::part(&token, 1)["cnf"]["jkt"], json!(key.thumbprint()));
    token
}

#[test]
fn sender_constrained_tokens_from_a_real_provider() {
    let Some(mut setup) = ProviderSetup::prepare(json!({API: {"alg": "ES256", "ttl": 300}})) else { return };
    let started = Instant::now();
    make_client_certificates(setup.dir.path());
    let provider = setup.start(&["p256-1", "rsa-1"]);
    let holder = Holder::start(&setup, &provider);
    let upstream = EchoUpstream::new();
    let envoy = start_envoy(&setup, &upstream);
    let (api, as_a, as_b) = (envoy.port(), envoy.listener("as_a"), envoy.listener("as_b"));

    // Tokens: bound to the library's keys, to the test's key, to client certificate A; unbound.
    let alice_jkt = holder.key("alice", "ES256");
    holder.key("rsa-holder", "RS256");
    holder.key("ed-holder", "Ed25519");
    holder.key("mallory", "ES256");
    let alice = holder.token("alice");
    let rsa_token = holder.token("rsa-holder");
    let ed_token = holder.token("ed-holder");
    let mine = token_bound_to(&provider, &MINE);
    let cert_a = std::fs::read_to_string(setup.file("client-a.pem")).expect("client-a.pem");
    let cert_token =
        provider.token_for("interop-mtls", API, "read", &[("x-client-cert", &form_encode(&cert_a))]);
    let x5t =
        support::oidc::part(&cert_token, 1)["cnf"]["x5t#S256"].as_str().expect("cnf.x5t#S256").to_owned();
    let unbound = provider.token(API, "read");

    let mut cases = library_cases(&holder, api, &alice, &alice_jkt, &[&rsa_token, &ed_token], &unbound);
    cases.extend(certificate_cases(api, as_a, as_b, &cert_token, &x5t, &unbound));
    cases.extend(fapi_cases(api, &mine));
    let mut failures: Vec<String> = cases.iter().filter_map(|case| run(case).err()).collect();

    // The answers of a DPoP provider: its challenges with algs, exposed to CORS.
    let refused = run(&Case {
        name: "challenges",
        port: api,
        path: "/dpop/items",
        headers: dpop(&alice, &[]),
        expect: Expect::Refused(401, "dpop_proof_missing"),
        seen: String::new(),
    });
    if let Ok(r) = refused {
        let challenges = r.header_values("www-authenticate");
        let expected_dpop = "DPoP realm=\"http://localhost/dpop/items\", error=\"invalid_dpop_proof\"";
        if !(challenges.len() == 2
            && challenges[0].starts_with("Bearer ")
            && challenges[1].starts_with(expected_dpop)
            && challenges[1].contains("algs=\""))
        {
            failures.push(format!("challenges: {challenges:?}"));
        }
        if r.header("access-control-expose-headers") != Some("WWW-Authenticate, DPoP-Nonce") {
            failures.push(format!("CORS: {:?}", r.headers));
        }
    }
    failures.extend(replays(&envoy, &holder, &alice).err());
    failures.extend(nonces(&holder, api, &alice).err());
    assert!(failures.is_empty(), "{} of the cases failed:\n{}", failures.len(), failures.join("\n"));

    // Every refusal counted in its category.
    let metric = |provider: &str, name: &str| {
        envoy.stat(&format!("wasmcustom.jwt_authn_wasm.provider.{provider}.denied.{name}")).unwrap_or(0)
    };
    let counted = support::wait_until(Duration::from_secs(2), || {
        metric("oidc", "dpop_proof") >= 20
            && metric("oidc", "dpop_binding") >= 2
            && metric("oidc", "cnf") >= 2
            && metric("oidc", "dpop_replayed") >= 2
            && metric("oidc_nonce", "dpop_nonce") >= 1
    });
    let names = ["dpop_proof", "dpop_binding", "cnf", "dpop_replayed"];
    assert!(
        counted,
        "metrics: {:?}, nonce {}",
        names.map(|n| (n, metric("oidc", n))),
        metric("oidc_nonce", "dpop_nonce")
    );
    envoy.assert_no_wasm_failures();
    eprintln!("{} cases in {:?}", cases.len() + 6, started.elapsed());
}

/// Proofs made by the `dpop` library: accepted, and the same token refused from anyone else.
fn library_cases(
    holder: &Holder,
    api: u16,
    alice: &str,
    alice_jkt: &str,
    [rsa_token, ed_token]: &[&str; 2],
    unbound: &str,
) -> Vec<Case> {
    let path = "/dpop/items";
    let proof = |key: &str, token: &str| holder.proof(key, path, token, None);
    let passed: &[(&str, Check)] =
        &[("x-jwt-jkt", Check::Equals), ("authorization", Check::Absent), ("dpop", Check::Absent)];
    let case =
        |name, headers, expect| Case { name, port: api, path, headers, expect, seen: alice_jkt.to_owned() };
    vec![
        case(
            "library ES256 proof with its DPoP-bound token",
            dpop(alice, &[&proof("alice", alice)]),
            Expect::Pass(passed),
        ),
        case(
            "the same token (cached) with a new library proof",
            dpop(alice, &[&proof("alice", alice)]),
            Expect::Pass(&[]),
        ),
        case(
            "library RS256 proof with its token",
            dpop(rsa_token, &[&proof("rsa-holder", rsa_token)]),
            Expect::Pass(&[]),
        ),
        case(
            "library Ed25519 proof (alg Ed25519, RFC 9864) with its token",
            dpop(ed_token, &[&proof("ed-holder", ed_token)]),
            Expect::Pass(&[]),
        ),
        case(
            "the token with another holder's proof",
            dpop(alice, &[&proof("mallory", alice)]),
            Expect::Refused(401, "dpop_jkt_mismatch"),
        ),
        case("the token without a proof", dpop(alice, &[]), Expect::Refused(401, "dpop_proof_missing")),
        case("the token as Bearer (downgrade)", bearer(alice), Expect::Refused(401, "dpop_downgrade")),
        case(
            "Bearer beside DPoP",
            [dpop(alice, &[&proof("alice", alice)]), bearer(unbound)].concat(),
            Expect::Refused(400, "dpop_bearer_and_dpop"),
        ),
        case("an unbound token as Bearer", bearer(unbound), Expect::Pass(&[("x-jwt-jkt", Check::Absent)])),
    ]
}

/// A certificate-bound token through `as_a` (certificate A), `as_b` (certificate B) and `api`
/// (no TLS at all).
fn certificate_cases(api: u16, as_a: u16, as_b: u16, token: &str, x5t: &str, unbound: &str) -> Vec<Case> {
    let case = |name, port, headers, expect| Case {
        name,
        port,
        path: "/cert",
        headers,
        expect,
        seen: x5t.to_owned(),
    };
    vec![
        case(
            "certificate-bound token with its certificate",
            as_a,
            bearer(token),
            Expect::Pass(&[("x-jwt-x5t", Check::Equals)]),
        ),
        case(
            "certificate-bound token with another certificate",
            as_b,
            bearer(token),
            Expect::Refused(401, "cnf_certificate_mismatch"),
        ),
        case(
            "certificate-bound token without a certificate",
            api,
            bearer(token),
            Expect::Refused(401, "cnf_certificate_missing"),
        ),
        case("unbound token over mTLS", as_b, bearer(unbound), Expect::Pass(&[("x-jwt-x5t", Check::Absent)])),
    ]
}

/// The FAPI 2.0 DPoP negative cases, one row each, and the cases that must pass, with proofs the
/// test mints for `token` (bound to `MINE`), each changed in one member from a valid one.
fn fapi_cases(api: u16, token: &str) -> Vec<Case> {
    let path = "/dpop/fapi";
    let htu = format!("{PUBLIC}{path}");
    let good = || dpop_proof(&MINE, "GET", &htu, Some(token));
    let now = support::mint::now();
    let refused = |name, proof: String, reason| Case {
        name,
        port: api,
        path,
        headers: dpop(token, &[&proof]),
        expect: Expect::Refused(401, reason),
        seen: String::new(),
    };
    let passes = |name, proof: String| Case {
        name,
        port: api,
        path,
        headers: dpop(token, &[&proof]),
        expect: Expect::Pass(&[]),
        seen: String::new(),
    };
    let header = |name: &str| good().remove_header(name).sign();
    let claim = |name: &str| good().remove_claim(name).sign();
    let valid = good().sign();
    let mut private = MINE.public_jwk();
    private["d"] = json!(b64(&[1; 32]));
    vec![
        Case {
            headers: dpop(token, &[&good().sign(), &good().sign()]),
            ..refused("two DPoP headers", String::new(), "dpop_proof_repeated")
        },
        refused("a DPoP value that is not a JWT", "not-a-jwt".into(), "dpop_proof_malformed"),
        refused("no typ", header("typ"), "dpop_proof_bad_typ"),
        refused("no alg", header("alg"), "dpop_proof_alg_not_allowed"),
        refused("no jwk", header("jwk"), "dpop_proof_bad_jwk"),
        refused("no jti", claim("jti"), "dpop_proof_bad_jti"),
        refused("no htm", claim("htm"), "dpop_proof_bad_htm"),
        refused("no htu", claim("htu"), "dpop_proof_bad_htu"),
        refused("no iat", claim("iat"), "dpop_proof_bad_iat"),
        refused("no ath", claim("ath"), "dpop_proof_bad_ath"),
        refused("typ JWT", good().header("typ", json!("JWT")).sign(), "dpop_proof_bad_typ"),
        refused("alg none", good().header("alg", json!("none")).sign(), "dpop_proof_alg_not_allowed"),
        refused(
            "alg none, unsigned",
            {
                let p = good().header("alg", json!("none"));
                unsigned(&p.header_json(), &p.payload_json())
            },
            "dpop_proof_malformed",
        ),
        refused("a bad signature", tamper(&good().sign()), "dpop_proof_bad_signature"),
        refused("a private key in jwk", good().header("jwk", private).sign(), "dpop_proof_private_key"),
        refused("another htm", good().claim("htm", json!("POST")).sign(), "dpop_htm_mismatch"),
        refused(
            "another htu",
            good().claim("htu", json!("https://other.oidc.test/dpop/fapi")).sign(),
            "dpop_htu_mismatch",
        ),
        refused("iat an hour ago", good().claim("iat", json!(now - 3600)).sign(), "dpop_iat_too_old"),
        refused("iat an hour ahead", good().claim("iat", json!(now + 3600)).sign(), "dpop_iat_in_future"),
        refused(
            "another token's ath",
            good().claim("ath", json!(support::mint::access_token_hash("x"))).sign(),
            "dpop_ath_mismatch",
        ),
        refused(
            "a proof by another key",
            dpop_proof(&OTHER, "GET", &htu, Some(token)).sign(),
            "dpop_jkt_mismatch",
        ),
        passes("a valid proof (replayed next)", valid.clone()),
        refused("a replayed jti", valid, "dpop_proof_replayed"),
        passes("htu with a query", good().claim("htu", json!(format!("{htu}?q=1"))).sign()),
        passes("htu with a fragment", good().claim("htu", json!(format!("{htu}#f"))).sign()),
        passes(
            "extra header parameters",
            good().header("kid", json!("k1")).header("x-extra", json!({"a": 1})).sign(),
        ),
        passes("extra claims", good().claim("exp", json!(now + 60)).claim("x-extra", json!(["a"])).sign()),
        passes("iat 10 s ago", good().claim("iat", json!(now - 10)).sign()),
        passes("iat 10 s ahead", good().claim("iat", json!(now + 10)).sign()),
    ]
}

/// A proof accepted once, then replayed until the other worker has seen the replay too: refused
/// every time (the replay record is one per Envoy).
fn replays(envoy: &Envoy, holder: &Holder, token: &str) -> Result<(), String> {
    let path = "/dpop/replay";
    let headers = dpop(token, &[&holder.proof("alice", path, token, None)]);
    let case = |name, expect| Case {
        name,
        port: envoy.port(),
        path,
        headers: headers.clone(),
        expect,
        seen: String::new(),
    };
    let served = || WORKERS.map(|w| envoy.connections_served(w));
    let before = served();
    run(&case("a proof used once", Expect::Pass(&[])))?;
    let accepted_by = served().iter().zip(before).position(|(after, before)| *after > before);
    let other = accepted_by.map(|w| 1 - w).ok_or("no worker served the request")?;
    for _ in 0..20 {
        let before = served()[other];
        run(&case("the proof replayed", Expect::Refused(401, "dpop_proof_replayed")))?;
        if served()[other] > before {
            return Ok(());
        }
    }
    Err("20 replays never reached the other worker".into())
}

/// A provider with server nonces: a proof without one gets `use_dpop_nonce` and the nonce; a
/// proof with it passes, and once the step has turned it still passes and the answer offers the
/// new nonce. A round whose requests straddle more step boundaries than it planned for (a loaded
/// machine) is run again, at most three times.
fn nonces(holder: &Holder, api: u16, token: &str) -> Result<(), String> {
    let mut failed = String::new();
    for _ in 0..3 {
        match nonce_round(holder, api, token) {
            Ok(()) => return Ok(()),
            Err(why) => failed = why,
        }
    }
    Err(failed)
}

fn nonce_round(holder: &Holder, api: u16, token: &str) -> Result<(), String> {
    let path = "/nonce/items";
    let case = |name, nonce: Option<&str>, expect| Case {
        name,
        port: api,
        path,
        headers: dpop(token, &[&holder.proof("alice", path, token, nonce)]),
        expect,
        seen: String::new(),
    };
    let first =
        run(&case("a proof without the server's nonce", None, Expect::Refused(401, "dpop_nonce_missing")))?;
    let step = unix_ms() / NONCE_STEP_MS;
    let nonce = first.header("dpop-nonce").ok_or("no DPoP-Nonce on use_dpop_nonce")?.to_owned();
    let challenge = first
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("www-authenticate") && v.contains("error=\"use_dpop_nonce\""));
    if !challenge {
        return Err(format!("no use_dpop_nonce challenge: {:?}", first.headers));
    }
    run(&case("a proof with the server's nonce", Some(&nonce), Expect::Pass(&[])))?;
    // The next step: the nonce is the previous step's now.
    std::thread::sleep(Duration::from_millis(((step + 1) * NONCE_STEP_MS).saturating_sub(unix_ms()) + 20));
    let turned = run(&case("a proof with the previous step's nonce", Some(&nonce), Expect::Pass(&[])))?;
    match turned.header("dpop-nonce") {
        Some(offered) if offered != nonce => {}
        other => return Err(format!("after the step turned, DPoP-Nonce {other:?} (was {nonce})")),
    }
    if turned.header("access-control-expose-headers") != Some("WWW-Authenticate, DPoP-Nonce") {
        return Err(format!("the offered nonce is not exposed to CORS: {:?}", turned.headers));
    }
    Ok(())
}

fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_millis() as u64).unwrap_or_default()
}

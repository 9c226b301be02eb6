//! The filter end to end, the answers it gives: the built `.wasm` in a real Envoy
//! (`--concurrency 2`), a JWKS server and an echo upstream, real HTTP over loopback.
//!
//! Two Envoys, each covering many checks: `tokens_*` is about one requirement (`provider_name`)
//! and every way a token can be right or wrong, `routes_*` about every kind of rule and
//! requirement, and about output headers a client tries to forge. Keys over time are in
//! `e2e_lifecycle.rs`, refused configurations in `e2e_config.rs`.

mod support;

use serde_json::{Value, json};
use support::config::{AUDIENCE, EnvoyConfig, Filter, ISSUER, corp_jwks, corp_token};
use support::http::{self, Response};
use support::mint::{self, TestKey, Token};
use support::{Stack, WORKERS, upstream_headers};

/// The second provider's issuer: keys inline (`local_jwks`), token in `x-local-jwt`, forwarded.
const LOCAL_ISSUER: &str = "https://local.example";

/// Two providers and a rule of every kind. `corp` reads a header, a query parameter and a cookie
/// and writes `x-jwt-payload` and `x-jwt-sub`; `local` reads its own header, parameter and cookie,
/// forwards its token (`forward: true`) and writes `x-local-sub`.
fn policy() -> Value {
    let corp = json!({"provider_name": "corp"});
    let local = json!({"provider_name": "local"});
    json!({
        "providers": {
            "corp": {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "algorithms": ["RS256", "ES256"],
                "remote_jwks": {
                    "http_uri": {"uri": "http://idp/jwks.json", "cluster": "idp", "timeout": "2s"},
                    "cache_duration": "600s"
                },
                "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                "from_params": ["access_token"],
                "from_cookies": ["session"],
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
            },
            "local": {
                "issuer": LOCAL_ISSUER,
                "audiences": [AUDIENCE],
                "local_jwks": {"inline_string": mint::jwks(&[(TestKey::P256B, "local-ec")])},
                "from_headers": [{"name": "x-local-jwt"}],
                "from_params": ["local_token"],
                "from_cookies": ["local_session"],
                "forward": true,
                "claim_to_headers": [{"header_name": "x-local-sub", "claim_name": "sub"}]
            }
        },
        "rules": [
            {"match": {"prefix": "/healthz"}},
            {"match": {"path": "/public"}, "requires": {"allow_missing": {}}},
            {"match": {"safe_regex": {"regex": "/open/[0-9]+"}}},
            {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [corp, local]}}},
            {"match": {"prefix": "/all"}, "requires": {"requires_all": {"requirements": [corp, local]}}},
            {"match": {"prefix": "/aud"}, "requires":
                {"provider_and_audiences": {"provider_name": "corp", "audiences": ["other.example"]}}},
            {"match": {"prefix": "/optional"}, "requires": {"allow_missing_or_failed": {}}},
            {"match": {"prefix": "/"}, "requires": corp}
        ]
    })
}

/// The suite's Envoy. `FAIL_RELOAD` only so that a VM failure would also show in the
/// `vm_reload*` stats (with `FAIL_CLOSED` it shows nowhere but the log); none is expected.
fn start() -> Option<Stack> {
    Stack::start_with(Filter::Wasm, &corp_jwks(), 2, |idp, upstream| {
        EnvoyConfig::new(policy(), idp, upstream).failure_policy("FAIL_RELOAD")
    })
}

fn rsa() -> Token<'static> {
    corp_token("RS256", TestKey::RsaA, "rsa-a")
}

fn local() -> Token<'static> {
    Token::new("ES256", TestKey::P256B)
        .kid("local-ec")
        .iss(LOCAL_ISSUER)
        .aud(AUDIENCE)
        .sub("bob")
        .exp_in(3600)
}

/// A refusal as RFC 6750 §3 wants it: the challenge for a request to `http://localhost<path>`
/// (without query), `invalid_token` with the reason, and the reason as the body.
fn assert_refused(r: &Response, status: u16, reason: &str, path: &str, what: &str) {
    assert_eq!((r.status, r.body.as_str()), (status, reason), "{what}");
    let challenge = format!(
        "Bearer realm=\"http://localhost{path}\", error=\"invalid_token\", error_description=\"{reason}\""
    );
    assert_eq!(r.header("www-authenticate"), Some(challenge.as_str()), "{what}");
}

/// No token where one is needed: 401 and a challenge without an error code (RFC 6750 §3.1).
fn assert_missing(r: &Response, path: &str, what: &str) {
    assert_eq!((r.status, r.body.as_str()), (401, "jwt_missing"), "{what}");
    let challenge = format!("Bearer realm=\"http://localhost{path}\"");
    assert_eq!(r.header("www-authenticate"), Some(challenge.as_str()), "{what}");
}

/// No trace of a failed wasm VM in Envoy's log or stats, and both workers served connections
/// (so what the test saw holds for each worker's VM, not only one).
fn assert_healthy(stack: &Stack) {
    stack.envoy.assert_no_wasm_failures();
    for worker in WORKERS {
        assert!(stack.connections_served(worker) > 0, "{worker} served no connection");
    }
}

#[test]
fn tokens_are_verified_stripped_and_refused_with_rfc_6750_answers() {
    let Some(stack) = start() else { return };

    // Valid RS256 and ES256 tokens pass; the upstream gets the payload and the claim, not the token.
    for (alg, key, kid) in [("RS256", TestKey::RsaA, "rsa-a"), ("ES256", TestKey::P256A, "ec-a")] {
        let token = corp_token(alg, key, kid);
        let headers = upstream_headers(&stack.get("/hello", Some(&token.sign())));
        assert!(headers.get("authorization").is_none(), "{alg}: token forwarded: {headers}");
        assert_eq!(headers["x-jwt-sub"], json!(["alice"]), "{alg}");
        assert_eq!(headers["x-jwt-payload"], json!([mint::b64(token.payload_json().as_bytes())]), "{alg}");
    }

    // A Keycloak-style token of ~8.6 KB (a user in many groups) passes at the default size cap.
    let groups: Vec<String> = (0..220).map(|i| format!("/org/department-{i:03}/team")).collect();
    let big = rsa().claim("groups", json!(groups)).sign();
    assert!(big.len() > 8400, "{}", big.len());
    assert_eq!(stack.get("/hello", Some(&big)).status, 200, "a {}-byte token", big.len());

    // Claim values reach the upstream as they are, unless they could break the header.
    for (sub, forwarded) in [("ålice 😀", Some("ålice 😀")), ("alice\r\nx-evil: 1", None), ("a\u{0}b", None)]
    {
        let headers = upstream_headers(&stack.get("/hello", Some(&rsa().sub(sub).sign())));
        assert_eq!(headers.get("x-jwt-sub"), forwarded.map(|s| json!([s])).as_ref(), "{sub:?}");
        assert!(headers.get("x-evil").is_none());
    }

    // Refused tokens: status, challenge and body name the reason.
    let mallory = rsa().sub("mallory").payload_json();
    let refused = [
        ("expired", 401, "jwt_expired", rsa().exp_in(-120).sign()),
        ("not yet valid", 401, "jwt_not_yet_valid", rsa().nbf_in(3600).sign()),
        ("tampered signature", 401, "jwt_bad_signature", mint::tamper(&rsa().sign())),
        ("payload swapped", 401, "jwt_bad_signature", mint::swap_payload(&rsa().sign(), &mallory)),
        (
            "ES256 by another key",
            401,
            "jwt_bad_signature",
            corp_token("ES256", TestKey::P256B, "ec-a").sign(),
        ),
        ("wrong issuer", 401, "jwt_issuer_not_allowed", rsa().iss("https://other.example").sign()),
        ("wrong audience", 403, "jwt_audience_not_allowed", rsa().aud("other.example").sign()),
        ("unknown kid", 401, "jwt_unknown_kid", corp_token("RS256", TestKey::RsaB, "rsa-b").sign()),
        // An unsigned token has an empty third segment: malformed before its header is read.
        (
            "alg none, unsigned",
            401,
            "jwt_bad_format",
            mint::unsigned(r#"{"alg":"none"}"#, &rsa().payload_json()),
        ),
        ("alg none, with a signature", 401, "jwt_alg_not_allowed", rsa().header("alg", json!("none")).sign()),
        ("alg not in the allow-list", 401, "jwt_alg_not_allowed", rsa().header("alg", json!("RS384")).sign()),
        ("too large", 401, "jwt_too_large", rsa().claim("pad", json!("x".repeat(17_000))).sign()),
        ("not a JWT", 401, "jwt_bad_format", "not-a-jwt".to_string()),
    ];
    for (what, status, reason, token) in &refused {
        assert_refused(&stack.get("/hello", Some(token)), *status, reason, "/hello", what);
    }

    // No token, or a header of another scheme: a challenge without an error code.
    assert_missing(&stack.get("/hello", None), "/hello", "no token");
    assert_missing(&stack.get_with("/hello", &[("authorization", "Basic YTpi")]), "/hello", "Basic");

    // The scheme is case-insensitive and may be followed by several spaces; nothing may follow
    // the token, and one Authorization header only.
    let token = rsa().sign();
    for scheme in ["bearer", "BEARER", "BeArEr", "Bearer  "] {
        let auth = format!("{scheme} {token}");
        upstream_headers(&stack.get_with("/hello", &[("authorization", &auth)]));
    }
    let trailing = format!("Bearer {token} extra");
    let r = stack.get_with("/hello", &[("authorization", &trailing)]);
    assert_refused(&r, 401, "jwt_location_malformed", "/hello", "text after the token");
    // Envoy folds a repeated Authorization (one of its inline headers) into one value joined by
    // ",", so the filter sees text after the first token. Other headers stay separate: see the
    // repeated `x-local-jwt` in the routes test.
    let auth = format!("Bearer {token}");
    let r = stack.get_with("/hello", &[("authorization", &auth), ("authorization", &auth)]);
    assert_refused(&r, 401, "jwt_location_malformed", "/hello", "repeated Authorization");

    // Query parameter: accepted and removed before the upstream; the other parameters stay. The
    // realm of a refusal never carries the query (nor the token in it).
    let echo = stack.get(&format!("/q?x=1&access_token={token}&y=2"), None).json();
    assert_eq!(echo["path"], "/q?x=1&y=2");
    assert_eq!(echo["headers"]["x-jwt-sub"], json!(["alice"]));
    assert_eq!(stack.get(&format!("/q?access_token={token}"), None).json()["path"], "/q");
    let bad = rsa().exp_in(-120).sign();
    assert_refused(&stack.get(&format!("/q?access_token={bad}"), None), 401, "jwt_expired", "/q", "param");

    // Cookie: accepted and removed; the other cookies stay.
    let cookie = format!("a=1; session={token}; b=2");
    let headers = upstream_headers(&stack.get_with("/c", &[("cookie", &cookie)]));
    assert_eq!(headers["cookie"], json!(["a=1; b=2"]));
    assert_eq!(headers["x-jwt-sub"], json!(["alice"]));
    let only = format!("session={token}");
    let headers = upstream_headers(&stack.get_with("/c", &[("cookie", &only)]));
    assert!(headers.get("cookie").is_none(), "{headers}");
    // Envoy keeps repeated Cookie headers apart; the filter reads them all and keeps the others.
    let headers = upstream_headers(&stack.get_with("/c", &[("cookie", "a=1"), ("cookie", &only)]));
    assert_eq!(headers["cookie"], json!(["a=1"]));

    // Tokens in several places must all verify; all are stripped.
    let r = stack.get_with(&format!("/both?access_token={token}"), &[("authorization", &auth)]);
    let echo = r.json();
    assert_eq!((r.status, &echo["path"]), (200, &json!("/both")), "{}", r.body);
    assert!(echo["headers"].get("authorization").is_none());
    let tampered = mint::tamper(&token);
    let r = stack.get_with(&format!("/both?access_token={tampered}"), &[("authorization", &auth)]);
    assert_refused(&r, 401, "jwt_bad_signature", "/both", "one good token and one bad");

    // Exactly the requests that should pass reached the upstream: two algorithms, one big token,
    // three claim values, four schemes, two queries, three cookies, two places at once.
    assert_eq!(stack.upstream.hits(), 2 + 1 + 3 + 4 + 2 + 3 + 1);
    assert_healthy(&stack);
}

/// The tokens a request of the routes test carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carries {
    Nothing,
    /// A valid corp token in `Authorization`.
    Corp,
    /// A corp token with a bad signature.
    Tampered,
    /// A valid corp token for audience `other.example` only.
    OtherAudience,
    /// A valid local token in `x-local-jwt`.
    Local,
    /// `Corp` and `Local`.
    Both,
}

/// What the routes test expects.
enum Expect {
    /// Passes; the upstream sees these `x-jwt-sub` and `x-local-sub` values (`None`: absent).
    Pass(Option<&'static str>, Option<&'static str>),
    /// Refused with this status and reason (`jwt_missing`: the challenge has no error code).
    Refused(u16, &'static str),
}

#[test]
fn every_rule_kind_decides_and_forged_claim_headers_never_reach_the_upstream() {
    use Carries::*;
    use Expect::*;
    let Some(stack) = start() else { return };
    let (alice, other_aud) = (rsa(), rsa().aud("other.example"));
    let corp_auth = format!("Bearer {}", alice.sign());
    let tampered_auth = format!("Bearer {}", mint::tamper(&alice.sign()));
    let other_aud_auth = format!("Bearer {}", other_aud.sign());
    let local_token = local().sign();
    // What a client adds to every request, hoping the upstream believes it (one header twice,
    // in another case).
    let forged = [
        ("x-jwt-sub", "mallory"),
        ("X-JWT-Sub", "mallory"),
        ("x-jwt-payload", "e30"),
        ("x-local-sub", "mallory"),
    ];

    let cases = [
        ("no requires", "/healthz", Nothing, Pass(None, None)),
        ("no requires, with a token", "/healthz", Corp, Pass(None, None)),
        ("safe_regex", "/open/42", Nothing, Pass(None, None)),
        ("safe_regex is a full match", "/open/42/x", Nothing, Refused(401, "jwt_missing")),
        ("safe_regex does not match", "/open/abc", Nothing, Refused(401, "jwt_missing")),
        ("allow_missing, none", "/public", Nothing, Pass(None, None)),
        ("allow_missing, valid", "/public", Corp, Pass(Some("alice"), None)),
        ("allow_missing, failed", "/public", Tampered, Refused(401, "jwt_bad_signature")),
        ("requires_any, corp", "/any", Corp, Pass(Some("alice"), None)),
        ("requires_any, local", "/any", Local, Pass(None, Some("bob"))),
        ("requires_any, none", "/any", Nothing, Refused(401, "jwt_missing")),
        ("requires_any, failed", "/any", Tampered, Refused(401, "jwt_bad_signature")),
        ("requires_all, both", "/all", Both, Pass(Some("alice"), Some("bob"))),
        ("requires_all, corp only", "/all", Corp, Refused(401, "jwt_missing")),
        ("requires_all, local only", "/all", Local, Refused(401, "jwt_missing")),
        ("provider_and_audiences", "/aud", OtherAudience, Pass(Some("alice"), None)),
        ("provider_and_audiences, provider's", "/aud", Corp, Refused(403, "jwt_audience_not_allowed")),
        ("allow_missing_or_failed, none", "/optional", Nothing, Pass(None, None)),
        ("allow_missing_or_failed, failed", "/optional", Tampered, Pass(None, None)),
        ("allow_missing_or_failed, valid", "/optional", Corp, Pass(Some("alice"), None)),
        ("provider_name", "/", Corp, Pass(Some("alice"), None)),
        ("provider_name, none", "/", Nothing, Refused(401, "jwt_missing")),
    ];
    for (what, path, carries, expect) in &cases {
        let mut headers = forged.to_vec();
        match carries {
            Nothing | Local => {}
            Corp | Both => headers.push(("authorization", &corp_auth)),
            Tampered => headers.push(("authorization", &tampered_auth)),
            OtherAudience => headers.push(("authorization", &other_aud_auth)),
        }
        if matches!(carries, Local | Both) {
            headers.push(("x-local-jwt", &local_token));
        }
        let r = stack.get_with(path, &headers);
        let (sub, local_sub) = match expect {
            Refused(401, "jwt_missing") => {
                assert_missing(&r, path, what);
                continue;
            }
            Refused(status, reason) => {
                assert_refused(&r, *status, reason, path, what);
                continue;
            }
            Pass(sub, local_sub) => (sub, local_sub),
        };
        let seen = upstream_headers(&r);
        let header = |name: &str| seen.get(name).cloned().unwrap_or(Value::Null);
        let values = |v: &Option<&str>| v.map_or(Value::Null, |v| json!([v]));
        assert_eq!(header("x-jwt-sub"), values(sub), "{what}");
        assert_eq!(header("x-local-sub"), values(local_sub), "{what}");
        // The payload of the token that verified, or nothing; and corp's token stripped then.
        let payload = match carries {
            _ if sub.is_none() => Value::Null,
            OtherAudience => json!([mint::b64(other_aud.payload_json().as_bytes())]),
            _ => json!([mint::b64(alice.payload_json().as_bytes())]),
        };
        assert_eq!(header("x-jwt-payload"), payload, "{what}");
        if sub.is_some() {
            assert_eq!(header("authorization"), Value::Null, "{what}");
        }
        // local has `forward: true`.
        if matches!(carries, Local | Both) {
            assert_eq!(header("x-local-jwt"), json!([local_token]), "{what}");
        }
    }

    // Rules see the path as Envoy normalized it (the template sets `normalize_path` and
    // `merge_slashes`), so dot segments cannot reach a protected path through an open prefix;
    // prefixes are case-sensitive.
    assert_missing(&stack.get("/healthz/../api", None), "/api", "dot segments");
    assert_missing(&stack.get("//api//x", None), "/api/x", "merged slashes");
    assert_missing(&stack.get("/HEALTHZ", None), "/HEALTHZ", "case");

    // With `forward: true` a token in a query parameter or a cookie stays too.
    let echo = stack.get(&format!("/any?a=1&local_token={local_token}"), None).json();
    assert_eq!(echo["path"], format!("/any?a=1&local_token={local_token}"));
    assert_eq!(echo["headers"]["x-local-sub"], json!(["bob"]));
    let cookie = format!("local_session={local_token}; a=1");
    let headers = upstream_headers(&stack.get_with("/any", &[("cookie", &cookie)]));
    assert_eq!((&headers["cookie"], &headers["x-local-sub"]), (&json!([cookie]), &json!(["bob"])));

    // A token header sent twice is refused, even when both copies are the same valid token.
    let r = stack.get_with("/any", &[("x-local-jwt", &local_token), ("x-local-jwt", &local_token)]);
    assert_refused(&r, 401, "jwt_location_repeated", "/any", "repeated x-local-jwt");

    let passed = cases.iter().filter(|c| matches!(c.3, Pass(..))).count() + 2;
    assert_eq!(stack.upstream.hits(), passed, "only the passing requests reach the upstream");
    assert_healthy(&stack);
}

/// The two jwt_authn switches of the whole filter: `bypass_cors_preflight` lets a CORS preflight
/// (OPTIONS with `Origin` and `Access-Control-Request-Method`, which browsers send without
/// credentials) through whatever the rule requires; `strip_failure_response` leaves the reason out
/// of a refusal: no body, and a challenge without `error_description`.
#[test]
fn cors_preflights_bypass_and_failure_responses_are_stripped_when_configured() {
    let mut policy = policy();
    policy["bypass_cors_preflight"] = json!(true);
    policy["strip_failure_response"] = json!(true);
    let Some(stack) = Stack::start(Filter::Wasm, policy, &corp_jwks(), 2) else { return };
    let preflight = [("origin", "https://app.example"), ("access-control-request-method", "POST")];
    let realm = "Bearer realm=\"http://localhost/hello\"";
    let invalid = format!("{realm}, error=\"invalid_token\"");
    let rounds = stack.on_both_workers(|| {
        let mut forged = preflight.to_vec();
        forged.push(("x-jwt-sub", "mallory"));
        let r = http::request(stack.envoy.port(), "OPTIONS", "/hello", &forged).unwrap();
        let seen = upstream_headers(&r);
        assert_eq!(r.json()["method"], "OPTIONS");
        assert!(seen.get("x-jwt-sub").is_none(), "forged claim header on a bypassed preflight: {seen}");

        // Not a preflight without both headers: the rule applies, and the refusal says no reason.
        let refusals = [
            ("OPTIONS", &preflight[..1], None, 401, realm.to_string()),
            ("OPTIONS", &preflight[1..], None, 401, realm.to_string()),
            ("GET", &preflight[..], None, 401, realm.to_string()),
            ("GET", &[][..], Some(mint::tamper(&rsa().sign())), 401, invalid.clone()),
            ("GET", &[][..], Some(rsa().aud("other.example").sign()), 403, invalid.clone()),
        ];
        for (method, headers, token, status, challenge) in refusals {
            let auth = token.map(|t| format!("Bearer {t}"));
            let mut headers = headers.to_vec();
            headers.extend(auth.as_deref().map(|a| ("authorization", a)));
            let r = http::request(stack.envoy.port(), method, "/hello", &headers).unwrap();
            assert_eq!((r.status, r.body.as_str()), (status, ""), "{method} {headers:?}");
            assert_eq!(r.header("www-authenticate"), Some(challenge.as_str()), "{method} {headers:?}");
        }
    });
    assert_eq!(stack.upstream.hits(), rounds);
    assert_healthy(&stack);
}

/// Sends raw bytes as a request and returns the status code of the answer.
fn raw_status(port: u16, request: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[test]
fn header_values_that_are_not_utf8_never_take_the_vm_down() {
    let Some(stack) = start() else { return };
    let port = stack.envoy.port();
    // HTTP allows obs-text bytes in values; Latin-1 "café" is not UTF-8. Both workers must see it.
    // (Answered by the filter: the test's echo upstream reads UTF-8 only.)
    stack.on_both_workers(|| {
        let latin1 = b"GET /api HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\nConnection: close\r\n\r\n";
        assert_eq!(raw_status(port, latin1), 401);
        let token = format!("GET /api HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}", rsa().sign());
        let mut bad_token = token.into_bytes();
        bad_token.extend_from_slice(b"\xe9\r\nConnection: close\r\n\r\n");
        assert_eq!(raw_status(port, &bad_token), 401);
    });
    let r = stack.get("/api", Some(&rsa().sign()));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_healthy(&stack);
}

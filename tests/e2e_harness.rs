//! Proves the end-to-end harness (tests/support) against Envoy's own jwt_authn filter, which needs
//! no `.wasm`: tokens minted here are accepted by an independent verifier (Envoy/BoringSSL) for
//! every algorithm, the servers behave as the tests will rely on, and both config templates pass
//! `envoy --mode validate`. Needs Envoy (ENVOY_BIN or .venv/bin/envoy); skips without it unless
//! CI=true.

mod support;

use serde_json::json;
use std::time::Duration;
use support::config::{self, EnvoyConfig, Filter, corp_token};
use support::envoy::{Envoy, TempDir, stub_module};
use support::http;
use support::mint::{self, TestKey};
use support::servers::{EchoUpstream, JwksServer};
use support::{Stack, require_envoy};

/// The keys in the test JWKS, by kid, and every algorithm each one signs.
const SIGNERS: &[(TestKey, &str, &[&str])] = &[
    (TestKey::RsaA, "rsa-a", &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]),
    (TestKey::P256A, "ec-a", &["ES256"]),
    (TestKey::P384, "ec384", &["ES384"]),
    (TestKey::Ed25519, "ed", &["EdDSA"]),
];

fn test_jwks() -> String {
    let keys: Vec<(TestKey, &str)> = SIGNERS.iter().map(|(k, kid, _)| (*k, *kid)).collect();
    mint::jwks(&keys)
}

#[test]
fn native_jwt_authn_accepts_every_minted_algorithm_and_refuses_bad_tokens() {
    let Some(stack) = Stack::start(Filter::JwtAuthn, config::corp_policy(), &test_jwks(), 2) else {
        return;
    };

    for (key, kid, algs) in SIGNERS {
        for alg in *algs {
            let token = corp_token(alg, *key, kid);
            let r = stack.get("/hello?x=1", Some(&token.sign()));
            assert_eq!(r.status, 200, "{alg}: {}", r.body);
            let echo = r.json();
            assert_eq!(echo["path"], "/hello?x=1");
            let headers = &echo["headers"];
            assert!(headers.get("authorization").is_none(), "{alg}: token forwarded: {headers}");
            assert_eq!(headers["x-jwt-sub"], json!(["alice"]), "{alg}");
            // jwt_authn forwards the payload as base64url of the exact payload text.
            assert_eq!(
                headers["x-jwt-payload"],
                json!([mint::b64(token.payload_json().as_bytes())]),
                "{alg}"
            );
        }
    }

    // jwt_authn checks claims before the signature, and answers 403 for a wrong audience.
    let rsa = || corp_token("RS256", TestKey::RsaA, "rsa-a");
    let mallory = rsa().sub("mallory").payload_json();
    let refused = [
        ("expired", 401, rsa().exp_in(-120).sign()),
        ("tampered", 401, mint::tamper(&rsa().sign())),
        ("payload swapped", 401, mint::swap_payload(&rsa().sign(), &mallory)),
        ("wrong key for the kid", 401, corp_token("RS256", TestKey::RsaB, "rsa-a").sign()),
        ("wrong issuer", 401, rsa().iss("https://other.example").sign()),
        ("wrong audience", 403, rsa().aud("other.example").sign()),
        ("alg none", 401, mint::unsigned(r#"{"alg":"none"}"#, &rsa().payload_json())),
    ];
    for (what, status, token) in &refused {
        let r = stack.get("/hello", Some(token));
        assert_eq!(r.status, *status, "{what}: {}", r.body);
    }
    assert_eq!(stack.get("/hello", None).status, 401, "no token");
    assert_eq!(stack.upstream.hits(), SIGNERS.iter().map(|s| s.2.len()).sum::<usize>());

    assert!(stack.jwks.hits() >= 1);
    let fetch = &stack.jwks.requests()[0];
    assert_eq!((fetch.method.as_str(), fetch.path.as_str()), ("GET", "/jwks.json"));
    assert_eq!(fetch.header("host"), Some("idp"));
    let allowed = stack.envoy.stat("http.ingress_http.jwt_authn.allowed");
    assert_eq!(allowed, Some(stack.upstream.hits() as u64));
}

#[test]
fn both_templates_validate_and_broken_yaml_is_refused() {
    if require_envoy().is_none() {
        return;
    }
    let dir = TempDir::new("stub");
    let stub = dir.write("stub.wasm", "");
    std::fs::write(&stub, stub_module()).unwrap();
    let mut policy = config::corp_policy();
    // A wasm-only field, and text that needs YAML escaping, in the plugin configuration.
    policy["providers"]["corp"]["algorithms"] = json!(["RS256", "ES256"]);
    policy["providers"]["corp"]["issuer"] = json!("https://issuer.example/\"q\" 'a' #: {{X}} \\ é 😀");
    let cfg = EnvoyConfig::new(policy, 1, 2).wasm_path(&stub);

    Envoy::validate(&cfg.wasm()).unwrap_or_else(|e| panic!("wasm template: {e}"));
    Envoy::validate(&cfg.jwt_authn()).unwrap_or_else(|e| panic!("jwt_authn template: {e}"));
    let missing = cfg.clone().wasm_path(&dir.path().join("missing.wasm"));
    assert!(Envoy::validate(&missing.wasm()).is_err(), "validate loads the module");
    let broken = cfg.jwt_authn().replacen("static_resources:", "static_resources: [", 1);
    assert!(Envoy::validate(&broken).is_err());
    let unknown_field = cfg.jwt_authn().replace("\"cache_duration\"", "\"cache_durration\"");
    assert!(Envoy::validate(&unknown_field).is_err());
}

/// The wasm template really serves: with the stub module (which lets everything through) a
/// request reaches the echo upstream, and the V8 VM started.
#[test]
fn wasm_template_serves_with_the_stub_module() {
    if require_envoy().is_none() {
        return;
    }
    let dir = TempDir::new("stub");
    let stub = dir.write("stub.wasm", "");
    std::fs::write(&stub, stub_module()).unwrap();
    let upstream = EchoUpstream::new();
    let jwks = JwksServer::new(&test_jwks());
    let cfg = EnvoyConfig::new(config::corp_policy(), jwks.port(), upstream.port()).wasm_path(&stub);
    let envoy = Envoy::start(&cfg.wasm(), 2);
    let r = http::get(envoy.port(), "/through//the/./stub", Some("not-checked"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/through/the/stub", "normalize_path and merge_slashes");
    // One VM per worker and more on the main thread.
    assert!(envoy.stat("wasm.envoy.wasm.runtime.v8.active").is_some_and(|n| n >= 3), "{:?}", envoy.stats());
}

/// `yaml_quote` is how the plugin JSON enters the YAML: a direct response body quoted the same
/// way must come back byte for byte, whatever it holds.
#[test]
fn yaml_quoted_strings_reach_envoy_unchanged() {
    if require_envoy().is_none() {
        return;
    }
    let awkward = "{\"a\": \"q\\\"b\\\\\"}\n'single' \"double\" \\ \t#not a comment: {{PLUGIN_CONFIG_JSON}} \
                   &anchor *alias !tag %x @ ` | > - ? [ ] , é 日本 😀 \u{1} \u{7f} \u{85} \u{2028} \u{feff} \r\nend";
    let yaml = format!(
        r#"static_resources:
  listeners:
  - address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          http_filters: [{{ name: envoy.filters.http.router, typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }} }}]
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{{ match: {{ prefix: "/" }}, direct_response: {{ status: 200, body: {{ inline_string: {} }} }} }}]
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
"#,
        config::yaml_quote(awkward)
    );
    let envoy = Envoy::start(&yaml, 1);
    assert_eq!(http::get(envoy.port(), "/", None).body, awkward);
}

#[test]
fn template_fill_is_single_pass_and_flow_yaml_is_json_shaped() {
    let filled = config::fill("a: {{A}}\nb: {{B}}", &[("A", "{{B}}".into()), ("B", "2".into())]);
    assert_eq!(filled, "a: {{B}}\nb: 2");
    let flow = config::yaml_flow(&json!({"k": ["v", 1, true, null, {"n": 1.5}]}));
    assert_eq!(flow, r#"{"k": ["v", 1, true, null, {"n": 1.5}]}"#);
    assert_eq!(config::yaml_quote("é\"\\\n😀"), r#""\u00E9\"\\\u000A\U0001F600""#);
    let native =
        config::native_jwt_authn(&json!({"providers": {"p": {"issuer": "i", "algorithms": ["RS256"]}}}));
    assert_eq!(native["providers"]["p"], json!({"issuer": "i"}));
}

#[test]
#[should_panic(expected = "no value for template placeholder {{MISSING}}")]
fn template_placeholder_without_value_is_a_loud_error() {
    config::fill("x: {{MISSING}}", &[]);
}

#[test]
fn jwks_of_fixtures_has_minimal_public_members() {
    let rsa = TestKey::RsaA.jwk("k", Some("RS256"));
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(
        (rsa["kid"].as_str(), rsa["alg"].as_str(), rsa["e"].as_str()),
        (Some("k"), Some("RS256"), Some("AQAB"))
    );
    let n = rsa["n"].as_str().unwrap();
    assert_eq!(n.len(), 342, "2048-bit n without padding or a leading zero octet");
    assert!(rsa.get("d").is_none());
    for (key, crv, len) in [(TestKey::P256A, "P-256", 43), (TestKey::P384, "P-384", 64)] {
        let jwk = key.jwk("e", None);
        assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("EC"), Some(crv)));
        assert_eq!((jwk["x"].as_str().unwrap().len(), jwk["y"].as_str().unwrap().len()), (len, len));
        assert!(jwk.get("alg").is_none());
    }
    let ed = TestKey::Ed25519.jwk("d", None);
    assert_eq!(
        (ed["kty"].as_str(), ed["crv"].as_str(), ed["x"].as_str().unwrap().len()),
        (Some("OKP"), Some("Ed25519"), 43)
    );
    let jwks: serde_json::Value =
        serde_json::from_str(&mint::jwks(&[(TestKey::RsaA, "a"), (TestKey::P256B, "b")])).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}

#[test]
fn signing_follows_the_algorithm_and_refuses_the_wrong_key_kind() {
    let sig_len = |alg: &str, key: TestKey| {
        let token = mint::sign(r#"{"alg":"x"}"#, "{}", &key, alg);
        let sig = token.rsplit('.').next().unwrap();
        (sig.len() * 6) / 8
    };
    assert_eq!(sig_len("RS256", TestKey::RsaA), 256);
    assert_eq!(sig_len("PS512", TestKey::Rsa3072), 384);
    assert_eq!(sig_len("ES256", TestKey::P256A), 64);
    assert_eq!(sig_len("ES384", TestKey::P384), 96);
    assert_eq!(sig_len("EdDSA", TestKey::Ed25519), 64);
    assert!(mint::try_sign("{}", "{}", &TestKey::P256A, "RS256").is_err());
    assert!(mint::try_sign("{}", "{}", &TestKey::RsaA, "HS256").is_err());
    // The header and payload texts are signed exactly as given, duplicates and all.
    let token = mint::sign(r#"{"alg":"EdDSA","alg":"none"}"#, "{ }", &TestKey::Ed25519, "EdDSA");
    assert!(token.starts_with(&format!(
        "{}.{}.",
        mint::b64(br#"{"alg":"EdDSA","alg":"none"}"#),
        mint::b64(b"{ }")
    )));
    assert_ne!(mint::tamper(&token), token);
    assert_eq!(mint::tamper(&token).len(), token.len());
    assert_eq!(mint::unsigned("{}", "{}"), "e30.e30.");
}

#[test]
fn jwks_server_answers_as_told_and_restarts_on_its_port() {
    let mut jwks = JwksServer::new(r#"{"keys":[]}"#);
    let port = jwks.port();
    let r = http::get(port, "/anything", None);
    assert_eq!(
        (r.status, r.body.as_str(), r.header("content-type")),
        (200, r#"{"keys":[]}"#, Some("application/json"))
    );

    jwks.set_body("{}");
    jwks.set_status(503);
    jwks.set_header("Cache-Control", "max-age=5");
    let r = http::get(port, "/jwks.json", None);
    assert_eq!((r.status, r.body.as_str(), r.header("cache-control")), (503, "{}", Some("max-age=5")));
    jwks.set_header("cache-control", "");
    assert_eq!(http::get(port, "/", None).header("cache-control"), None);

    jwks.set_close(true);
    assert!(http::request(port, "GET", "/", &[]).is_err(), "closed without an answer");
    jwks.set_close(false);
    jwks.set_delay(Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert_eq!(http::get(port, "/", None).status, 503);
    assert!(started.elapsed() >= Duration::from_millis(200));
    jwks.set_delay(Duration::ZERO);

    jwks.stop();
    assert!(http::request(port, "GET", "/", &[]).is_err(), "refused while stopped");
    jwks.start();
    assert_eq!(jwks.port(), port);
    assert_eq!(http::get(port, "/", None).status, 503);
    assert_eq!(jwks.hits(), 6);
    assert_eq!(jwks.requests().len(), 6);
}

#[test]
fn jwks_server_can_hang_and_come_up_late() {
    let mut late = JwksServer::reserve();
    assert!(!late.is_running());
    assert!(http::request(late.port(), "GET", "/", &[]).is_err());
    late.start();
    assert_eq!(http::get(late.port(), "/", None).body, r#"{"keys":[]}"#);

    late.set_hang(true);
    let port = late.port();
    let client = std::thread::spawn(move || http::request(port, "GET", "/", &[]));
    assert!(support::wait_until(Duration::from_secs(5), || late.hits() == 2));
    late.stop(); // closes the hanging connection: the client sees the end of the stream
    assert!(client.join().unwrap().is_err());
}

#[test]
fn echo_upstream_reports_what_it_got() {
    let echo = EchoUpstream::new();
    let r = http::request(echo.port(), "GET", "/p?q=1", &[("X-Multi", "a"), ("x-multi", "b")]).unwrap();
    let body = r.json();
    assert_eq!((body["method"].as_str(), body["path"].as_str()), (Some("GET"), Some("/p?q=1")));
    assert_eq!(body["headers"]["x-multi"], json!(["a", "b"]));
    assert_eq!(body["headers"]["connection"], json!(["close"]));
    assert_eq!(echo.requests()[0].header("x-multi"), Some("a"));
}

#[test]
fn http_client_decodes_chunked_answers() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
    let r = http::parse_response(raw).unwrap();
    assert_eq!((r.status, r.body.as_str(), r.header("x-a")), (200, "Wikipedia", Some("1")));
    let r = http::parse_response(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 3\r\n\r\nno!").unwrap();
    assert_eq!((r.status, r.body.as_str(), r.header("X-A")), (401, "no!", None));
    assert!(http::parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    assert!(http::parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err());
}

/// The plugin JSON of `envoy/demo.yaml` (its `value: |` block).
fn demo_policy(demo_yaml: &str) -> serde_json::Value {
    let mut lines = demo_yaml.lines().skip_while(|l| !l.trim_end().ends_with("value: |"));
    let marker = lines.next().expect("a `value: |` block in demo.yaml");
    let indent = " ".repeat(marker.len() - marker.trim_start().len() + 2);
    let block: Vec<&str> = lines.take_while(|l| l.starts_with(&indent) || l.trim().is_empty()).collect();
    serde_json::from_str(&block.join("\n")).expect("demo plugin config is JSON")
}

/// The demo (envoy/demo.yaml, demo-jwks.json, `mint` defaults) works as its comments say, with
/// its policy run through native jwt_authn, and demo.yaml validates with a module in place.
#[test]
fn demo_config_validates_and_its_policy_behaves_as_documented() {
    let demo_yaml = config::template("demo.yaml");
    let committed_jwks = config::template("demo-jwks.json");
    assert_eq!(
        committed_jwks.trim(),
        mint::demo_jwks().unwrap(),
        "regenerate: cargo run --example mint -- jwks"
    );
    if require_envoy().is_none() {
        return;
    }
    let dir = TempDir::new("demo");
    let stub = dir.write("stub.wasm", "");
    std::fs::write(&stub, stub_module()).unwrap();
    let with_stub =
        demo_yaml.replace("target/wasm32-wasip1/release/jwt_authn_wasm.wasm", &stub.to_string_lossy());
    assert_ne!(with_stub, demo_yaml);
    Envoy::validate(&with_stub).unwrap_or_else(|e| panic!("demo.yaml: {e}"));

    let mut policy = demo_policy(&demo_yaml);
    policy["providers"]["demo"]["remote_jwks"]["http_uri"]["cluster"] = json!("idp");
    let Some(stack) = Stack::start(Filter::JwtAuthn, policy, &committed_jwks, 1) else {
        return;
    };
    // What `make token` prints: the mint example's defaults.
    let token = corp_token("RS256", TestKey::RsaA, "demo-rsa").sign();
    let cases = [
        ("/healthz", None, 200),
        ("/public", None, 200),
        ("/public", Some(mint::tamper(&token)), 401),
        ("/api", None, 401),
        ("/api", Some(token.clone()), 200),
        ("/public/../api", None, 401),
    ];
    for (path, bearer, status) in cases {
        assert_eq!(stack.get(path, bearer.as_deref()).status, status, "{path} {bearer:?}");
    }
    assert_eq!(stack.get("/api", Some(&token)).json()["headers"]["x-jwt-sub"], json!(["alice"]));
}

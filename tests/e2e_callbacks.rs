//! The module as `make build` ships it, without the callback exports the filter does not use
//! (`tools/wasm-exports`: no `proxy_on_done`, `proxy_on_log`, body or trailer callbacks), end to
//! end in an Envoy with one worker: requests are still served and refused, held until keys arrive
//! and then resumed or refused, and a held request whose client gave up is dropped (the filter
//! forgets it when the SDK drops its context, in `proxy_on_delete`). Request bodies and answers
//! pass by the filter untouched, as Envoy skips the callbacks a module does not export.

mod support;

use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;
use support::config::{self, EnvoyConfig, Filter};
use support::http;
use support::mint::TestKey;
use support::servers::JwksServer;
use support::{Stack, require_wasm, wait_until};

/// Callbacks the SDK exports and the shipped module must not: Envoy would enter the VM for them
/// on every request.
const UNUSED: [&str; 4] =
    ["proxy_on_done", "proxy_on_log", "proxy_on_response_body", "proxy_on_request_body"];

#[test]
fn the_module_without_unused_callbacks_serves_refuses_holds_and_resumes() {
    let Some(wasm) = require_wasm() else { return };
    let exports = wasm_exports::exports(&std::fs::read(&wasm).unwrap()).unwrap();
    let exported: Vec<&str> = UNUSED.into_iter().filter(|u| exports.iter().any(|e| e.name == *u)).collect();
    assert!(
        exported.is_empty(),
        "{} exports {exported:?}: run `make build`, which strips them",
        wasm.display()
    );
    let Some(mut stack) = Stack::start_on(Filter::Wasm, JwksServer::reserve(), 1, |idp, upstream| {
        EnvoyConfig::new(config::corp_policy(), idp, upstream)
    }) else {
        return;
    };
    stack.jwks.set_body(&config::corp_jwks());
    let port = stack.envoy.port();
    let valid = config::corp_token("RS256", TestKey::RsaA, "rsa-a").sign();
    let forged = config::corp_token("RS256", TestKey::RsaB, "rsa-a").sign();

    // 1. No keys yet: a POST with its body and a forged token wait inside Envoy, and so does a
    //    request whose client then gives up. A missing token needs no keys: refused at once.
    let send = |method: &'static str, bearer: &str, body: Option<&'static str>| {
        let auth = format!("Bearer {bearer}");
        thread::spawn(move || {
            http::request_with_body(
                port,
                method,
                "/held",
                &[("authorization", &auth)],
                body.map(str::as_bytes),
            )
        })
    };
    let held = send("POST", &valid, Some("a body"));
    let held_forged = send("GET", &forged, None);
    let mut quitter = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(quitter, "GET /quit HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {valid}\r\n\r\n")
        .unwrap();
    let active = || stack.envoy.stat("http.ingress_http.downstream_rq_active");
    assert!(wait_until(Duration::from_secs(5), || active() == Some(3)), "held: {:?}", active());
    drop(quitter);
    assert!(wait_until(Duration::from_secs(5), || active() == Some(2)), "gave up: {:?}", active());
    let missing = stack.get("/api", None);
    assert_eq!((missing.status, missing.body.as_str()), (401, "jwt_missing"));
    assert!(!held.is_finished() && !held_forged.is_finished(), "answered before the keys came");

    // 2. The keys come: the held POST goes on with its body and claim headers, the forged token
    //    is refused; the request whose client gave up never reaches the upstream.
    stack.jwks.start();
    let r = held.join().unwrap().unwrap();
    let echo = r.json();
    assert_eq!(
        (r.status, &echo["method"], &echo["body"]),
        (200, &json!("POST"), &json!("a body")),
        "{}",
        r.body
    );
    assert_eq!(echo["headers"]["x-jwt-sub"], json!(["alice"]));
    assert!(echo["headers"].get("authorization").is_none(), "the token is removed (forward: false)");
    let r = held_forged.join().unwrap().unwrap();
    assert_eq!((r.status, r.body.as_str()), (401, "jwt_bad_signature"));
    assert_eq!(stack.upstream.hits(), 1, "only the held POST went upstream");

    // 3. Keys at hand: served and refused at once; the upstream's answer comes back whole.
    let r = stack.get("/api", Some(&valid));
    assert_eq!((r.status, &r.json()["path"]), (200, &json!("/api")), "{}", r.body);
    let expired = config::corp_token("RS256", TestKey::RsaA, "rsa-a").exp_in(-120).sign();
    let r = stack.get("/api", Some(&expired));
    assert_eq!((r.status, r.body.as_str()), (401, "jwt_expired"));
    assert!(r.header("www-authenticate").is_some_and(|v| v.contains("jwt_expired")), "{:?}", r.headers);
    assert_eq!(stack.upstream.hits(), 2);
    stack.envoy.assert_no_wasm_failures();
}

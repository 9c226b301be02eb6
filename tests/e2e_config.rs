//! The filter end to end, refused configurations: a plugin configuration the filter cannot use
//! makes Envoy refuse the plugin (with a static listener, Envoy exits at start-up), and the log
//! names the offending field. Real Envoy, real module; each config in its own Envoy, all at once.

mod support;

use serde_json::{Value, json};
use std::thread;
use support::config::{self, EnvoyConfig};
use support::envoy::Envoy;
use support::servers::{EchoUpstream, JwksServer};
use support::{require_envoy, require_wasm};

/// A change to `corp_policy`, or a whole text instead of it.
enum Broken {
    Edit(fn(&mut Value)),
    Text(&'static str),
}

#[test]
fn bad_configurations_are_refused_by_envoy_and_the_log_names_the_field() {
    if require_envoy().is_none() || require_wasm().is_none() {
        return;
    }
    let cases: [(&str, Broken, &str); 4] = [
        (
            "unknown provider in a rule",
            Broken::Edit(|p| p["rules"][0]["requires"]["provider_name"] = json!("nobody")),
            "invalid configuration at `rules[0].requires.provider_name`: unknown provider `nobody`",
        ),
        (
            "bad duration",
            Broken::Edit(|p| p["providers"]["corp"]["remote_jwks"]["cache_duration"] = json!("10 minutes")),
            "invalid configuration at `providers.corp.remote_jwks.cache_duration`",
        ),
        (
            "misspelled field (a typo must not turn a check off)",
            Broken::Edit(|p| {
                let corp = p["providers"]["corp"].as_object_mut().unwrap();
                let issuer = corp.remove("issuer").unwrap();
                corp.insert("isuer".into(), issuer);
            }),
            "invalid configuration at `providers.corp.isuer`",
        ),
        ("bad JSON", Broken::Text(r#"{"providers": {"corp": "#), "invalid configuration: "),
    ];

    let jwks = JwksServer::new(r#"{"keys":[]}"#);
    let upstream = EchoUpstream::new();
    let yaml = |broken: &Broken| {
        let mut policy = config::corp_policy();
        if let Broken::Edit(edit) = broken {
            edit(&mut policy);
        }
        let cfg = EnvoyConfig::new(policy, jwks.port(), upstream.port());
        match broken {
            Broken::Text(text) => cfg.plugin_config_text(text).wasm(),
            Broken::Edit(_) => cfg.wasm(),
        }
    };

    // All at once: each start compiles the module (about 0.6 s of CPU) before it is refused.
    thread::scope(|scope| {
        let started: Vec<_> = cases
            .iter()
            .map(|(_, broken, _)| {
                let yaml = yaml(broken);
                scope.spawn(move || Envoy::try_start(&yaml, 2).map(|_| ()))
            })
            .collect();
        for (started, (what, _, line)) in started.into_iter().zip(&cases) {
            let Err(log) = started.join().unwrap() else { panic!("{what}: Envoy accepted it") };
            // The line names the field; it is the only reason the plugin failed to load.
            assert!(log.contains(line), "{what}: no {line:?} in:\n{log}");
            assert_eq!(log.matches("invalid configuration").count(), 1, "{what}:\n{log}");
            assert!(log.contains("Unable to create Wasm plugin jwt_authn_wasm"), "{what}:\n{log}");
            assert!(!log.contains("panicked"), "{what}:\n{log}");
        }
    });
}

/// Shared data is one namespace per `vm_id`: with an empty one (Istio's `WasmPlugin` sets none),
/// every wasm plugin in the process with an empty `vm_id` can read and write the filter's keys and
/// records. The filter says so once, and works; with a `vm_id` of its own it says nothing.
#[test]
fn an_empty_vm_id_is_warned_about_once() {
    if require_envoy().is_none() || require_wasm().is_none() {
        return;
    }
    let jwks = JwksServer::new(&config::corp_jwks());
    let upstream = EchoUpstream::new();
    let yaml = EnvoyConfig::new(config::corp_policy(), jwks.port(), upstream.port()).wasm();
    let warning = "vm_id is empty: every wasm plugin in this Envoy process";
    let empty = yaml.replace("vm_id: jwt_authn_wasm", "vm_id: \"\"");
    assert_ne!(empty, yaml, "the template names a vm_id");
    for (yaml, warned) in [(empty, 1), (yaml, 0)] {
        let envoy = Envoy::start(&yaml, 2);
        let token = config::corp_token("RS256", support::mint::TestKey::RsaA, "rsa-a").sign();
        assert_eq!(support::http::get(envoy.port(), "/", Some(&token)).status, 200);
        assert_eq!(support::http::get(envoy.port(), "/", None).status, 401);
        assert_eq!(envoy.log().matches(warning).count(), warned, "{}", envoy.log());
        envoy.assert_no_wasm_failures();
    }
}

//! Envoy configs for end-to-end tests: the project's templates in `envoy/`, filled with a policy
//! in jwt_authn's JSON form, so one policy runs through the wasm filter and through Envoy's native
//! jwt_authn alike.
#![allow(dead_code)]

use super::mint::{self, TestKey, Token};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The issuer and audience of `corp_policy`, for tokens that pass it.
pub const ISSUER: &str = "https://issuer.example";
pub const AUDIENCE: &str = "api.example";
/// The provider name in `corp_policy`.
pub const PROVIDER: &str = "corp";

/// Provider fields only the wasm filter knows; removed from the native jwt_authn config (whose
/// proto would refuse them).
pub const WASM_ONLY_PROVIDER_FIELDS: &[&str] = &["algorithms"];

/// A one-provider policy: issuer `ISSUER`, audience `AUDIENCE`, keys from the `idp` cluster,
/// payload forwarded in `x-jwt-payload`, `sub` in `x-jwt-sub`, every path requiring a token.
pub fn corp_policy() -> Value {
    json!({
        "providers": {
            PROVIDER: {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "remote_jwks": {
                    "http_uri": {"uri": "http://idp/jwks.json", "cluster": "idp", "timeout": "5s"},
                    "cache_duration": "600s"
                },
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
            }
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": PROVIDER}}]
    })
}

/// The key set most tests serve: the fixture keys `RsaA` as `rsa-a` and `P256A` as `ec-a`.
pub fn corp_jwks() -> String {
    mint::jwks(&[(TestKey::RsaA, "rsa-a"), (TestKey::P256A, "ec-a")])
}

/// A token `corp_policy` accepts for an hour on the real clock: `alg` by `key` under `kid`,
/// issuer `ISSUER`, audience `AUDIENCE`, subject `alice`.
pub fn corp_token(alg: &str, key: TestKey, kid: &str) -> Token<'static> {
    Token::new(alg, key).kid(kid).iss(ISSUER).aud(AUDIENCE).sub("alice").exp_in(3600)
}

/// Which filter authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// This project's `.wasm`, with the policy as its plugin configuration.
    Wasm,
    /// Envoy's own `envoy.filters.http.jwt_authn`, the reference behaviour.
    JwtAuthn,
}

/// One Envoy config: a policy, the ports of the JWKS server and the upstream, and a few knobs.
#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    policy: Value,
    idp_port: u16,
    upstream_port: u16,
    listen_port: u16,
    admin_port: u16,
    wasm_path: PathBuf,
    failure_policy: String,
    plugin_config_text: Option<String>,
    /// The `idp` cluster's TLS transport socket (`idp_tls`), plain HTTP when `None`.
    idp_tls: Option<Value>,
    template: &'static str,
    values: Vec<(&'static str, String)>,
}

impl EnvoyConfig {
    /// Listener and admin on OS-picked ports, the `.wasm` from `super::wasm_path()`, FAIL_CLOSED.
    pub fn new(policy: Value, idp_port: u16, upstream_port: u16) -> EnvoyConfig {
        EnvoyConfig {
            policy,
            idp_port,
            upstream_port,
            listen_port: 0,
            admin_port: 0,
            wasm_path: super::wasm_path(),
            failure_policy: "FAIL_CLOSED".into(),
            plugin_config_text: None,
            idp_tls: None,
            template: "e2e-wasm.yaml.tmpl",
            values: Vec::new(),
        }
    }

    pub fn listen_port(mut self, port: u16) -> Self {
        self.listen_port = port;
        self
    }

    pub fn admin_port(mut self, port: u16) -> Self {
        self.admin_port = port;
        self
    }

    pub fn wasm_path(mut self, path: &Path) -> Self {
        self.wasm_path = path.to_path_buf();
        self
    }

    /// `FAIL_CLOSED` (default), `FAIL_OPEN` or `FAIL_RELOAD` (wasm only).
    pub fn failure_policy(mut self, policy: &str) -> Self {
        self.failure_policy = policy.into();
        self
    }

    /// The wasm plugin's configuration as this exact text instead of the policy (for texts that
    /// are not JSON at all).
    pub fn plugin_config_text(mut self, text: &str) -> Self {
        self.plugin_config_text = Some(text.into());
        self
    }

    /// The wasm filter's config from another template in `envoy/` (default `e2e-wasm.yaml.tmpl`),
    /// with the same placeholders and `values` for its own (strings are YAML-quoted here).
    pub fn template(mut self, name: &'static str, values: &[(&'static str, &str)]) -> Self {
        self.template = name;
        self.values = values.iter().map(|(k, v)| (*k, yaml_quote(v))).collect();
        self
    }

    /// As `template`, with values that are YAML nodes (lists, maps) rather than strings.
    pub fn template_nodes(mut self, name: &'static str, values: &[(&'static str, Value)]) -> Self {
        self.template = name;
        self.values = values.iter().map(|(k, v)| (*k, yaml_flow(v))).collect();
        self
    }

    /// Reaches the `idp` cluster over TLS: SNI `host`, the server certificate verified against the
    /// CA in `ca_file` and required to name `host` (a DNS subject alternative name).
    pub fn idp_tls(mut self, host: &str, ca_file: &Path) -> Self {
        self.idp_tls = Some(json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": host,
                "common_tls_context": {"validation_context": {
                    "trusted_ca": {"filename": ca_file.to_string_lossy()},
                    "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": host}}]
                }}
            }
        }));
        self
    }

    /// The YAML for `filter`.
    pub fn yaml(&self, filter: Filter) -> String {
        match filter {
            Filter::Wasm => self.wasm(),
            Filter::JwtAuthn => self.jwt_authn(),
        }
    }

    /// `envoy/e2e-wasm.yaml.tmpl` (or the chosen template) with the policy as the plugin's JSON
    /// configuration.
    pub fn wasm(&self) -> String {
        let mut values = self.wasm_values();
        values.extend(self.values.iter().cloned());
        fill(&template(self.template), &values)
    }

    /// `envoy/e2e-ecds.yaml.tmpl`: the filter comes by ECDS from the file `ecds_path` (see
    /// `ecds_resource`); a second JWKS cluster `idp2` goes to `idp2_port`.
    pub fn ecds_bootstrap(&self, ecds_path: &Path, idp2_port: u16) -> String {
        let mut values = self.common();
        values.push(("ECDS_PATH", yaml_quote(&ecds_path.to_string_lossy())));
        values.push(("IDP2_PORT", idp2_port.to_string()));
        fill(&template("e2e-ecds.yaml.tmpl"), &values)
    }

    /// `envoy/e2e-ecds-filter.yaml.tmpl`: the ECDS resource (a TypedExtensionConfig) with the
    /// filter, its module and this config's policy, for the file `ecds_bootstrap` watches.
    pub fn ecds_resource(&self) -> String {
        fill(&template("e2e-ecds-filter.yaml.tmpl"), &self.wasm_values())
    }

    /// `envoy/e2e-shared-vm.yaml.tmpl`: listeners `a` (this config's policy) and `b` (`policy_b`)
    /// sharing one VM, the module fetched from `http://127.0.0.1:module_port/` and checked
    /// against `sha256` (hex).
    pub fn shared_vm(&self, policy_b: &Value, module_port: u16, sha256: &str) -> String {
        let mut values = self.wasm_values();
        values.push(("PLUGIN_CONFIG_JSON_B", yaml_quote(&policy_b.to_string())));
        values.push(("MODULE_PORT", module_port.to_string()));
        values.push(("MODULE_SHA256", yaml_quote(sha256)));
        fill(&template("e2e-shared-vm.yaml.tmpl"), &values)
    }

    /// The values of the wasm templates: ports, module path, plugin configuration, failure policy.
    fn wasm_values(&self) -> Vec<(&'static str, String)> {
        let mut values = self.common();
        values.push(("WASM_PATH", yaml_quote(&self.wasm_path.to_string_lossy())));
        let plugin_config = self.plugin_config_text.clone().unwrap_or_else(|| self.policy.to_string());
        values.push(("PLUGIN_CONFIG_JSON", yaml_quote(&plugin_config)));
        values.push(("FAILURE_POLICY", self.failure_policy.clone()));
        values
    }

    /// `envoy/e2e-jwt-authn.yaml.tmpl` with the policy as a JwtAuthentication message.
    pub fn jwt_authn(&self) -> String {
        let mut values = self.common();
        values.push(("JWT_AUTHN_CONFIG", yaml_flow(&native_jwt_authn(&self.policy))));
        fill(&template("e2e-jwt-authn.yaml.tmpl"), &values)
    }

    fn common(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LISTEN_PORT", self.listen_port.to_string()),
            ("ADMIN_PORT", self.admin_port.to_string()),
            ("IDP_PORT", self.idp_port.to_string()),
            ("UPSTREAM_PORT", self.upstream_port.to_string()),
            ("IDP_TRANSPORT_SOCKET", yaml_flow(self.idp_tls.as_ref().unwrap_or(&Value::Null))),
        ]
    }
}

/// The policy as Envoy's `JwtAuthentication` message: `@type` added, wasm-only fields removed.
pub fn native_jwt_authn(policy: &Value) -> Value {
    let mut native = policy.clone();
    if let Some(providers) = native.get_mut("providers").and_then(Value::as_object_mut) {
        for provider in providers.values_mut().filter_map(Value::as_object_mut) {
            for field in WASM_ONLY_PROVIDER_FIELDS {
                provider.remove(*field);
            }
        }
    }
    if let Some(obj) = native.as_object_mut() {
        obj.insert(
            "@type".into(),
            json!("type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"),
        );
    }
    native
}

/// A template file from `envoy/` in the crate.
pub fn template(name: &str) -> String {
    let path = super::crate_root().join("envoy").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces each `{{NAME}}` in one pass, so a value that itself contains `{{...}}` stays as it
/// is. Panics on a placeholder without a value (a bug in the test, better loud than a config
/// Envoy half-understands).
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").unwrap_or_else(|| panic!("unclosed {{{{ in template"));
        let name = &after[..end];
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no value for template placeholder {{{{{name}}}}}"));
        out.push_str(&value.1);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A YAML double-quoted scalar holding exactly `s`: printable ASCII as is, `"` and `\` escaped,
/// everything else as `\uXXXX` or `\UXXXXXXXX`. Pure ASCII out, so no parser's idea of line
/// breaks, BOMs or non-printable characters can change the value.
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A JSON value as a single-line YAML flow node (strings through `yaml_quote`).
pub fn yaml_flow(v: &Value) -> String {
    match v {
        Value::String(s) => yaml_quote(s),
        Value::Array(items) => format!("[{}]", items.iter().map(yaml_flow).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let members: Vec<String> =
                map.iter().map(|(k, v)| format!("{}: {}", yaml_quote(k), yaml_flow(v))).collect();
            format!("{{{}}}", members.join(", "))
        }
        other => other.to_string(),
    }
}

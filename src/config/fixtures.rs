//! Test documents shared by the configuration's unit tests.

use super::{Config, ConfigError};
use serde_json::{Value, json};

/// Every field kind at least once: two providers, four rules.
pub(super) const EXAMPLE: &str = r#"{"providers":{"corp":{"issuer":"https://issuer.example","audiences":["api.example"],"algorithms":["RS256","ES256"],
  "remote_jwks":{"http_uri":{"uri":"http://idp.internal/jwks.json","cluster":"idp","timeout":"5s"},"cache_duration":"600s","async_fetch":{"failed_refetch_duration":"1s"}},
  "from_headers":[{"name":"authorization","value_prefix":"Bearer "}],"from_params":["access_token"],"from_cookies":["session"],
  "forward":false,"forward_payload_header":"x-jwt-payload","claim_to_headers":[{"header_name":"x-jwt-sub","claim_name":"sub"}],
  "clock_skew_seconds":60,"require_expiration":false,"max_lifetime":"86400s"},
  "local":{"issuer":"https://local.example","local_jwks":{"inline_string":"{\"keys\": []}"}}},
 "rules":[{"match":{"prefix":"/healthz"}},{"match":{"path":"/public"},"requires":{"allow_missing":{}}},
  {"match":{"safe_regex":{"regex":"/api/v[0-9]+/.*"}},"requires":{"requires_any":{"requirements":[{"provider_name":"corp"},{"provider_and_audiences":{"provider_name":"local","audiences":["a"]}}]}}},
  {"match":{"prefix":"/"},"requires":{"provider_name":"corp"}}],
 "max_token_bytes":8192,"startup_hold_timeout":"10s"}"#;

pub(super) fn parse(doc: &Value) -> Result<Config, ConfigError> {
    Config::parse(doc.to_string().as_bytes())
}

/// Two providers (`p` remote, `q` local) and one rule requiring `p`.
pub(super) fn base() -> Value {
    json!({
        "providers": {
            "p": {"issuer": "https://p.example",
                  "remote_jwks": {"http_uri": {"uri": "https://idp.example/jwks", "cluster": "idp", "timeout": "1s"}}},
            "q": {"local_jwks": {"inline_string": "{\"keys\":[]}"}}
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]
    })
}

/// `base()` with `key` set to `value` in the object at JSON pointer `parent`.
pub(super) fn with(parent: &str, key: &str, value: Value) -> Value {
    let mut doc = base();
    doc.pointer_mut(parent).unwrap().as_object_mut().unwrap().insert(key.into(), value);
    doc
}

/// JSON pointers into [`base`]: provider `p`, its `remote_jwks` and `http_uri`, the first rule.
pub(super) const P: &str = "/providers/p";
pub(super) const JWKS: &str = "/providers/p/remote_jwks";
pub(super) const URI: &str = "/providers/p/remote_jwks/http_uri";
pub(super) const RULE: &str = "/rules/0";

/// Each document is refused at `field` with a message containing `message`.
pub(super) fn assert_refused(cases: &[(Value, &str, &str)]) {
    for (doc, field, message) in cases {
        let e = parse(doc).expect_err(field);
        assert_eq!(e.field, *field, "{e}");
        assert!(e.message.contains(message), "{field}: {e}");
    }
}

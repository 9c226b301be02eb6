//! What goes upstream with a request: the header changes for verified tokens (tokens stripped
//! unless `forward`, the payload header, claim headers) and the headers clients must never set.

use crate::claims::Claims;
use crate::config::{ClaimFormat, ClaimToHeader, Provider};
use crate::extract::{self, Location};
use crate::identity::Entries;
use crate::verify::VerifiedJwt;
use serde_json::Value;
use std::rc::Rc;

/// Header changes for a request that goes on upstream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mutations {
    /// Removed first: configured output headers the client may have forged, and stripped tokens.
    pub remove: Vec<String>,
    /// Then set (replacing any value).
    pub set: Vec<(String, String)>,
    /// Filter-state entries (`identity`), written after the headers.
    pub filter_state: Entries,
}

impl Mutations {
    /// The value a header will have after the mutations so far, if they set it.
    fn current(&self, name: &str) -> Option<&str> {
        self.set.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Where the filter reports the outcome in `report` mode.
pub const STATUS_HEADER: &str = "x-jwt-authn-status";

/// Every header the filter writes upstream: always removed from the client's request first, so the
/// upstream can trust whatever value it sees (even when a claim is absent, or the route needs no
/// token).
pub fn output_headers(providers: &[Provider]) -> Vec<String> {
    let mut names: Vec<String> = vec![STATUS_HEADER.to_owned()];
    for p in providers {
        let claim_headers = p.claim_to_headers.iter().map(|c| &c.header_name);
        for name in p.forward_payload_header.iter().chain(claim_headers) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// Header changes for a provider whose tokens verified: strip the tokens unless `forward`, then
/// the payload and claim headers.
pub fn forward(
    provider: &Provider,
    tokens: &[(Location, Rc<VerifiedJwt>)],
    request_headers: &[(&str, &str)],
    m: &mut Mutations,
) {
    for (location, jwt) in tokens {
        if !provider.forward {
            strip(location, request_headers, m);
        }
        if let Some(name) = &provider.forward_payload_header {
            let value = payload_header_value(&jwt.payload_b64, provider.pad_forward_payload_header);
            m.set.push((name.clone(), value));
        }
        for c in &provider.claim_to_headers {
            if let Some(value) = claim_header_value(c, &jwt.claims) {
                m.set.push((c.header_name.clone(), value));
            }
        }
    }
}

fn strip(location: &Location, headers: &[(&str, &str)], m: &mut Mutations) {
    let original = |name: &str| {
        let values: Vec<&str> = headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| *v).collect();
        values.join("; ")
    };
    match location {
        Location::Header(name) => m.remove.push(name.clone()),
        Location::Param(name) => {
            let path = m.current(":path").map_or_else(|| original(":path"), str::to_owned);
            m.set.push((":path".to_owned(), extract::strip_param(&path, name)));
        }
        Location::Cookie(name) => {
            let cookies = m.current("cookie").map_or_else(|| original("cookie"), str::to_owned);
            m.remove.push("cookie".to_owned());
            m.set.retain(|(n, _)| n != "cookie");
            if let Some(rest) = extract::strip_cookie(&cookies, name) {
                m.set.push(("cookie".to_owned(), rest));
            }
        }
    }
}

fn payload_header_value(payload_b64: &str, pad: bool) -> String {
    let mut value = payload_b64.to_owned();
    if pad {
        while !value.len().is_multiple_of(4) {
            value.push('=');
        }
    }
    value
}

/// A claim as a header value (see [`ClaimFormat`]); `None` when the claim is absent or a text
/// value would carry control characters.
pub fn claim_header_value(c: &ClaimToHeader, claims: &Claims) -> Option<String> {
    claim_text(&c.claim_name, c.format, claims)
}

/// A claim (dotted path) as text in `format`, as for a header (also for filter state).
pub fn claim_text(claim_name: &str, format: ClaimFormat, claims: &Claims) -> Option<String> {
    let value = claims.get_path(claim_name)?;
    let text = match (format, value) {
        (ClaimFormat::Json, v) => v.to_string(),
        (ClaimFormat::Text, Value::Array(items)) if items.iter().all(is_scalar) => {
            items.iter().map(scalar_text).collect::<Vec<_>>().join(",")
        }
        (ClaimFormat::Text, v) if is_scalar(v) => scalar_text(v),
        (ClaimFormat::Text, v) => v.to_string(),
    };
    (!text.chars().any(char::is_control)).then_some(text)
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(claim: &str, format: ClaimFormat, claims: Value) -> Option<String> {
        let c = ClaimToHeader { header_name: "x".into(), claim_name: claim.into(), format };
        claim_header_value(&c, &Claims::parse(claims.to_string().as_bytes()).unwrap())
    }

    #[test]
    fn claim_values_as_text_and_json() {
        let claims = json!({"sub": "alice", "n": 7, "b": true, "f": 1.5, "realm": {"roles": ["a", "b", 3]},
            "mixed": ["a", {"x": 1}], "obj": {"k": "v"}, "bad": "a\nb", "u": "é"});
        let text = |c| header(c, ClaimFormat::Text, claims.clone());
        assert_eq!(text("sub").as_deref(), Some("alice"));
        assert_eq!(text("n").as_deref(), Some("7"));
        assert_eq!(text("b").as_deref(), Some("true"));
        assert_eq!(text("f").as_deref(), Some("1.5"));
        assert_eq!(text("realm.roles").as_deref(), Some("a,b,3"));
        assert_eq!(text("mixed").as_deref(), Some(r#"["a",{"x":1}]"#));
        assert_eq!(text("obj").as_deref(), Some(r#"{"k":"v"}"#));
        assert_eq!(text("u").as_deref(), Some("é"));
        assert_eq!(text("bad"), None, "control characters never reach a header");
        assert_eq!(text("absent"), None);
        let json = |c| header(c, ClaimFormat::Json, claims.clone());
        assert_eq!(json("sub").as_deref(), Some(r#""alice""#));
        assert_eq!(json("realm.roles").as_deref(), Some(r#"["a","b",3]"#));
        assert_eq!(json("bad").as_deref(), Some(r#""a\nb""#), "escaped in JSON");
    }

    #[test]
    fn padding_the_payload() {
        assert_eq!(payload_header_value("abc", false), "abc");
        assert_eq!(payload_header_value("abc", true), "abc=");
        assert_eq!(payload_header_value("abcd", true), "abcd");
        assert_eq!(payload_header_value("ab", true), "ab==");
    }

    #[test]
    fn stripping_tokens_from_every_location() {
        let headers = [
            (":path", "/p?access_token=t1&x=1&t2=y"),
            ("cookie", "a=1; session=tok"),
            ("cookie", "other=2; s2=tok2"),
            ("authorization", "Bearer t"),
        ];
        let mut m = Mutations::default();
        for location in [
            Location::Header("authorization".into()),
            Location::Param("access_token".into()),
            Location::Param("t2".into()),
            Location::Cookie("session".into()),
            Location::Cookie("s2".into()),
        ] {
            strip(&location, &headers, &mut m);
        }
        assert!(m.remove.contains(&"authorization".to_owned()) && m.remove.contains(&"cookie".to_owned()));
        assert_eq!(m.current(":path"), Some("/p?x=1"));
        assert_eq!(m.current("cookie"), Some("a=1; other=2"));
        assert_eq!(m.set.iter().filter(|(n, _)| n == "cookie").count(), 1);
    }
}

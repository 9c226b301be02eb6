//! Who made a request, for access logs and later filters: Envoy filter state entries.
//!
//! Envoy does not let a wasm module write dynamic metadata (envoy#15148), so jwt_authn's
//! `payload_in_metadata`, `header_in_metadata` and `failed_status_in_metadata` write filter
//! state instead: the shell calls `set_property([NAME], value)`, which Envoy stores as
//! `wasm.NAME` (a string), readable as `%FILTER_STATE(wasm.NAME:PLAIN)%` in an access log and by
//! an RBAC `filter_state` matcher. The extension `claim_to_filter_state` puts single claims in
//! entries of their own, for such matchers.
//!
//! Soundness: the payload, header and claim entries are computed only from tokens that verified
//! and satisfied the request's requirement (the providers of `Verdict::Allow`); a request whose
//! token did not verify gets none of them, and filter state belongs to one request, so an entry
//! an RBAC filter sees was written for this request's own verified token.

use crate::claim_text::claim_text;
use crate::config::FilterStateOutputs;
use crate::token;
use crate::verify::VerifiedJwt;
use serde_json::json;

/// Filter-state entries to write, by name, in order; a later value for a name replaces the
/// earlier (as a later `set_property` would), so each name costs one host call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries(pub Vec<(String, String)>);

impl Entries {
    fn put(&mut self, name: &str, value: String) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries of a token that verified and met the requirement.
    pub fn verified(&mut self, outputs: &FilterStateOutputs, jwt: &VerifiedJwt) {
        if let Some(name) = &outputs.payload {
            self.put_json(name, &jwt.payload_b64);
        }
        if let Some(name) = &outputs.header {
            self.put_json(name, &jwt.header_b64);
        }
        for c in &outputs.claims {
            if let Some(value) = claim_text(&c.claim_name, c.format, &jwt.claims) {
                self.put(&c.name, value);
            }
        }
    }

    /// A segment that verified is strict base64url of UTF-8 JSON: it always decodes.
    fn put_json(&mut self, name: &str, segment: &str) {
        if let Some(json) = token::b64url_decode(segment).and_then(|b| String::from_utf8(b).ok()) {
            self.put(name, json);
        }
    }

    /// A token refused with `reason`, answered (or, allowed anyway, it would have been) with
    /// `status`.
    pub fn failed(&mut self, outputs: &FilterStateOutputs, status: u32, reason: &str) {
        if let Some(name) = &outputs.failed_status {
            self.put(name, json!({"code": status, "message": reason}).to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Claims;
    use crate::config::{ClaimFormat, ClaimToFilterState};
    use crate::token::Header;

    fn jwt(payload: &str) -> VerifiedJwt {
        let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
        VerifiedJwt {
            header: Header { alg: crate::alg::Algorithm::RS256, kid: Some("k".into()) },
            claims: Claims::parse(payload.as_bytes()).unwrap(),
            payload_b64: b64(payload),
            header_b64: b64(r#"{"alg":"RS256","kid":"k","typ":"JWT"}"#),
        }
    }

    fn outputs() -> FilterStateOutputs {
        let claim = |claim_name: &str, name: &str| ClaimToFilterState {
            claim_name: claim_name.into(),
            name: name.into(),
            format: ClaimFormat::Text,
        };
        FilterStateOutputs {
            payload: Some("jwt_payload".into()),
            header: Some("jwt_header".into()),
            failed_status: Some("jwt_failure".into()),
            claims: vec![
                claim("sub", "jwt_sub"),
                claim("realm.roles", "jwt_roles"),
                claim("absent", "jwt_x"),
            ],
        }
    }

    #[test]
    fn a_verified_token_writes_payload_header_and_claims() {
        let payload = r#"{"sub":"alice", "realm":{"roles":["a","b"]}}"#;
        let mut entries = Entries::default();
        entries.verified(&outputs(), &jwt(payload));
        let expected = [
            ("jwt_payload", payload),
            ("jwt_header", r#"{"alg":"RS256","kid":"k","typ":"JWT"}"#),
            ("jwt_sub", "alice"),
            ("jwt_roles", "a,b"),
        ];
        let expected: Vec<(String, String)> =
            expected.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        assert_eq!(entries.0, expected, "an absent claim writes nothing; the failure entry is untouched");
    }

    #[test]
    fn a_later_token_replaces_an_entry_and_nothing_is_configured_by_default() {
        let mut entries = Entries::default();
        entries.verified(&outputs(), &jwt(r#"{"sub":"alice"}"#));
        entries.verified(&outputs(), &jwt(r#"{"sub":"bob"}"#));
        let sub: Vec<_> = entries.0.iter().filter(|(n, _)| n == "jwt_sub").collect();
        assert_eq!(sub, [&("jwt_sub".to_string(), "bob".to_string())]);
        let mut none = Entries::default();
        none.verified(&FilterStateOutputs::default(), &jwt(r#"{"sub":"alice"}"#));
        none.failed(&FilterStateOutputs::default(), 401, "jwt_expired");
        assert!(none.is_empty());
    }

    #[test]
    fn a_failure_is_code_and_message() {
        let mut entries = Entries::default();
        entries.failed(&outputs(), 401, "jwt_expired");
        assert_eq!(
            entries.0,
            [("jwt_failure".to_string(), r#"{"code":401,"message":"jwt_expired"}"#.to_string())]
        );
    }
}

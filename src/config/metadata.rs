//! `JwtProvider`'s metadata fields, written as Envoy filter state (see `identity`): Envoy does not
//! let a wasm module write dynamic metadata, so `payload_in_metadata`, `header_in_metadata` and
//! `failed_status_in_metadata` name filter-state entries (`wasm.<name>`) instead, and the extension
//! `claim_to_filter_state` puts single claims in entries of their own. `normalize_payload_in_metadata`
//! is accepted with a warning: the payload entry is its JSON as received.

use super::output::ClaimFormat;
use super::output::parse_claim_format;
use super::walk::Decision::Warn;
use super::walk::{Obj, Unused, non_empty};
use super::{Result, error};

/// A provider's filter-state outputs; every name is what `set_property` takes (Envoy adds `wasm.`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterStateOutputs {
    /// jwt_authn `payload_in_metadata`: the verified payload, its JSON as received.
    pub payload: Option<String>,
    /// jwt_authn `header_in_metadata`: the verified token's header, its JSON as received.
    pub header: Option<String>,
    /// jwt_authn `failed_status_in_metadata`: `{"code": <HTTP status>, "message": "<reason>"}`
    /// for a token this provider refused.
    pub failed_status: Option<String>,
    /// Extension `claim_to_filter_state`.
    pub claims: Vec<ClaimToFilterState>,
}

/// `claim_to_filter_state` entry: a claim (dotted path, as `claim_to_headers`) as text in entry
/// `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToFilterState {
    pub claim_name: String,
    pub name: String,
    pub format: ClaimFormat,
}

/// Read with the provider's own table (`providers`).
pub(super) const METADATA_UNUSED: &Unused = &[(
    "normalize_payload_in_metadata",
    Warn("`payload_in_metadata` holds the payload's JSON as received (space-delimited claims stay strings)"),
)];

/// The provider's filter-state outputs.
pub(super) fn parse_metadata(o: &mut Obj) -> Result<FilterStateOutputs> {
    let name = |o: &mut Obj, key: &'static str| -> Result<Option<String>> {
        o.non_empty_str(key)?.map(|n| filter_state_name(n, &o.at(key))).transpose()
    };
    let payload = name(o, "payload_in_metadata")?;
    let header = name(o, "header_in_metadata")?;
    let failed_status = name(o, "failed_status_in_metadata")?;
    let claims = o
        .list("claim_to_filter_state")?
        .into_iter()
        .map(|(path, value)| {
            let mut c = Obj::new(value, path)?;
            let claim_path = c.at("claim_name");
            let claim_name = non_empty(c.str("claim_name")?.unwrap_or(""), &claim_path)?.to_owned();
            let name = filter_state_name(c.str("name")?.unwrap_or(""), &c.at("name"))?;
            let format = parse_claim_format(&mut c)?;
            c.finish_all_known()?;
            Ok(ClaimToFilterState { claim_name, name, format })
        })
        .collect::<Result<_>>()?;
    Ok(FilterStateOutputs { payload, header, failed_status, claims })
}

/// A filter-state name (Envoy stores it as `wasm.<name>`): letters, digits, `_`, `-` and `.`,
/// so that it reads the same in an access-log format and an RBAC matcher.
fn filter_state_name(name: &str, path: &str) -> Result<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || !name.chars().all(allowed) {
        return Err(error(path, "expected a name of letters, digits, `_`, `-` and `.`"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{P, assert_refused, parse, with};
    use crate::config::{ClaimFormat, ClaimToFilterState, FilterStateOutputs};
    use serde_json::json;

    #[test]
    fn metadata_fields_name_filter_state_entries() {
        let mut doc = with(P, "payload_in_metadata", json!("jwt_payload"));
        doc["providers"]["p"]["header_in_metadata"] = json!("jwt.header-1");
        doc["providers"]["p"]["failed_status_in_metadata"] = json!(""); // proto3 unset
        doc["providers"]["p"]["claim_to_filter_state"] = json!([{"claim_name": "realm.roles", "name": "roles", "format": "json"}, {"claim_name": "sub", "name": "sub"}]);
        let config = parse(&doc).unwrap();
        let claim = |claim_name: &str, name: &str, format| ClaimToFilterState {
            claim_name: claim_name.into(),
            name: name.into(),
            format,
        };
        assert_eq!(
            config.providers[0].identity,
            FilterStateOutputs {
                payload: Some("jwt_payload".into()),
                header: Some("jwt.header-1".into()),
                failed_status: None,
                claims: vec![
                    claim("realm.roles", "roles", ClaimFormat::Json),
                    claim("sub", "sub", ClaimFormat::Text)
                ],
            }
        );
        assert!(config.warnings.iter().all(|w| !w.contains("metadata")), "{:?}", config.warnings);
        assert_eq!(
            parse(&with(P, "jwt_cache_config", json!({}))).unwrap().providers[0].identity,
            FilterStateOutputs::default()
        );
    }

    #[test]
    fn normalize_payload_in_metadata_is_a_warning() {
        let set = json!({"space_delimited_claims": ["scope"]});
        let warnings = parse(&with(P, "normalize_payload_in_metadata", set)).unwrap().warnings;
        let expected = "`providers.p.normalize_payload_in_metadata` is ignored: `payload_in_metadata` holds the \
                        payload's JSON as received (space-delimited claims stay strings)";
        assert!(warnings.iter().any(|w| w == expected), "{warnings:?}");
    }

    #[test]
    fn metadata_errors_name_the_field() {
        let claims = |v| with(P, "claim_to_filter_state", v);
        #[rustfmt::skip]
        assert_refused(&[
            (with(P, "payload_in_metadata", json!("jwt payload")), "providers.p.payload_in_metadata", "a name of letters"),
            (with(P, "header_in_metadata", json!(7)), "providers.p.header_in_metadata", "string"),
            (claims(json!([{"claim_name": "sub"}])), "providers.p.claim_to_filter_state[0].name", "a name of letters"),
            (claims(json!([{"name": "sub"}])), "providers.p.claim_to_filter_state[0].claim_name", "empty"),
            (claims(json!([{"claim_name": "sub", "name": "s", "header_name": "x"}])), "providers.p.claim_to_filter_state[0].header_name", "unknown field"),
            (claims(json!([{"claim_name": "sub", "name": "s", "format": "xml"}])), "providers.p.claim_to_filter_state[0].format", "\"text\" or \"json\""),
        ]);
    }
}

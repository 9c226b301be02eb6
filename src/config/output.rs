//! What a provider writes upstream after a token verifies: `forward_payload_header` (with
//! `pad_forward_payload_header`, a plain flag read with the provider) and `claim_to_headers`.

use super::walk::{Obj, header_name, non_empty};
use super::{Provider, Result, error};

/// `claim_to_headers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    /// Lower-case.
    pub header_name: String,
    /// Dotted path for nested claims, as jwt_authn (`claim.nested.key`); a top-level claim whose
    /// name contains dots (`https://example.com/roles`) is found first.
    pub claim_name: String,
    /// Extension: how the value is written.
    pub format: ClaimFormat,
}

/// How a claim becomes a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClaimFormat {
    /// Strings as they are, numbers and booleans as JSON text, arrays of those comma-joined,
    /// objects as JSON.
    #[default]
    Text,
    /// Always the claim's JSON text.
    Json,
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

/// `forward_payload_header`, lower-cased; unset when empty (proto3).
pub(super) fn parse_forward_payload_header(o: &mut Obj) -> Result<Option<String>> {
    match o.non_empty_str("forward_payload_header")? {
        Some(h) => Some(header_name(h, &o.at("forward_payload_header"))).transpose(),
        None => Ok(None),
    }
}

pub(super) fn parse_claim_to_headers(o: &mut Obj) -> Result<Vec<ClaimToHeader>> {
    o.list("claim_to_headers")?
        .into_iter()
        .map(|(path, value)| {
            let mut c = Obj::new(value, path)?;
            let header_name = header_name(c.str("header_name")?.unwrap_or(""), &c.at("header_name"))?;
            let claim_path = c.at("claim_name");
            let claim_name = non_empty(c.str("claim_name")?.unwrap_or(""), &claim_path)?.to_owned();
            let format = parse_claim_format(&mut c)?;
            c.finish_all_known()?;
            Ok(ClaimToHeader { header_name, claim_name, format })
        })
        .collect()
}

/// The extension `format` of a claim written as text (`claim_to_headers`, `claim_to_filter_state`).
pub(super) fn parse_claim_format(c: &mut Obj) -> Result<ClaimFormat> {
    match c.str("format")? {
        None | Some("text") => Ok(ClaimFormat::Text),
        Some("json") => Ok(ClaimFormat::Json),
        Some(other) => Err(error(c.at("format"), format!("expected \"text\" or \"json\", not {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{P, assert_refused, with};
    use serde_json::json;

    #[test]
    fn output_errors_name_the_field() {
        #[rustfmt::skip]
        assert_refused(&[
            (with(P, "forward_payload_header", json!("x jwt")), "providers.p.forward_payload_header", "header name"),
            (with(P, "claim_to_headers", json!([{"header_name": "x-sub"}])), "providers.p.claim_to_headers[0].claim_name", "empty"),
        ]);
    }
}

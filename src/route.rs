//! Per-route requirements, as jwt_authn's `PerRouteConfig`: a route carries
//! `metadata.filter_metadata.jwt_authn_wasm` with `{"disabled": true}` (no authentication there)
//! or `{"requirement_name": "R"}` (the requirement `requirement_map["R"]`), and then that takes
//! the place of `rules` for its requests.
//!
//! The shell reads that struct with one `get_property` ([`METADATA_PROPERTY`]); Envoy 1.40 hands a
//! struct over as a proxy-wasm pair map (the header-map layout: count, lengths, NUL-terminated
//! keys and values) whose values are CEL-serialized: a string as its bytes, a boolean as one byte
//! (1 for true), a number as 8 bytes of a little-endian double. A route without the struct gives
//! nothing. Types are not marked, so `disabled` is the one byte 1 (a string "\u{1}" would pass
//! too; any other value is refused) and `requirement_name` any non-empty UTF-8 value, looked up
//! exactly in `requirement_map` (a number there names no requirement: refused).
//!
//! Which route: Envoy matches the route before any filter runs, and the property reports that
//! route for the whole of this filter's callback, even after this filter changed request headers
//! (checked in Envoy 1.40: neither a header change nor the `clear_route_cache` foreign function
//! makes it re-read). But every request-header change by a wasm filter makes the router match
//! again, on the final headers. So the route read is the one for the request as it arrived:
//! - a client-sent header that this filter removes (its output headers) may have chosen it, and
//!   the request would then be routed elsewhere without it: such requests are refused
//!   (`AuthnError::OutputHeaderSent`) whenever routes choose requirements;
//! - the other changes (tokens stripped, claim headers set) only follow a requirement that was met;
//!   a route matched on them is chosen after authentication, as with jwt_authn's
//!   `clear_route_cache: true`, and its own metadata is not checked again (see README).

use crate::headermap;

/// The property path of this filter's route metadata, its parts NUL-separated as `get_property`
/// takes them.
pub const METADATA_PROPERTY: &[u8] = b"xds\0route_metadata\0filter_metadata\0jwt_authn_wasm";

/// What the matched route says about authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RouteChoice {
    /// No metadata for this filter (or routes are not read): `rules` decide.
    #[default]
    Rules,
    /// `{"disabled": true}`: no token is needed.
    Disabled,
    /// `{"requirement_name": "R"}`.
    Requirement(String),
    /// Metadata this filter cannot follow: the request is refused.
    Invalid(String),
}

/// The route's choice from the property's value (`None`: the route has no such metadata).
pub fn parse(value: Option<&[u8]>) -> RouteChoice {
    let Some(bytes) = value.filter(|b| !b.is_empty()) else { return RouteChoice::Rules };
    let Some(pairs) = pairs(bytes) else {
        return RouteChoice::Invalid("the metadata is not a struct".into());
    };
    let unknown: Vec<_> =
        pairs.iter().filter(|(k, _)| !matches!(*k, "disabled" | "requirement_name")).collect();
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.iter().map(|(k, _)| format!("`{k}`")).collect();
        return RouteChoice::Invalid(format!(
            "unknown field {} (expected `disabled` or `requirement_name`)",
            names.join(", ")
        ));
    }
    match pairs.as_slice() {
        [("disabled", [1])] => RouteChoice::Disabled,
        [("disabled", _)] => RouteChoice::Invalid("`disabled` must be true".into()),
        [(_, name)] => match std::str::from_utf8(name) {
            Ok(name) if !name.is_empty() => RouteChoice::Requirement(name.to_owned()),
            _ => RouteChoice::Invalid("`requirement_name` must be a non-empty string".into()),
        },
        [] => RouteChoice::Invalid("set `disabled` or `requirement_name`".into()),
        _ => RouteChoice::Invalid("set only one of `disabled` and `requirement_name`".into()),
    }
}

/// The pairs of a proxy-wasm pair map (see `headermap`), `None` unless the bytes are exactly
/// that with UTF-8 keys.
fn pairs(bytes: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let mut raw = headermap::raw_pairs(bytes);
    let pairs = raw.by_ref().map(|(k, v)| Some((std::str::from_utf8(k).ok()?, v))).collect::<Option<Vec<_>>>()?;
    raw.whole().then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout Envoy produces.
    fn map(pairs: &[(&str, &[u8])]) -> Vec<u8> {
        headermap::serialize(pairs)
    }

    fn invalid(value: &[u8]) -> bool {
        matches!(parse(Some(value)), RouteChoice::Invalid(_))
    }

    #[test]
    fn what_envoy_1_40_sends() {
        // Bytes captured from Envoy 1.40 for `{disabled: true}` and `{requirement_name: "R", n: 5}`.
        let disabled = b"\x01\0\0\0\x08\0\0\0\x01\0\0\0disabled\0\x01\0";
        assert_eq!(parse(Some(disabled)), RouteChoice::Disabled);
        let two = map(&[("n", &5f64.to_le_bytes()), ("requirement_name", b"R")]);
        let unknown =
            RouteChoice::Invalid("unknown field `n` (expected `disabled` or `requirement_name`)".into());
        assert_eq!(parse(Some(&two)), unknown, "refused, as jwt_authn's proto validation would");
        assert_eq!(parse(Some(&map(&[("requirement_name", b"R")]))), RouteChoice::Requirement("R".into()));
        assert_eq!(parse(None), RouteChoice::Rules);
        assert_eq!(parse(Some(b"")), RouteChoice::Rules);
    }

    #[test]
    fn anything_else_is_invalid() {
        assert!(invalid(&map(&[("disabled", &[0])])), "disabled: false");
        assert!(invalid(&map(&[("disabled", b"yes")])));
        assert!(invalid(&map(&[("requirement_name", b"")])));
        assert!(invalid(&map(&[("requirement_name", &[0xff])])));
        assert!(invalid(&map(&[("disabled", &[1]), ("requirement_name", b"R")])));
        assert!(invalid(&map(&[])));
        assert!(invalid(&map(&[("Disabled", &[1])])));
        let good = map(&[("disabled", &[1])]);
        for cut in 1..good.len() {
            assert!(invalid(&good[..cut]), "truncated at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(invalid(&long), "trailing bytes");
        assert!(invalid(&[0xff, 0xff, 0xff, 0xff]), "a huge count allocates nothing");
    }
}

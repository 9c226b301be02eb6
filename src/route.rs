//! Per-route requirements, as jwt_authn's `PerRouteConfig`: a route carries
//! `metadata.filter_metadata.jwt_authn_wasm` with `{"disabled": true}` (no authentication there)
//! or `{"requirement_name": "R"}` (the requirement `requirement_map["R"]`), and then that takes
//! the place of `rules` for its requests.
//!
//! The shell reads that struct with one `get_property` ([`METADATA_PROPERTY`]) and hands over
//! what the host answered ([`RouteMetadata`]). Only "not found" means the route has no such
//! metadata; every other answer the filter cannot follow refuses the request (fail closed):
//! - Envoy 1.40 hands a struct over as a proxy-wasm pair map (the header-map layout: count,
//!   lengths, NUL-terminated keys and values) whose values are CEL-serialized, untyped: a string
//!   as its bytes, a boolean as one byte (1 for true), a number as the 8 bytes of a
//!   little-endian double, a nested struct or a list as a pair map of its own.
//! - A `null` anywhere in the struct cannot be serialized: the host answers with a status
//!   (SerializationFailure), not a value. So does any other failure of the host.
//!
//! So `disabled` must be the one byte 1 (the boolean true; only a string "\u{1}" reads the same),
//! and `requirement_name` printable UTF-8 (a number, boolean, struct or list arrives as bytes
//! with control characters or NULs), looked up exactly in `requirement_map`. Anything else, an
//! empty struct, an unknown member, both members, is a configuration error. (`typed_filter_metadata`
//! is not read: routes carry this filter's settings in `filter_metadata`.)
//!
//! Which route: Envoy matches the route before any filter runs, and the property reports that
//! route for the whole of this filter's callback, even after this filter changed request headers
//! (checked in Envoy 1.40: neither a header change nor the `clear_route_cache` foreign function
//! makes it re-read). But every request-header change by a wasm filter (ABI 0.2.1) makes the
//! router match again, on the final headers. So the route read is the one for the request as it
//! arrived, and the route the request ends on is matched on the headers as the filter left them:
//! - a client-sent header that this filter removes (its output headers) may have chosen the first
//!   route. Deployments whose routes match on those headers remove them before routing (Envoy's
//!   early header mutation) or set `output_headers_from_client: reject` (see README, Per-route
//!   requirements);
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

/// What the host answered when asked for [`METADATA_PROPERTY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMetadata<'a> {
    /// "Not found": the route has no `jwt_authn_wasm` metadata (or there is no route).
    Absent,
    /// The serialized struct.
    Value(&'a [u8]),
    /// Any other host status (the proxy-wasm `WasmResult` number).
    Unreadable(u32),
}

/// The route's choice from what the host answered.
pub fn parse(metadata: RouteMetadata<'_>) -> RouteChoice {
    let bytes = match metadata {
        RouteMetadata::Absent => return RouteChoice::Rules,
        RouteMetadata::Value(bytes) => bytes,
        RouteMetadata::Unreadable(status) => {
            return RouteChoice::Invalid(format!(
                "Envoy could not hand the metadata over ({}); a `null` value does that",
                host_status(status)
            ));
        }
    };
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
        [("disabled", _)] => RouteChoice::Invalid("`disabled` must be the boolean true".into()),
        [(_, name)] => match std::str::from_utf8(name) {
            Ok(name) if !name.is_empty() && !name.chars().any(char::is_control) => {
                RouteChoice::Requirement(name.to_owned())
            }
            _ => RouteChoice::Invalid("`requirement_name` must be a non-empty string".into()),
        },
        [] => RouteChoice::Invalid("set `disabled` or `requirement_name`".into()),
        _ => RouteChoice::Invalid("set only one of `disabled` and `requirement_name`".into()),
    }
}

/// A proxy-wasm host status as a log can name it.
fn host_status(status: u32) -> String {
    let name = match status {
        2 => "bad argument",
        3 => "serialization failure",
        4 => "parse failure",
        6 => "invalid memory access",
        7 => "empty",
        10 => "internal failure",
        12 => "unimplemented",
        _ => "unknown",
    };
    format!("status {status}: {name}")
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
    use RouteMetadata::{Absent, Unreadable, Value};

    /// The layout Envoy produces.
    fn map(pairs: &[(&str, &[u8])]) -> Vec<u8> {
        headermap::serialize(pairs)
    }

    fn invalid(value: &[u8]) -> bool {
        matches!(parse(Value(value)), RouteChoice::Invalid(_))
    }

    #[test]
    fn what_envoy_1_40_sends() {
        // Bytes captured from Envoy 1.40 for `{disabled: true}` and `{requirement_name: "R", n: 5}`.
        let disabled = b"\x01\0\0\0\x08\0\0\0\x01\0\0\0disabled\0\x01\0";
        assert_eq!(parse(Value(disabled)), RouteChoice::Disabled);
        let two = map(&[("n", &5f64.to_le_bytes()), ("requirement_name", b"R")]);
        let unknown =
            RouteChoice::Invalid("unknown field `n` (expected `disabled` or `requirement_name`)".into());
        assert_eq!(parse(Value(&two)), unknown, "refused, as jwt_authn's proto validation would");
        assert_eq!(parse(Value(&map(&[("requirement_name", b"R")]))), RouteChoice::Requirement("R".into()));
        assert_eq!(parse(Absent), RouteChoice::Rules, "only \"not found\" means no metadata");
    }

    #[test]
    fn an_answer_that_is_not_a_value_fails_closed() {
        for status in [2, 3, 7, 10, 99] {
            assert!(matches!(parse(Unreadable(status)), RouteChoice::Invalid(_)), "status {status}");
        }
        let RouteChoice::Invalid(why) = parse(Unreadable(3)) else { panic!() };
        assert!(why.contains("status 3: serialization failure"), "{why}");
        assert!(invalid(b""), "an empty answer is not a struct (`{{}}` is a 4-byte map)");
    }

    #[test]
    fn members_of_another_type_are_invalid() {
        // How Envoy serializes each kind of `google.protobuf.Value` as a member.
        let list = map(&[("admin", b"")]);
        let object = map(&[("name", b"admin")]);
        for (what, value) in [
            ("a number", &5f64.to_le_bytes()[..]),
            ("true", &[1][..]),
            ("false", &[0][..]),
            ("a list", &list[..]),
            ("a struct", &object[..]),
            ("an empty list or struct", &map(&[] as &[(&str, &[u8])])[..]),
        ] {
            assert!(invalid(&map(&[("requirement_name", value)])), "requirement_name: {what}");
        }
        for (what, value) in [
            ("a number", &1f64.to_le_bytes()[..]),
            ("a string", &b"true"[..]),
            ("a list", &list[..]),
            ("a struct", &object[..]),
        ] {
            assert!(invalid(&map(&[("disabled", value)])), "disabled: {what}");
        }
    }

    #[test]
    fn anything_else_is_invalid() {
        assert!(invalid(&map(&[("disabled", &[0])])), "disabled: false");
        assert!(invalid(&map(&[("disabled", b"yes")])));
        assert!(invalid(&map(&[("requirement_name", b"")])));
        assert!(invalid(&map(&[("requirement_name", &[0xff])])));
        assert!(invalid(&map(&[("requirement_name", b"a\tb")])));
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

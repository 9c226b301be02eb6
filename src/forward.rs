//! What goes upstream with a request: the header changes for verified tokens (tokens stripped
//! unless `forward`, the payload header, claim headers) and the headers clients must never set.

use crate::claim_text::claim_text;
use crate::config::Provider;
use crate::extract::{self, Location};
use crate::identity::Entries;
use crate::verify::VerifiedJwt;
use std::rc::Rc;

/// Header changes for a request that goes on upstream. Header names are the configuration's
/// (`'c`) or fixed ones, never copied per request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mutations<'c> {
    /// Removed first: configured output headers the client may have forged, and stripped tokens.
    pub remove: Vec<&'c str>,
    /// Then set (replacing any value).
    pub set: Vec<(&'c str, String)>,
    /// Filter-state entries (`identity`), written after the headers.
    pub filter_state: Entries,
    /// Headers added to the upstream's answer (`DPoP-Nonce` when a new nonce is offered).
    pub response: Vec<(&'static str, String)>,
}

impl Mutations<'_> {
    /// The value a header will have after the mutations so far, if they set it.
    fn current(&self, name: &str) -> Option<&str> {
        self.set.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// Header changes for a provider whose tokens verified: strip the tokens unless `forward`, then
/// the payload and claim headers.
pub fn forward<'c>(
    provider: &'c Provider,
    tokens: &[(Location<'c>, Rc<VerifiedJwt>)],
    request_headers: &[(&str, &str)],
    m: &mut Mutations<'c>,
) {
    for (location, jwt) in tokens {
        if !provider.forward {
            strip(location, request_headers, m);
        }
        if let Some(name) = &provider.forward_payload_header {
            let value = payload_header_value(&jwt.payload_b64, provider.pad_forward_payload_header);
            m.set.push((name, value));
        }
        for c in &provider.claim_to_headers {
            if let Some(value) = claim_text(&c.claim_name, c.format, &jwt.claims) {
                m.set.push((&c.header_name, value));
            }
        }
    }
}

fn strip<'c>(location: &Location<'c>, headers: &[(&str, &str)], m: &mut Mutations<'c>) {
    let original = |name: &str| {
        let values: Vec<&str> = headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| *v).collect();
        values.join("; ")
    };
    match location {
        Location::Header(name) => m.remove.push(name),
        // The proof goes with the token it was made for: without it, nobody upstream can use it.
        Location::Dpop => m.remove.extend(["authorization", "dpop"]),
        Location::Param(name) => {
            let path = m.current(":path").map_or_else(|| original(":path"), str::to_owned);
            m.set.push((":path", extract::strip_param(&path, name)));
        }
        Location::Cookie(name) => {
            let cookies = m.current("cookie").map_or_else(|| original("cookie"), str::to_owned);
            m.remove.push("cookie");
            m.set.retain(|(n, _)| *n != "cookie");
            if let Some(rest) = extract::strip_cookie(&cookies, name) {
                m.set.push(("cookie", rest));
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

#[cfg(test)]
mod tests {
    use super::*;

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
            Location::Header("authorization"),
            Location::Param("access_token"),
            Location::Param("t2"),
            Location::Cookie("session"),
            Location::Cookie("s2"),
            Location::Dpop,
        ] {
            strip(&location, &headers, &mut m);
        }
        assert!(m.remove.contains(&"authorization") && m.remove.contains(&"cookie"));
        assert!(m.remove.contains(&"dpop"));
        assert_eq!(m.current(":path"), Some("/p?x=1"));
        assert_eq!(m.current("cookie"), Some("a=1; other=2"));
        assert_eq!(m.set.iter().filter(|(n, _)| *n == "cookie").count(), 1);
    }
}

//! Where a provider finds tokens: jwt_authn's `from_headers`, `from_params` and `from_cookies`,
//! with its defaults when none is set, and the `max_token_bytes` bound that goes with them.

use super::walk::{Obj, header_name, is_blank, is_tchar};
use super::{Result, error};

/// Where a provider looks for tokens. Without `from_headers`, `from_params` and `from_cookies`,
/// jwt_authn's defaults apply: `Authorization: Bearer <token>` and the `access_token` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLocations {
    pub headers: Vec<HeaderLocation>,
    pub params: Vec<String>,
    pub cookies: Vec<String>,
    /// Longer values are refused before they are decoded or copied.
    pub max_token_bytes: usize,
    /// Also `Authorization: DPoP <token>` (RFC 9449 §7.1): the provider's `dpop.mode` is on.
    pub dpop: bool,
}

/// `from_headers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLocation {
    /// Lower-case.
    pub name: String,
    /// As configured, e.g. `"Bearer "`; empty means the whole value is the token.
    pub value_prefix: String,
}

impl HeaderLocation {
    /// The scheme (`value_prefix` without surrounding blanks), and whether blanks must separate it
    /// from the token: always after a word such as `Bearer`, and after any prefix configured with a
    /// trailing space; a prefix such as `token=` may be followed by the token directly.
    pub fn scheme(&self) -> (&str, bool) {
        let scheme = self.value_prefix.trim_matches(is_blank);
        let trailing_blank = self.value_prefix.ends_with(is_blank);
        let ends_in_word = scheme.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        (scheme, trailing_blank || ends_in_word)
    }

    /// Whether both locations find the same token in the same request.
    pub fn same_location(&self, other: &HeaderLocation) -> bool {
        let ((a, a_space), (b, b_space)) = (self.scheme(), other.scheme());
        self.name == other.name && a.eq_ignore_ascii_case(b) && a_space == b_space
    }
}

/// `dpop`: the provider reads `Authorization: DPoP` itself, so no `from_headers` entry may
/// claim that scheme as a bearer location (one token would then be both kinds of credential).
pub(super) fn parse_locations(o: &mut Obj, max_token_bytes: usize, dpop: bool) -> Result<TokenLocations> {
    let mut headers = Vec::new();
    for (path, value) in o.list("from_headers")? {
        let mut h = Obj::new(value, path.clone())?;
        let name = header_name(h.str("name")?.unwrap_or(""), &h.at("name"))?;
        let value_prefix = h.str("value_prefix")?.unwrap_or("").to_owned();
        if !value_prefix.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(error(h.at("value_prefix"), "expected visible ASCII characters and spaces"));
        }
        h.finish_all_known()?;
        let location = HeaderLocation { name, value_prefix };
        if headers.iter().any(|l: &HeaderLocation| l.same_location(&location)) {
            return Err(error(path, "the same header location is listed twice"));
        }
        if dpop && location.same_location(&dpop_location()) {
            return Err(error(path, "`Authorization: DPoP` is read by the provider's `dpop` block"));
        }
        headers.push(location);
    }
    let params = unique(o.str_list("from_params")?, &o.at("from_params"))?;
    let cookies = unique(o.str_list("from_cookies")?, &o.at("from_cookies"))?;
    if let Some(bad) = cookies.iter().position(|c| !c.bytes().all(is_tchar)) {
        return Err(error(format!("{}[{bad}]", o.at("from_cookies")), "expected a cookie name"));
    }
    if headers.is_empty() && params.is_empty() && cookies.is_empty() {
        // jwt_authn's defaults (RFC 6750 §2.1 and §2.3).
        headers.push(HeaderLocation { name: "authorization".into(), value_prefix: "Bearer ".into() });
        let params = vec!["access_token".into()];
        return Ok(TokenLocations { headers, params, cookies, max_token_bytes, dpop });
    }
    Ok(TokenLocations { headers, params, cookies, max_token_bytes, dpop })
}

/// The header location of a DPoP credential (RFC 9449 §7.1).
fn dpop_location() -> HeaderLocation {
    HeaderLocation { name: "authorization".into(), value_prefix: "DPoP ".into() }
}

fn unique(items: Vec<String>, path: &str) -> Result<Vec<String>> {
    match items.iter().enumerate().find(|(i, item)| items.iter().take(*i).any(|x| x == *item)) {
        Some((i, _)) => Err(error(format!("{path}[{i}]"), "listed twice")),
        None => Ok(items),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{P, assert_refused, with};
    use super::*;
    use serde_json::json;

    #[test]
    fn location_errors_name_the_field() {
        #[rustfmt::skip]
        assert_refused(&[
            (with(P, "from_headers", json!([{"name": "x", "prefix": "B"}])), "providers.p.from_headers[0].prefix", "unknown field"),
            (with(P, "from_headers", json!([{"value_prefix": "B"}])), "providers.p.from_headers[0].name", "header name"),
            (with(P, "from_headers", json!([{"name": "a"}, {"name": "A"}])), "providers.p.from_headers[1]", "twice"),
            (with(P, "from_params", json!(["t", "t"])), "providers.p.from_params[1]", "twice"),
            (with(P, "from_cookies", json!(["a b"])), "providers.p.from_cookies[0]", "cookie name"),
        ]);
    }

    #[test]
    fn header_location_schemes() {
        let loc = |prefix: &str| HeaderLocation { name: "authorization".into(), value_prefix: prefix.into() };
        assert_eq!(loc("Bearer ").scheme(), ("Bearer", true));
        assert_eq!(loc("Bearer").scheme(), ("Bearer", true));
        assert_eq!(loc("token=").scheme(), ("token=", false));
        assert_eq!(loc("token= ").scheme(), ("token=", true));
        assert_eq!(loc("").scheme(), ("", false));
        assert!(loc("Bearer ").same_location(&loc("bearer")));
        assert!(!loc("Bearer ").same_location(&loc("JWT ")));
        assert!(!loc("token=").same_location(&loc("token= ")));
    }
}

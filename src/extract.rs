//! Finding a provider's tokens in a request, and removing them before it goes upstream. Pure.
//!
//! Stricter than jwt_authn's extractor, which finds `value_prefix` anywhere in a header value
//! (case-sensitively) and then skips to the first base64url character, and which silently takes the
//! first of repeated parameters and cookies. Here:
//! - a header value must be `<scheme> <token>` exactly: the scheme compared ASCII
//!   case-insensitively (RFC 9110 §11.1), then one or more spaces, then one token and nothing else;
//!   a value with the scheme and anything else is refused (`MalformedLocation`), a value with another
//!   scheme (`Basic ...`) holds no token for this location;
//! - a configured header, parameter or cookie present twice refuses the request
//!   (`RepeatedLocation`): two candidates are ambiguous, and the one not verified could be the one
//!   the upstream reads;
//! - a token is one or more base64url characters and dots (the JWS compact form's alphabet); the
//!   token decoder checks the structure;
//! - a value longer than `max_token_bytes` is refused before it is decoded or copied.
//!
//! A provider with DPoP on (`TokenLocations::dpop`) also reads `Authorization: DPoP <token>`
//! (RFC 9449 §7.1), by the same rules as a `Bearer` header. A request with a DPoP credential and
//! any other token for the provider is malformed (§7.2: `dpop_bearer_and_dpop`, answered 400).

use crate::config::{HeaderLocation, TokenLocations, is_blank, is_tchar};
use crate::error::{AuthnError, BindingError, JwtError};
use std::borrow::Cow;

/// Where a token was found, by configured name (borrowed from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location<'c> {
    Header(&'c str),
    Param(&'c str),
    Cookie(&'c str),
    /// `Authorization: DPoP <token>`, for a provider with DPoP on.
    Dpop,
}

/// A token candidate, not yet verified: borrowed from the request where it appears as is (a
/// header, a cookie, a parameter without percent-encoding), decoded otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken<'r, 'c> {
    pub token: Cow<'r, str>,
    pub location: Location<'c>,
}

/// Every token in the configured locations, headers first, then parameters, then cookies, each in
/// configuration order. Every one must verify (as jwt_authn: a good token must not vouch for a bad
/// one the upstream might read). `headers` as proxy-wasm gives them (a repeated header appears
/// twice); `path` is `:path` with its query.
pub fn extract<'r, 'c>(
    locations: &'c TokenLocations,
    headers: &'r [(impl AsRef<str>, impl AsRef<str>)],
    path: &'r str,
) -> Result<Vec<FoundToken<'r, 'c>>, AuthnError> {
    let max = locations.max_token_bytes;
    let mut found = Vec::new();
    let mut push = |token, location| found.push(FoundToken { token, location });
    if locations.dpop
        && let Some(token) = dpop_credential(headers, max)?
    {
        push(Cow::Borrowed(token), Location::Dpop);
    }
    for location in &locations.headers {
        if let Some(token) = from_header(location, headers, max)? {
            push(Cow::Borrowed(token), Location::Header(&location.name));
        }
    }
    // No parameter location, or no query: no parameter to look for.
    if let Some(query) = query_of(path).filter(|_| !locations.params.is_empty()) {
        for name in &locations.params {
            if let Some(token) = from_query(query, name, max)? {
                push(token, Location::Param(name));
            }
        }
    }
    for name in &locations.cookies {
        if let Some(token) = from_cookies(headers, name, max)? {
            push(Cow::Borrowed(token), Location::Cookie(name));
        }
    }
    if found.len() > 1 && found.first().is_some_and(|t| t.location == Location::Dpop) {
        return Err(AuthnError::Binding(BindingError::BothSchemes));
    }
    Ok(found)
}

/// Whether the request presents a DPoP credential (an `Authorization` header of the `DPoP`
/// scheme, well formed or not): a refusal is then challenged as DPoP.
pub fn has_dpop_credential(headers: &[(&str, &str)]) -> bool {
    headers.iter().any(|(name, value)| {
        let scheme = value.split([' ', '\t']).next().unwrap_or_default();
        name.eq_ignore_ascii_case("authorization") && scheme.eq_ignore_ascii_case("DPoP")
    })
}

/// The DPoP credential, if any. Beside it, another `Authorization` credential is a second one:
/// a `Bearer` one makes the request malformed (RFC 9449 §7.2), any other repeats the header
/// (refused, as for any token header). Credentials are looked for in every `Authorization` value
/// and in each comma-separated part of one (Envoy joins a repeated header into one value with
/// commas; a token never holds one).
fn dpop_credential(
    headers: &[(impl AsRef<str>, impl AsRef<str>)],
    max: usize,
) -> Result<Option<&str>, AuthnError> {
    let (mut dpop, mut others, mut bearer, mut empty) = (None, 0, false, false);
    let values = headers.iter().filter(|(n, _)| n.as_ref().eq_ignore_ascii_case("authorization"));
    let credentials = values.flat_map(|(_, v)| v.as_ref().split(',')).map(|c| c.trim_matches(is_blank));
    for credential in credentials {
        if credential.is_empty() {
            empty = true;
            continue;
        }
        match after_scheme(credential, "DPoP", true)? {
            Some(_) if dpop.is_some() => return Err(AuthnError::RepeatedLocation),
            Some(token) => dpop = Some(token),
            None => {
                others += 1;
                bearer |= after_scheme(credential, "Bearer", true).is_ok_and(|t| t.is_some());
            }
        }
    }
    let Some(token) = dpop else { return Ok(None) };
    match (bearer, others, empty) {
        (true, _, _) => Err(AuthnError::Binding(BindingError::BothSchemes)),
        (false, 0, false) => checked_token(token, max).map(Some),
        (false, 0, true) => Err(AuthnError::MalformedLocation),
        (false, _, _) => Err(AuthnError::RepeatedLocation),
    }
}

fn from_header<'r>(
    location: &HeaderLocation,
    headers: &'r [(impl AsRef<str>, impl AsRef<str>)],
    max: usize,
) -> Result<Option<&'r str>, AuthnError> {
    let mut values = headers
        .iter()
        .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case(&location.name))
        .map(|(_, v)| v.as_ref());
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(AuthnError::RepeatedLocation);
    }
    let (scheme, space_required) = location.scheme();
    after_scheme(value, scheme, space_required)?.map(|token| checked_token(token, max)).transpose()
}

/// The part of `value` after `scheme` (and the blanks that must follow it when `space_required`);
/// `None` when the value has another scheme.
fn after_scheme<'v>(
    value: &'v str,
    scheme: &str,
    space_required: bool,
) -> Result<Option<&'v str>, AuthnError> {
    if scheme.is_empty() {
        // No prefix configured: the whole value is the token.
        return Ok(Some(value));
    }
    let Some(rest) = value
        .get(..scheme.len())
        .filter(|head| head.eq_ignore_ascii_case(scheme))
        .and_then(|_| value.get(scheme.len()..))
    else {
        return Ok(None);
    };
    if !space_required {
        return Ok(Some(rest));
    }
    // `Bearerx` is another scheme; `Bearer`, `Bearer\tx` or `Bearer,x` are this one, malformed.
    if rest.bytes().next().is_some_and(is_tchar) {
        return Ok(None);
    }
    let token = rest.trim_start_matches(' ');
    if token.len() == rest.len() {
        return Err(AuthnError::MalformedLocation);
    }
    Ok(Some(token))
}

/// The query of `:path` (after the first `?`, before any `#`).
fn query_of(path: &str) -> Option<&str> {
    let before_fragment = path.split('#').next().unwrap_or(path);
    before_fragment.split_once('?').map(|(_, query)| query)
}

fn from_query<'r>(query: &'r str, name: &str, max: usize) -> Result<Option<Cow<'r, str>>, AuthnError> {
    let mut found = None;
    for pair in query.split('&') {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        if param_name_is(raw_name, name) && found.replace(raw_value).is_some() {
            return Err(AuthnError::RepeatedLocation);
        }
    }
    let Some(raw) = found else { return Ok(None) };
    // Percent-encoding at most triples a length: refuse before decoding.
    if raw.len() > max.saturating_mul(3) {
        return Err(AuthnError::Jwt(JwtError::TooLarge));
    }
    if !raw.contains(['%', '+']) {
        return checked_token(raw, max).map(|t| Some(Cow::Borrowed(t)));
    }
    let decoded = percent_decode(raw).ok_or(AuthnError::MalformedLocation)?;
    // Only JWS characters (ASCII) pass the check, so the conversion cannot fail.
    let decoded = String::from_utf8(decoded).map_err(|_| AuthnError::MalformedLocation)?;
    checked_token(&decoded, max)?;
    Ok(Some(Cow::Owned(decoded)))
}

/// Whether a raw (encoded) parameter name decodes to `name`; undecodable names never match.
fn param_name_is(raw: &str, name: &str) -> bool {
    if !raw.contains(['%', '+']) {
        return raw == name;
    }
    percent_decode(raw).is_some_and(|decoded| decoded == name.as_bytes())
}

/// `application/x-www-form-urlencoded` decoding, strict: `%` must start two hex digits.
fn percent_decode(raw: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'%' => {
                // Digit by digit: `u8::from_str_radix` would also take a sign ("%+a").
                let mut digit = || char::from(bytes.next()?).to_digit(16);
                let (high, low) = (digit()?, digit()?);
                u8::try_from(high * 16 + low).ok()?
            }
            b'+' => b' ',
            other => other,
        });
    }
    Some(out)
}

fn from_cookies<'r>(
    headers: &'r [(impl AsRef<str>, impl AsRef<str>)],
    name: &str,
    max: usize,
) -> Result<Option<&'r str>, AuthnError> {
    let mut found = None;
    let cookie_headers = headers.iter().filter(|(n, _)| n.as_ref().eq_ignore_ascii_case("cookie"));
    for (_, header) in cookie_headers {
        for pair in header.as_ref().split(';') {
            if let Some(value) = cookie_value(pair, name) {
                if found.replace(value).is_some() {
                    return Err(AuthnError::RepeatedLocation);
                }
            }
        }
    }
    found.map(|value| checked_token(unquote(value), max)).transpose()
}

/// The value of one `name=value` cookie pair (RFC 6265 §4.2.1), when its name is `name`.
fn cookie_value<'c>(pair: &'c str, name: &str) -> Option<&'c str> {
    let (n, value) = pair.split_once('=')?;
    (n.trim_matches(is_blank) == name).then(|| value.trim_matches(is_blank))
}

fn unquote(value: &str) -> &str {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)
}

/// The token, if it fits and has only JWS compact characters.
fn checked_token(token: &str, max: usize) -> Result<&str, AuthnError> {
    if token.len() > max {
        return Err(AuthnError::Jwt(JwtError::TooLarge));
    }
    if token.is_empty() || !is_jws_text(token.as_bytes()) {
        return Err(AuthnError::MalformedLocation);
    }
    Ok(token)
}

/// Whether every byte is a JWS compact character: base64url (`A-Z a-z 0-9 - _`) or `.`.
/// Eight bytes at a time (a token is some 600 of them, checked on every request): in each
/// ASCII byte `x` of a word, `x + (0x80 - lo)` has its high bit set when `x >= lo` and
/// `x + (0x7f - hi)` when `x > hi`; neither sum carries into the next byte (`x < 0x80`, both
/// addends at most 0x80), so each byte is judged on its own.
fn is_jws_text(bytes: &[u8]) -> bool {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let in_range = |w: u64, lo: u8, hi: u8| {
        (w.wrapping_add(LOW * u64::from(0x80 - lo)) & !w.wrapping_add(LOW * u64::from(0x7f - hi))) & HIGH
    };
    let word_ok = |w: u64| {
        // ASCII only; then letters (either case: `| 0x20` maps A-Z onto a-z and nothing else
        // into it), digits, `-` and `.` (adjacent), `_`.
        w & HIGH == 0
            && (in_range(w | (LOW * 0x20), b'a', b'z')
                | in_range(w, b'0', b'9')
                | in_range(w, b'-', b'.')
                | in_range(w, b'_', b'_'))
                == HIGH
    };
    let mut words = bytes.chunks_exact(8);
    let whole = words.by_ref().all(|c| c.try_into().is_ok_and(|c| word_ok(u64::from_le_bytes(c))));
    whole && words.remainder().iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `path` without any `name` query parameter (matched as [`extract`] matches it); the rest is kept
/// byte for byte, and the `?` goes when nothing is left of the query.
pub fn strip_param(path: &str, name: &str) -> String {
    let (before_fragment, fragment) = path.split_at(path.find('#').unwrap_or(path.len()));
    let Some((base, query)) = before_fragment.split_once('?') else { return path.to_owned() };
    let is_token = |pair: &&str| param_name_is(pair.split('=').next().unwrap_or(pair), name);
    if !query.split('&').any(|pair| is_token(&pair)) {
        return path.to_owned();
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !is_token(pair)).collect();
    let query = kept.join("&");
    let separator = if query.is_empty() { "" } else { "?" };
    format!("{base}{separator}{query}{fragment}")
}

/// One `cookie` header value without any `name` cookie; `None` when no cookie is left.
pub fn strip_cookie(cookie_header: &str, name: &str) -> Option<String> {
    let is_token = |pair: &&str| cookie_value(pair, name).is_some();
    if !cookie_header.split(';').any(|pair| is_token(&pair)) {
        return Some(cookie_header.to_owned());
    }
    let kept: Vec<&str> = cookie_header.split(';').filter(|pair| !is_token(pair)).collect();
    let rest = kept.join(";");
    let rest = rest.trim_start_matches(is_blank);
    (!rest.trim_matches(|c| c == ';' || is_blank(c)).is_empty()).then(|| rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";

    fn locations(headers: &[(&str, &str)], params: &[&str], cookies: &[&str]) -> TokenLocations {
        TokenLocations {
            headers: headers
                .iter()
                .map(|(n, p)| HeaderLocation { name: (*n).into(), value_prefix: (*p).into() })
                .collect(),
            params: params.iter().map(|p| (*p).into()).collect(),
            cookies: cookies.iter().map(|c| (*c).into()).collect(),
            max_token_bytes: 64,
            dpop: false,
        }
    }

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect()
    }

    /// Request headers and the tokens expected from them.
    type Case<'a> = (Vec<(&'a str, &'a str)>, Result<Vec<&'a str>, AuthnError>);

    fn tokens(result: Result<Vec<FoundToken>, AuthnError>) -> Result<Vec<String>, AuthnError> {
        result.map(|found| found.into_iter().map(|t| t.token.into_owned()).collect())
    }

    #[test]
    fn header_values() {
        use AuthnError::{MalformedLocation as Malformed, RepeatedLocation as Repeated};
        let bearer = locations(&[("authorization", "Bearer ")], &[], &[]);
        let bare = locations(&[("x-token", "")], &[], &[]);
        let eq = locations(&[("x-token", "token=")], &[], &[]);
        let too_long = format!("Bearer {}", "a".repeat(65));
        let full = format!("Bearer {JWT}");
        let cases: Vec<(&TokenLocations, Case)> = vec![
            (&bearer, (vec![("authorization", &full)], Ok(vec![JWT]))),
            (&bearer, (vec![("authorization", "bearer a.b.c")], Ok(vec!["a.b.c"]))),
            (&bearer, (vec![("authorization", "BEARER a.b.c")], Ok(vec!["a.b.c"]))),
            (&bearer, (vec![("authorization", "Bearer    a.b.c")], Ok(vec!["a.b.c"]))),
            (&bearer, (vec![("Authorization", "Bearer a.b.c")], Ok(vec!["a.b.c"]))),
            (&bearer, (vec![], Ok(vec![]))),
            (&bearer, (vec![("x-other", "Bearer a.b.c")], Ok(vec![]))),
            (&bearer, (vec![("authorization", "Basic dXNlcjpwdw==")], Ok(vec![]))),
            (&bearer, (vec![("authorization", "Bearerx a.b.c")], Ok(vec![]))),
            (&bearer, (vec![("authorization", "")], Ok(vec![]))),
            (&bearer, (vec![("authorization", "Bearer")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer ")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer\ta.b.c")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer a.b.c ")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer a b")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer a,b")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer a.b.c, Bearer d.e.f")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer a+b/c=")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer {\"payload\":1}")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer a.b.é")], Err(Malformed))),
            (&bearer, (vec![("authorization", "Bearer a"), ("authorization", "Bearer b")], Err(Repeated))),
            (&bearer, (vec![("authorization", "Basic x"), ("authorization", "Bearer b")], Err(Repeated))),
            (&bearer, (vec![("authorization", &too_long)], Err(AuthnError::Jwt(JwtError::TooLarge)))),
            (&bare, (vec![("x-token", "a.b.c")], Ok(vec!["a.b.c"]))),
            (&bare, (vec![("x-token", "Bearer a.b.c")], Err(Malformed))),
            (&bare, (vec![("x-token", "")], Err(Malformed))),
            (&eq, (vec![("x-token", "token=a.b.c")], Ok(vec!["a.b.c"]))),
            (&eq, (vec![("x-token", "TOKEN=a.b.c")], Ok(vec!["a.b.c"]))),
            (&eq, (vec![("x-token", "token= a.b.c")], Err(Malformed))),
            (&eq, (vec![("x-token", "other=a.b.c")], Ok(vec![]))),
        ];
        for (locs, (list, expected)) in cases {
            let expected = expected.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(tokens(extract(locs, &headers(&list), "/")), expected, "{list:?}");
        }
    }

    /// Tokens found, with where.
    type Found = Result<Vec<(String, Location<'static>)>, AuthnError>;
    type Header = (&'static str, &'static str);

    #[test]
    fn dpop_credentials() {
        use AuthnError::{MalformedLocation as Malformed, RepeatedLocation as Repeated};
        let both = Err(AuthnError::Binding(BindingError::BothSchemes));
        let dpop =
            TokenLocations { dpop: true, ..locations(&[("authorization", "Bearer ")], &["t"], &["s"]) };
        let dpop_only = |token: &str| Ok(vec![(token.to_owned(), Location::Dpop)]);
        #[rustfmt::skip]
        let cases: Vec<(Vec<Header>, &str, Found)> = vec![
            (vec![("authorization", "DPoP a.b.c")], "/", dpop_only("a.b.c")),
            (vec![("Authorization", "dpop a.b.c")], "/", dpop_only("a.b.c")),
            (vec![("authorization", "DPOP   a.b.c"), ("dpop", "x.y.z")], "/", dpop_only("a.b.c")),
            (vec![("authorization", "Bearer a.b.c")], "/", Ok(vec![("a.b.c".into(), Location::Header("authorization"))])),
            (vec![("authorization", "DPoPx a.b.c")], "/", Ok(vec![])),
            (vec![("authorization", "DPoP")], "/", Err(Malformed)),
            (vec![("authorization", "DPoP a b")], "/", Err(Malformed)),
            (vec![("authorization", "DPoP a.b.c,DPoP a.b.c")], "/", Err(Repeated)),
            (vec![("authorization", "DPoP a.b.c, Basic x")], "/", Err(Repeated)),
            (vec![("authorization", "DPoP a.b.c,")], "/", Err(Malformed)),
            (vec![("authorization", "DPoP a.b.c"), ("authorization", "DPoP a.b.c")], "/", Err(Repeated)),
            (vec![("authorization", "DPoP a.b.c"), ("authorization", "Basic dXNlcjpwdw==")], "/", Err(Repeated)),
            // RFC 9449 §7.2: a DPoP credential and a Bearer one, wherever the Bearer one is.
            (vec![("authorization", "Bearer d.e.f"), ("authorization", "DPoP a.b.c")], "/", both.clone()),
            // ... also joined into one value, as Envoy passes a repeated header on.
            (vec![("authorization", "DPoP a.b.c,Bearer d.e.f")], "/", both.clone()),
            (vec![("authorization", "Bearer d.e.f, DPoP a.b.c")], "/", both.clone()),
            (vec![("authorization", "DPoP a.b.c")], "/p?t=d.e.f", both.clone()),
            (vec![("authorization", "DPoP a.b.c"), ("cookie", "s=d.e.f")], "/", both),
        ];
        for (list, path, expected) in cases {
            let owned = headers(&list);
            let found = extract(&dpop, &owned, path);
            let found =
                found.map(|f| f.into_iter().map(|t| (t.token.into_owned(), t.location)).collect::<Vec<_>>());
            assert_eq!(found, expected, "{list:?} {path}");
        }
        // A provider without DPoP does not see the credential (as before this existed).
        let off = TokenLocations { dpop: false, ..dpop.clone() };
        assert_eq!(tokens(extract(&off, &headers(&[("authorization", "DPoP a.b.c")]), "/")), Ok(vec![]));
    }

    /// The word-at-a-time check agrees with the byte-at-a-time one on every byte value, in every
    /// position of a word and of the tail, for lengths around the word size.
    #[test]
    fn jws_text_check_is_exact() {
        let jws_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        for len in [1, 7, 8, 9, 16, 17, 23] {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    assert_eq!(is_jws_text(&text), jws_char(byte), "{byte:#04x} at {at} of {len}");
                }
            }
        }
        assert!(is_jws_text(b""), "the empty token is refused by its caller");
        let all: Vec<u8> = (0..=255u8).filter(|b| jws_char(*b)).collect();
        assert_eq!(all.len(), 65);
        assert!(is_jws_text(&all) && is_jws_text(&all[3..]), "every JWS character, at every offset");
    }

    #[test]
    fn header_location_names_the_header() {
        let locs = locations(&[("authorization", "Bearer ")], &[], &[]);
        let list = headers(&[("authorization", "Bearer a.b.c")]);
        let found = extract(&locs, &list, "/").unwrap();
        assert_eq!(
            found,
            [FoundToken { token: "a.b.c".into(), location: Location::Header("authorization") }]
        );
    }

    #[test]
    fn query_parameters() {
        use AuthnError::{MalformedLocation as Malformed, RepeatedLocation as Repeated};
        let locs = locations(&[], &["access_token"], &[]);
        let encoded = format!("/p?access_token={}", "%41".repeat(22));
        let long_encoded = format!("/p?access_token={}", "%41".repeat(65));
        let long = format!("/p?access_token={}", "A".repeat(65));
        let cases: Vec<(&str, Result<Vec<&str>, AuthnError>)> = vec![
            ("/p?access_token=a.b.c", Ok(vec!["a.b.c"])),
            ("/p?x=1&access_token=a.b.c&y=2", Ok(vec!["a.b.c"])),
            ("/p?access_token=a%2Eb%2ec", Ok(vec!["a.b.c"])),
            ("/p?access%5Ftoken=a.b.c", Ok(vec!["a.b.c"])),
            ("/p?access_token=a.b.c#frag", Ok(vec!["a.b.c"])),
            ("/p", Ok(vec![])),
            ("/p?", Ok(vec![])),
            ("/p?access_tokens=a.b.c&xaccess_token=d", Ok(vec![])),
            ("/p#?access_token=a.b.c", Ok(vec![])),
            ("/p?q=%zz&access_token=a.b.c", Ok(vec!["a.b.c"])),
            ("/p?access_token=a.b.c&access_token=a.b.c", Err(Repeated)),
            ("/p?access_token=a.b.c&access%5Ftoken=d", Err(Repeated)),
            ("/p?access_token=a.b%2", Err(Malformed)),
            ("/p?access_token=a.b%zz", Err(Malformed)),
            ("/p?access_token=a.b%+e", Err(Malformed)),
            ("/p?access_token=a+b", Err(Malformed)),
            ("/p?access_token=a%20b", Err(Malformed)),
            ("/p?access_token=", Err(Malformed)),
            ("/p?access_token", Err(Malformed)),
            (&encoded, Ok(vec!["AAAAAAAAAAAAAAAAAAAAAA"])),
            (&long_encoded, Err(AuthnError::Jwt(JwtError::TooLarge))),
            (&long, Err(AuthnError::Jwt(JwtError::TooLarge))),
        ];
        for (path, expected) in cases {
            let expected = expected.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(tokens(extract(&locs, &[] as &[(&str, &str)], path)), expected, "{path}");
        }
    }

    #[test]
    fn cookies() {
        use AuthnError::{MalformedLocation as Malformed, RepeatedLocation as Repeated};
        let locs = locations(&[], &[], &["session"]);
        let cases: Vec<Case> = vec![
            (vec![("cookie", "session=a.b.c")], Ok(vec!["a.b.c"])),
            (vec![("cookie", "a=1; session=a.b.c; b=2")], Ok(vec!["a.b.c"])),
            (vec![("cookie", "a=1;session=a.b.c")], Ok(vec!["a.b.c"])),
            (vec![("cookie", "session=\"a.b.c\"")], Ok(vec!["a.b.c"])),
            (vec![("cookie", "a=1"), ("cookie", "session=a.b.c")], Ok(vec!["a.b.c"])),
            (vec![("cookie", "sessions=a.b.c; Session=d")], Ok(vec![])),
            (vec![("x-cookie", "session=a.b.c")], Ok(vec![])),
            (vec![("cookie", "session=a.b.c; session=a.b.c")], Err(Repeated)),
            (vec![("cookie", "session=a"), ("cookie", "x=1; session=b")], Err(Repeated)),
            (vec![("cookie", "session=")], Err(Malformed)),
            (vec![("cookie", "session=a%2Eb")], Err(Malformed)),
        ];
        for (list, expected) in cases {
            let expected = expected.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(tokens(extract(&locs, &headers(&list), "/")), expected, "{list:?}");
        }
    }

    #[test]
    fn every_location_is_returned_in_order() {
        let locs = locations(&[("authorization", "Bearer "), ("x-jwt", "")], &["t"], &["s"]);
        let list = headers(&[("cookie", "s=c.c.c"), ("x-jwt", "b.b.b"), ("authorization", "Bearer a.a.a")]);
        let found = extract(&locs, &list, "/p?t=d.d.d").unwrap();
        assert_eq!(
            found.iter().map(|t| (&*t.token, &t.location)).collect::<Vec<_>>(),
            [
                ("a.a.a", &Location::Header("authorization")),
                ("b.b.b", &Location::Header("x-jwt")),
                ("d.d.d", &Location::Param("t")),
                ("c.c.c", &Location::Cookie("s")),
            ]
        );
        // The first refused location refuses the whole extraction.
        let list = headers(&[("x-jwt", "b.b.b"), ("authorization", "Bearer")]);
        assert_eq!(extract(&locs, &list, "/"), Err(AuthnError::MalformedLocation));
    }

    #[test]
    fn strip_param_keeps_the_rest_exactly() {
        for (path, expected) in [
            ("/p?access_token=a.b.c", "/p"),
            ("/p?a=1&access_token=x&b=%20+2", "/p?a=1&b=%20+2"),
            ("/p?access_token=x&a=1", "/p?a=1"),
            ("/p?a=1&access_token=x", "/p?a=1"),
            ("/p?access_token=x&access%5Ftoken=y&a", "/p?a"),
            ("/p?access_token", "/p"),
            ("/p?access_token=x#frag", "/p#frag"),
            ("/p?a=1&&access_token=x", "/p?a=1&"),
            ("/p?a=1&access_tokens=2", "/p?a=1&access_tokens=2"),
            ("/p?", "/p?"),
            ("/p", "/p"),
            ("/p#access_token=x", "/p#access_token=x"),
        ] {
            assert_eq!(strip_param(path, "access_token"), expected, "{path}");
        }
    }

    #[test]
    fn strip_cookie_keeps_the_rest() {
        for (header, expected) in [
            ("session=x", None),
            (" session=x ", None),
            ("session=x; session=y", None),
            ("a=1; session=x; b=2", Some("a=1; b=2")),
            ("session=x; a=1", Some("a=1")),
            ("a=1; session=x", Some("a=1")),
            ("a=1;session=x;b=2", Some("a=1;b=2")),
            ("a=1; sessions=x", Some("a=1; sessions=x")),
            ("a=1", Some("a=1")),
        ] {
            assert_eq!(strip_cookie(header, "session").as_deref(), expected, "{header}");
        }
    }
}

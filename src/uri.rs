//! Absolute `http`/`https` URIs compared the way RFC 9449 §4.3 asks a DPoP proof's `htu` to be:
//! without query and fragment, after RFC 3986's syntax-based (§6.2.2) and scheme-based (§6.2.3)
//! normalisation. Two URIs are the same resource here exactly when their [`HttpUri`]s are equal.
//!
//! Normalised: scheme and host to lower case; percent-encodings to upper-case hex, and those of
//! unreserved characters decoded (`%7E` is `~`, `%41` is `A`); dot segments removed from the path;
//! the scheme's default port dropped (and an empty port, `host:`); an empty path is `/`.
//! Refused (`None`): any other scheme, no host, user information (`user@host`: the request side
//! never has one, so such an `htu` could not name it), characters RFC 3986 does not allow in the
//! host, a `%` not followed by two hex digits, and a port beyond 65535. A byte the path may not
//! hold is percent-encoded instead (clients differ on which they encode). What follows `?` or `#`
//! is dropped unread: RFC 9449 compares without it.

use std::fmt::{self, Write as _};

/// The scheme, host and port of an `http`/`https` URI, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    https: bool,
    /// Lower case, percent-encodings normalised; an IP literal keeps its brackets.
    host: String,
    /// `None` for the scheme's default port (80 or 443).
    port: Option<u16>,
}

/// An `http`/`https` URI reduced to what `htu` compares: origin and path, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUri {
    origin: Origin,
    /// Starts with `/`; no dot segments.
    path: String,
}

impl Origin {
    /// An origin from a request's `:scheme` and `:authority`.
    pub fn from_parts(scheme: &str, authority: &str) -> Option<Origin> {
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return None;
        };
        if authority.contains('@') {
            return None;
        }
        let (host, port) = split_port(authority)?;
        let host = normalize_host(host)?;
        let default = if https { 443 } else { 80 };
        let port = match port {
            None | Some("") => None,
            Some(digits) => Some(parse_port(digits)?).filter(|p| *p != default),
        };
        Some(Origin { https, host, port })
    }

    /// A configured public URL such as `https://api.example` (`public_url`): an origin, at most
    /// followed by `/`; a path, query or fragment is refused.
    pub fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.split_once("://")?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return None;
        }
        Origin::from_parts(scheme, authority)
    }
}

impl HttpUri {
    /// An absolute URI as a proof's `htu` gives it; query and fragment are dropped.
    pub fn parse(text: &str) -> Option<HttpUri> {
        let (scheme, rest) = before_query(text).split_once("://")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let origin = Origin::from_parts(scheme, authority)?;
        Some(HttpUri { origin, path: normalize_path(path)? })
    }

    /// The URI a request was made for: its origin (as received or configured) and its `:path`,
    /// query dropped. `None` for a path that is not absolute (`*`, or absolute-form).
    pub fn request(origin: &Origin, path: &str) -> Option<HttpUri> {
        let path = before_query(path);
        if !path.starts_with('/') {
            return None;
        }
        Some(HttpUri { origin: origin.clone(), path: normalize_path(path)? })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for HttpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

/// The part before any query or fragment (a fragment starts at the first `#`, a query at the
/// first `?` before it).
fn before_query(text: &str) -> &str {
    let text = text.split('#').next().unwrap_or(text);
    text.split('?').next().unwrap_or(text)
}

/// `host` and `port` of an authority; an IP literal's colons are not a port's.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => Some((host, Some(port))),
            None => Some((authority, None)),
        }
    }
}

/// Decimal digits of a port in 0..=65535; leading zeros name the same port.
fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = digits.trim_start_matches('0');
    if value.len() > 5 {
        return None;
    }
    if value.is_empty() { Some(0) } else { value.parse().ok() }
}

fn normalize_host(host: &str) -> Option<String> {
    let normalized = match host.strip_prefix('[') {
        // IP-literal (RFC 3986 §3.2.2): hex digits, `:` and `.` for IPv6; `v` and the rest of
        // the sub-delims for IPvFuture. No percent-encodings inside.
        Some(literal) => {
            let inner = literal.strip_suffix(']')?;
            let allowed = |b: u8| is_unreserved(b) || is_sub_delim(b) || b == b':';
            if inner.is_empty() || !inner.bytes().all(allowed) {
                return None;
            }
            host.to_ascii_lowercase()
        }
        None => normalize_encoded(host, Part::Host)?,
    };
    (!normalized.is_empty()).then_some(normalized)
}

/// A path, normalised; empty is `/`.
fn normalize_path(path: &str) -> Option<String> {
    let path = normalize_encoded(path, Part::Path)?;
    Some(if path.is_empty() { "/".to_owned() } else { remove_dot_segments(&path) })
}

/// Which part of a URI [`normalize_encoded`] works on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A registered name: case-insensitive, and nothing outside its characters.
    Host,
    /// A path: case-sensitive; a byte RFC 3986 does not allow there is percent-encoded, as
    /// clients do for some and not for others (WHATWG URLs keep `|` and `^`, encode `"` and
    /// `{`), so both spellings name the same resource.
    Path,
}

/// Percent-encoding normalisation (RFC 3986 §6.2.2.1, §6.2.2.2): unreserved characters decoded,
/// other encodings in upper-case hex; then the part's own rules (see [`Part`]). `None` for a `%`
/// not followed by two hex digits, or a character no host has.
fn normalize_encoded(text: &str, part: Part) -> Option<String> {
    let lower = |b: u8| if part == Part::Host { b.to_ascii_lowercase() } else { b };
    let mut out = String::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        let allowed = match part {
            Part::Host => is_reg_name_char(b),
            Part::Path => b == b'/' || is_pchar(b),
        };
        if b == b'%' {
            let decoded = hex_value(bytes.next()?)? << 4 | hex_value(bytes.next()?)?;
            if is_unreserved(decoded) {
                out.push(char::from(lower(decoded)));
            } else {
                write!(out, "%{decoded:02X}").ok()?;
            }
        } else if allowed {
            out.push(char::from(lower(b)));
        } else if part == Part::Path {
            write!(out, "%{b:02X}").ok()?;
        } else {
            return None;
        }
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// RFC 3986 §5.2.4 for an absolute path: `.` segments go, `..` removes the segment before it
/// (never above the root), and a final `.` or `..` leaves the trailing `/`.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.into_iter().enumerate() {
        match segment {
            "." | ".." => {
                if segment == ".." {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            _ => out.push(segment),
        }
    }
    format!("/{}", out.join("/"))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

fn is_reg_name_char(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b)
}

fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || matches!(b, b':' | b'@')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> Option<String> {
        HttpUri::parse(text).map(|u| u.to_string())
    }

    #[test]
    fn normalisation_table() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            ("https://server.example.com/token", Some("https://server.example.com/token")),
            // Scheme and host case, default port, empty port, empty path (§6.2.2.1, §6.2.3).
            ("HTTPS://Server.Example.COM/Token", Some("https://server.example.com/Token")),
            ("https://server.example.com:443/token", Some("https://server.example.com/token")),
            ("http://server.example.com:80", Some("http://server.example.com/")),
            ("https://server.example.com:/", Some("https://server.example.com/")),
            ("https://server.example.com", Some("https://server.example.com/")),
            ("https://server.example.com:80/", Some("https://server.example.com:80/")),
            ("http://server.example.com:443/", Some("http://server.example.com:443/")),
            ("https://server.example.com:08443/", Some("https://server.example.com:8443/")),
            // Query and fragment are dropped unread.
            ("https://a.example/p?x=1#frag", Some("https://a.example/p")),
            ("https://a.example/p#frag?x", Some("https://a.example/p")),
            ("https://a.example?x=/y", Some("https://a.example/")),
            ("https://a.example/p?%zz", Some("https://a.example/p")),
            // Percent-encodings: upper-case hex, unreserved decoded (§6.2.2.1, §6.2.2.2).
            ("https://a.example/%7euser/%2f%3a", Some("https://a.example/~user/%2F%3A")),
            ("https://a.example/%41%62c", Some("https://a.example/Abc")),
            ("https://%41.example/", Some("https://a.example/")),
            ("https://a%2Db.example/", Some("https://a-b.example/")),
            // Dot segments (§6.2.2.3, §5.2.4), encoded dots included.
            ("https://a.example/a/b/c/./../../g", Some("https://a.example/a/g")),
            ("https://a.example/a/..", Some("https://a.example/")),
            ("https://a.example/../../x", Some("https://a.example/x")),
            ("https://a.example/a/%2e%2E/b", Some("https://a.example/b")),
            ("https://a.example/a/./", Some("https://a.example/a/")),
            ("https://a.example/a//b/", Some("https://a.example/a//b/")),
            ("https://a.example/a/.b/..c", Some("https://a.example/a/.b/..c")),
            // IP literals keep brackets and get lower case; their colons are not a port.
            ("http://[::1]:8080/x", Some("http://[::1]:8080/x")),
            ("http://[FE80::A]/", Some("http://[fe80::a]/")),
            ("http://[::1]:80/", Some("http://[::1]/")),
            ("http://127.0.0.1:10000/api", Some("http://127.0.0.1:10000/api")),
            // Refused.
            ("ftp://a.example/", None),
            ("https:/a.example/", None),
            ("//a.example/", None),
            ("https://", None),
            ("https:///path", None),
            ("https://:443/", None),
            ("https://user@a.example/", None),
            ("https://a.example:65536/", None),
            ("https://a.example:-1/", None),
            ("https://a.example:8x/", None),
            ("https://a.example/%", None),
            ("https://a.example/%4", None),
            ("https://a.example/%g1", None),
            // Bytes a path may not hold are encoded, as some clients do and others do not.
            ("https://a.example/a b", Some("https://a.example/a%20b")),
            ("https://a.example/\u{e9}", Some("https://a.example/%C3%A9")),
            ("https://a.example/\"{x}|^", Some("https://a.example/%22%7Bx%7D%7C%5E")),
            ("https://a.example/%22%7bx%7D|%5e", Some("https://a.example/%22%7Bx%7D%7C%5E")),
            ("https://a%20b.example/", Some("https://a%20b.example/")),
            ("https://a b.example/", None),
            ("https://a_b.example\\/", None),
            ("https://[::1/", None),
            ("https://[]/", None),
            ("https://[::1]x/", None),
            ("https://[::%31]/", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(norm(text).as_deref(), *expected, "{text:?}");
        }
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for text in
            ["HTTPS://A.example:443/%7e/./x/../%2f?q", "http://[FE80::1]:80/a/%2e/b/", "https://x.example"]
        {
            let once = norm(text).unwrap();
            assert_eq!(norm(&once).as_deref(), Some(once.as_str()), "{text}");
        }
    }

    #[test]
    fn request_targets() {
        let origin = Origin::from_parts("https", "Api.Example:443").unwrap();
        let target = |path| HttpUri::request(&origin, path).map(|u| u.to_string());
        assert_eq!(target("/v1/items?limit=5").as_deref(), Some("https://api.example/v1/items"));
        assert_eq!(target("/").as_deref(), Some("https://api.example/"));
        assert_eq!(target("/a/../b#x").as_deref(), Some("https://api.example/b"));
        assert_eq!(target("*"), None);
        assert_eq!(target("https://api.example/x"), None);
        assert_eq!(target(""), None);
        assert_eq!(target("/a b").as_deref(), Some("https://api.example/a%20b"));
        // The same resource as a proof names it.
        let proof = HttpUri::parse("https://API.example/v1/%69tems#top").unwrap();
        assert_eq!(HttpUri::request(&origin, "/v1/items?limit=5"), Some(proof));

        assert_eq!(Origin::from_parts("HTTP", "a.example:80"), Origin::from_parts("http", "A.EXAMPLE"));
        assert_eq!(Origin::from_parts("grpc", "a.example"), None);
        assert_eq!(Origin::from_parts("https", "u@a.example"), None);
        assert_eq!(Origin::from_parts("https", ""), None);
    }

    #[test]
    fn configured_origins() {
        for (text, expected) in [
            ("https://api.example", Some("https://api.example")),
            ("https://api.example/", Some("https://api.example")),
            ("HTTP://API.example:8080", Some("http://api.example:8080")),
            ("https://api.example/v1", None),
            ("https://api.example?x", None),
            ("https://api.example#x", None),
            ("https://api.example//", None),
            ("api.example", None),
            ("wss://api.example", None),
        ] {
            assert_eq!(Origin::parse(text).map(|o| o.to_string()).as_deref(), expected, "{text}");
        }
    }
}

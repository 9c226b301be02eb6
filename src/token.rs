//! Compact JWS decoding: rules 1 (form) and 2 (header) of the verification policy.
//!
//! `decode_jws` checks, in this order, stopping at the first failure:
//! 1. length against `max_token_bytes`, before anything else is looked at ([`JwtError::TooLarge`]);
//! 2. form: a leading `{` is the JWS JSON serialization, five segments a JWE, anything but three
//!    non-empty segments malformed;
//! 3. the header segment's base64url, then the header itself (see `parse_header`);
//! 4. the payload segment's base64url, then the signature segment's.
//!
//! The header is settled before the payload and signature are decoded, so a token with a refused
//! `alg` costs no more than its header. The payload's JSON is not looked at here: that is
//! `claims::Claims::parse`. Nothing here verifies the signature.

use crate::alg::{Algorithm, AlgorithmSet};
use crate::error::JwtError;
use crate::json::{self, StrictJsonError, Text, TextSeed};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

/// The protected header, reduced to what the verifier uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

/// A compact JWS split and decoded, borrowing the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jws<'a> {
    pub header: Header,
    /// Decoded payload bytes (not yet parsed as claims).
    pub payload: Vec<u8>,
    /// `<header b64>.<payload b64>` exactly as received: what the signature covers.
    pub signing_input: &'a str,
    /// The payload segment as received (forwarded later as `x-jwt-payload`).
    pub payload_b64: &'a str,
    /// Decoded signature bytes.
    pub signature: Vec<u8>,
}

/// Strict base64url (RFC 4648 §5, RFC 7515 §2): no padding and non-zero unused trailing bits are
/// refused, so every byte string has exactly one accepted encoding and a signed token cannot be
/// altered without changing its signing input. Stated explicitly rather than relying on the
/// defaults of `URL_SAFE_NO_PAD`.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Strict base64url (RFC 4648 §5): no padding, no whitespace, no other alphabet, canonical (unused
/// trailing bits zero). `None` when `segment` is not such an encoding.
pub fn b64url_decode(segment: &str) -> Option<Vec<u8>> {
    B64URL.decode(segment).ok()
}

/// Unpadded base64url (RFC 4648 §5): the one encoding [`b64url_decode`] accepts.
pub fn b64url_encode(bytes: &[u8]) -> String {
    B64URL.encode(bytes)
}

/// Splits and decodes a compact JWS, enforcing rules 1 and 2 (order in the module doc). The
/// signature is decoded but not verified.
pub fn decode_jws(
    token: &str,
    algorithms: AlgorithmSet,
    max_token_bytes: usize,
) -> Result<Jws<'_>, JwtError> {
    let segments = split(token, max_token_bytes)?;
    let header = decode_header(segments.header, algorithms)?;
    decode_body(&segments, header)
}

/// Steps 1 and 2 of [`decode_jws`]: the length, then the form.
pub fn split(token: &str, max_token_bytes: usize) -> Result<Segments<'_>, JwtError> {
    if token.len() > max_token_bytes {
        return Err(JwtError::TooLarge);
    }
    split_compact(token)
}

/// Step 3 of [`decode_jws`]: the header segment's base64url, then the header.
pub fn decode_header(segment: &str, algorithms: AlgorithmSet) -> Result<Header, JwtError> {
    let header_bytes = b64url_decode(segment).ok_or(JwtError::HeaderBadBase64)?;
    parse_header(&header_bytes, algorithms)
}

/// Step 4 of [`decode_jws`], for a header that passed step 3.
pub fn decode_body<'a>(segments: &Segments<'a>, header: Header) -> Result<Jws<'a>, JwtError> {
    let payload = b64url_decode(segments.payload).ok_or(JwtError::PayloadBadBase64)?;
    let signature = b64url_decode(segments.signature).ok_or(JwtError::SignatureBadBase64)?;
    Ok(Jws {
        header,
        payload,
        signing_input: segments.signing_input,
        payload_b64: segments.payload,
        signature,
    })
}

/// The three segments of a compact JWS, and the signing input that spans the first two.
pub struct Segments<'a> {
    pub signing_input: &'a str,
    pub header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

/// Splits a compact serialization into its segments, telling apart the forms we refuse.
fn split_compact(token: &str) -> Result<Segments<'_>, JwtError> {
    // Nothing is trimmed: `{` must be the very first byte, as any whitespace is a bad segment anyway.
    if token.starts_with('{') {
        return Err(JwtError::JsonSerialization);
    }
    match token.bytes().filter(|&b| b == b'.').count() {
        2 => {}
        // RFC 7516 §7.1: five segments, some possibly empty (e.g. the key with `dir`).
        4 => return Err(JwtError::Jwe),
        _ => return Err(JwtError::BadFormat),
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(JwtError::BadFormat)?;
    let (header, payload) = signing_input.split_once('.').ok_or(JwtError::BadFormat)?;
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(JwtError::BadFormat);
    }
    Ok(Segments { signing_input, header, payload, signature })
}

/// Parses and checks the decoded header (rule 2), in this order: strict JSON object
/// (HeaderParse / HeaderDuplicateMember), `alg`, `kid`, `crit`, `cty`. `alg` comes first because
/// refusing `none`/HMAC is the check that matters most; `crit` and `cty` refuse features this
/// verifier does not implement. Members used to locate keys (`jwk`, `jku`, `x5u`, `x5c`, `x5t`,
/// `x5t#S256`) and all others (`typ`...) are ignored: keys only come from the configured JWKS.
fn parse_header(bytes: &[u8], algorithms: AlgorithmSet) -> Result<Header, JwtError> {
    let raw = json::parse_with(bytes, HeaderSeed).map_err(|e| match e {
        StrictJsonError::DuplicateMember => JwtError::HeaderDuplicateMember,
        StrictJsonError::Invalid | StrictJsonError::TooDeep => JwtError::HeaderParse,
    })?;
    let alg = header_alg(raw.alg.as_ref(), algorithms)?;
    let kid = match raw.kid {
        None => None,
        Some(Text::Str(kid)) => Some(kid.into_owned()),
        Some(Text::Other) => return Err(JwtError::HeaderBadKid),
    };
    check_crit(raw.crit.as_ref(), &raw.names)?;
    // RFC 7519 §5.2: "JWT" (case-insensitively) marks a nested JWT, which is not supported. Any
    // other value, or a non-string, is informational and ignored; a nested token's payload would
    // fail claim parsing anyway, as it is not a JSON object.
    if raw.cty.as_ref().and_then(Text::as_str).is_some_and(|cty| cty.eq_ignore_ascii_case("JWT")) {
        return Err(JwtError::NestedJwt);
    }
    Ok(Header { alg, kid })
}

/// The header members the checks read, borrowed from the decoded header where they have no
/// escapes. Every other member is checked as strict JSON and dropped, so a header costs one small
/// vector of names, not a map of values.
#[derive(Default)]
struct RawHeader<'a> {
    /// Every member name: for duplicates, and for `crit`, which must name members. A set, so a
    /// header of hundreds of members (the size cap allows ~1,000) costs no quadratic scan.
    names: BTreeSet<Cow<'a, str>>,
    alg: Option<Text<'a>>,
    kid: Option<Text<'a>>,
    cty: Option<Text<'a>>,
    crit: Option<Value>,
}

struct HeaderSeed;

impl<'de> DeserializeSeed<'de> for HeaderSeed {
    type Value = RawHeader<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawHeader<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed {
    type Value = RawHeader<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawHeader<'de>, A::Error> {
        let inner = json::Strict::top(json::MAX_DEPTH).nested()?;
        let mut raw = RawHeader::default();
        while let Some(name) = access.next_key_seed(json::NameSeed)? {
            if raw.names.contains(&name) {
                return Err(json::duplicate());
            }
            let text = TextSeed(inner);
            match &*name {
                "alg" => raw.alg = Some(access.next_value_seed(text)?),
                "kid" => raw.kid = Some(access.next_value_seed(text)?),
                "cty" => raw.cty = Some(access.next_value_seed(text)?),
                "crit" => raw.crit = Some(access.next_value_seed(inner)?),
                _ => {
                    access.next_value_seed(text)?;
                }
            }
            raw.names.insert(name);
        }
        Ok(raw)
    }
}

/// `alg` must be a string naming an allowed algorithm, compared case-sensitively.
fn header_alg(alg: Option<&Text<'_>>, algorithms: AlgorithmSet) -> Result<Algorithm, JwtError> {
    match alg {
        None => Err(JwtError::HeaderMissingAlg),
        Some(Text::Str(name)) => {
            Algorithm::from_name(name).filter(|alg| algorithms.contains(*alg)).ok_or(JwtError::AlgNotAllowed)
        }
        Some(Text::Other) => Err(JwtError::HeaderBadAlg),
    }
}

/// Header parameters defined by RFC 7515 §4.1 itself, which `crit` must not list (§4.1.11).
const REGISTERED: [&str; 11] =
    ["alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit"];

/// RFC 7515 §4.1.11: `crit` is a non-empty array of distinct extension names, each present in the
/// header (`names`) and none defined by RFC 7515. A well-formed `crit` still fails, because this
/// verifier understands no extension and must then reject the JWS.
fn check_crit(crit: Option<&Value>, names: &BTreeSet<Cow<'_, str>>) -> Result<(), JwtError> {
    let Some(crit) = crit else {
        return Ok(());
    };
    let listed = crit.as_array().filter(|listed| !listed.is_empty()).ok_or(JwtError::HeaderBadCrit)?;
    let mut seen = BTreeSet::new();
    for name in listed {
        let name = name.as_str().ok_or(JwtError::HeaderBadCrit)?;
        if !seen.insert(name) || REGISTERED.contains(&name) || !names.contains(name) {
            return Err(JwtError::HeaderBadCrit);
        }
    }
    Err(JwtError::CritNotSupported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with the given raw header and payload and a dummy signature.
    fn token(header: &[u8], payload: &[u8]) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64(b"sig"))
    }

    fn with_header(header: &str) -> String {
        token(header.as_bytes(), b"{}")
    }

    fn decode(token: &str) -> Result<Jws<'_>, JwtError> {
        decode_jws(token, AlgorithmSet::all(), 8192)
    }

    const RS256: &str = r#"{"alg":"RS256"}"#;

    #[test]
    fn decodes_a_well_formed_token() {
        let t = token(br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#, br#"{"sub":"a"}"#);
        let jws = decode(&t).unwrap();
        assert_eq!(jws.header, Header { alg: Algorithm::ES256, kid: Some("k1".into()) });
        assert_eq!(jws.payload, br#"{"sub":"a"}"#);
        assert_eq!(jws.signature, b"sig");
        let (input, _) = t.rsplit_once('.').unwrap();
        assert_eq!(jws.signing_input, input);
        assert_eq!(jws.payload_b64, b64(br#"{"sub":"a"}"#));
        assert_eq!(decode(&with_header(RS256)).unwrap().header.kid, None);
    }

    #[test]
    fn b64url_is_strict_and_canonical() {
        let cases: &[(&str, Option<&[u8]>)] = &[
            ("", Some(b"")),
            ("AA", Some(b"\x00")),
            ("AQ", Some(b"\x01")),
            ("AAE", Some(b"\x00\x01")),
            ("-_8", Some(b"\xfb\xff")),
            // Unused trailing bits not zero: the same bytes as "AA"/"AQ"/"AAE" in other spellings.
            ("AB", None),
            ("AC", None),
            ("AR", None),
            ("AAF", None),
            // Padding, standard alphabet, whitespace, impossible length, stray characters.
            ("AA==", None),
            ("AAE=", None),
            ("+_8", None),
            ("-/8", None),
            ("A A", None),
            ("AA\n", None),
            (" AA", None),
            ("A", None),
            ("AAAAA", None),
            ("AA.", None),
            ("AA%3D", None),
        ];
        for (input, expected) in cases {
            assert_eq!(b64url_decode(input).as_deref(), *expected, "{input:?}");
        }
    }

    #[test]
    fn size_cap_is_checked_first() {
        let t = with_header(RS256);
        assert!(decode_jws(&t, AlgorithmSet::all(), t.len()).is_ok());
        assert_eq!(decode_jws(&t, AlgorithmSet::all(), t.len() - 1), Err(JwtError::TooLarge));
        // Before any other check: garbage and JSON serialization over the cap are just too large.
        assert_eq!(decode_jws("x", AlgorithmSet::all(), 0), Err(JwtError::TooLarge));
        assert_eq!(decode_jws("{\"payload\":1}", AlgorithmSet::all(), 5), Err(JwtError::TooLarge));
        assert!(decode_jws("", AlgorithmSet::all(), 0).is_err_and(|e| e == JwtError::BadFormat));
    }

    #[test]
    fn form_errors() {
        let good = with_header(RS256);
        let (h, rest) = good.split_once('.').unwrap();
        let (p, s) = rest.split_once('.').unwrap();
        let cases: Vec<(String, JwtError)> = vec![
            (r#"{"payload":"e30","signatures":[]}"#.into(), JwtError::JsonSerialization),
            (r#"{"payload":"e30","protected":"x","signature":"y"}"#.into(), JwtError::JsonSerialization),
            // No trimming: a JSON serialization behind whitespace is just not compact.
            (r#" {"payload":"e30"}"#.into(), JwtError::BadFormat),
            (format!("{h}.{p}.{s}.{s}.{s}"), JwtError::Jwe),
            (format!("{h}..{s}.{s}."), JwtError::Jwe),
            (String::new(), JwtError::BadFormat),
            (h.to_owned(), JwtError::BadFormat),
            (format!("{h}.{p}"), JwtError::BadFormat),
            (format!("{h}.{p}.{s}.{s}"), JwtError::BadFormat),
            (format!("{h}.{p}.{s}.{s}.{s}.{s}"), JwtError::BadFormat),
            (format!(".{p}.{s}"), JwtError::BadFormat),
            (format!("{h}..{s}"), JwtError::BadFormat),
            (format!("{h}.{p}."), JwtError::BadFormat),
            ("..".into(), JwtError::BadFormat),
        ];
        for (t, expected) in cases {
            assert_eq!(decode(&t), Err(expected), "{t:?}");
        }
    }

    #[test]
    fn segment_base64_errors() {
        let good = with_header(RS256);
        let (h, rest) = good.split_once('.').unwrap();
        let (p, s) = rest.split_once('.').unwrap();
        // 16 bytes: the padded encoding ends in "==".
        let padded = base64::engine::general_purpose::URL_SAFE.encode(br#"{"alg":"RS256"} "#);
        assert!(padded.ends_with("=="));
        let cases: Vec<(String, JwtError)> = vec![
            (format!("{padded}.{p}.{s}"), JwtError::HeaderBadBase64),
            (format!(" {h}.{p}.{s}"), JwtError::HeaderBadBase64),
            (format!("{h} .{p}.{s}"), JwtError::HeaderBadBase64),
            (format!("{h}\n.{p}.{s}"), JwtError::HeaderBadBase64),
            (format!("{}+.{p}.{s}", &h[..h.len() - 1]), JwtError::HeaderBadBase64),
            (format!("{h}.{p}=.{s}"), JwtError::PayloadBadBase64),
            (format!("{h}. {p}.{s}"), JwtError::PayloadBadBase64),
            (format!("{h}.{p}\r\n.{s}"), JwtError::PayloadBadBase64),
            (format!("{h}.{p}/.{s}"), JwtError::PayloadBadBase64),
            (format!("{h}.{p}.{s}="), JwtError::SignatureBadBase64),
            (format!("{h}.{p}.{s}\n"), JwtError::SignatureBadBase64),
            (format!("{h}.{p}.{s} "), JwtError::SignatureBadBase64),
            (format!("{h}.{p}.+/+/"), JwtError::SignatureBadBase64),
            // "AB" is "AA" with a non-zero unused bit.
            (format!("{h}.{p}.AB"), JwtError::SignatureBadBase64),
        ];
        for (t, expected) in cases {
            assert_eq!(decode(&t), Err(expected), "{t:?}");
        }
        assert!(decode(&format!("{h}.{p}.AA")).is_ok());
    }

    #[test]
    fn header_is_checked_before_payload_and_signature() {
        let t = format!("{}.!!.!!", b64(br#"{"alg":"none"}"#));
        assert_eq!(decode(&t), Err(JwtError::AlgNotAllowed));
        let t = format!("{}.e30.!!", b64(RS256.as_bytes()));
        assert_eq!(decode(&t), Err(JwtError::SignatureBadBase64));
        let t = format!("{}.!!.!!", b64(RS256.as_bytes()));
        assert_eq!(decode(&t), Err(JwtError::PayloadBadBase64));
    }

    #[test]
    fn header_json_errors() {
        let deep = format!("{{\"alg\":\"RS256\",\"x\":{}1{}}}", "[".repeat(20), "]".repeat(20));
        let cases: Vec<(Vec<u8>, JwtError)> = vec![
            (b"\xff\xfe".to_vec(), JwtError::HeaderParse),
            (b"{\"alg\":\"RS256\",\"x\":\"\xff\"}".to_vec(), JwtError::HeaderParse),
            (br#"["RS256"]"#.to_vec(), JwtError::HeaderParse),
            (b"1".to_vec(), JwtError::HeaderParse),
            (b"\"RS256\"".to_vec(), JwtError::HeaderParse),
            (b"null".to_vec(), JwtError::HeaderParse),
            (br#"{"alg":"RS256""#.to_vec(), JwtError::HeaderParse),
            (br#"{"alg":"RS256"}{}"#.to_vec(), JwtError::HeaderParse),
            (deep.into_bytes(), JwtError::HeaderParse),
            (br#"{"alg":"RS256","alg":"RS256"}"#.to_vec(), JwtError::HeaderDuplicateMember),
            (br#"{"alg":"RS256","alg":"none"}"#.to_vec(), JwtError::HeaderDuplicateMember),
            (br#"{"alg":"none","\u0061lg":"RS256"}"#.to_vec(), JwtError::HeaderDuplicateMember),
            (br#"{"alg":"RS256","x":{"a":1,"a":2}}"#.to_vec(), JwtError::HeaderDuplicateMember),
            (br#"{"alg":"RS256","kid":[{"b":1,"b":2}]}"#.to_vec(), JwtError::HeaderDuplicateMember),
            (br#"{"crit":[],"alg":"RS256","crit":[]}"#.to_vec(), JwtError::HeaderDuplicateMember),
        ];
        for (header, expected) in cases {
            let shown = String::from_utf8_lossy(&header).into_owned();
            assert_eq!(decode(&token(&header, b"{}")), Err(expected), "{shown:?}");
        }
        // Escapes are decoded, in names and in values alike.
        let escaped = with_header(r#"{"\u0061lg":"RS\u003256","kid":"k\u00e9"}"#);
        assert_eq!(
            decode(&escaped).unwrap().header,
            Header { alg: Algorithm::RS256, kid: Some("k\u{e9}".into()) }
        );
        // Whitespace inside the decoded JSON is JSON's business, and allowed.
        assert!(decode(&with_header(" {\n\"alg\" : \"RS256\" } ")).is_ok());
    }

    #[test]
    fn alg_rules() {
        let only_es256: AlgorithmSet = [Algorithm::ES256].into_iter().collect();
        let cases: &[(&str, AlgorithmSet, Result<Algorithm, JwtError>)] = &[
            (RS256, AlgorithmSet::all(), Ok(Algorithm::RS256)),
            (r#"{"alg":"EdDSA"}"#, AlgorithmSet::all(), Ok(Algorithm::EdDSA)),
            (r#"{"alg":"ES256"}"#, only_es256, Ok(Algorithm::ES256)),
            (RS256, only_es256, Err(JwtError::AlgNotAllowed)),
            (RS256, AlgorithmSet::EMPTY, Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":"none"}"#, AlgorithmSet::all(), Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":"None"}"#, AlgorithmSet::all(), Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":"NONE"}"#, AlgorithmSet::all(), Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":"rs256"}"#, AlgorithmSet::all(), Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":"RS256 "}"#, AlgorithmSet::all(), Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":"HS256"}"#, AlgorithmSet::all(), Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":"ES512"}"#, AlgorithmSet::all(), Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":""}"#, AlgorithmSet::all(), Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":123}"#, AlgorithmSet::all(), Err(JwtError::HeaderBadAlg)),
            (r#"{"alg":null}"#, AlgorithmSet::all(), Err(JwtError::HeaderBadAlg)),
            (r#"{"alg":["RS256"]}"#, AlgorithmSet::all(), Err(JwtError::HeaderBadAlg)),
            (r#"{"alg":{"name":"RS256"}}"#, AlgorithmSet::all(), Err(JwtError::HeaderBadAlg)),
            (r#"{}"#, AlgorithmSet::all(), Err(JwtError::HeaderMissingAlg)),
            (r#"{"ALG":"RS256"}"#, AlgorithmSet::all(), Err(JwtError::HeaderMissingAlg)),
            (r#"{"typ":"JWT","kid":"k"}"#, AlgorithmSet::all(), Err(JwtError::HeaderMissingAlg)),
        ];
        for (header, set, expected) in cases {
            let got = decode_jws(&with_header(header), *set, 8192).map(|jws| jws.header.alg);
            assert_eq!(got, *expected, "{header}");
        }
    }

    /// Runs header cases against the full allow-list; `Ok(())` means the token decodes.
    fn check_headers(cases: &[(&str, Result<(), JwtError>)]) {
        for (header, expected) in cases {
            assert_eq!(decode(&with_header(header)).map(|_| ()), *expected, "{header}");
        }
    }

    #[test]
    fn kid_rules() {
        check_headers(&[
            (r#"{"alg":"RS256","kid":"a"}"#, Ok(())),
            (r#"{"alg":"RS256","kid":""}"#, Ok(())),
            (r#"{"alg":"RS256","kid":1}"#, Err(JwtError::HeaderBadKid)),
            (r#"{"alg":"RS256","kid":null}"#, Err(JwtError::HeaderBadKid)),
            (r#"{"alg":"RS256","kid":["a"]}"#, Err(JwtError::HeaderBadKid)),
            (r#"{"alg":"RS256","kid":"a","kid":"b"}"#, Err(JwtError::HeaderDuplicateMember)),
            // alg is checked before kid.
            (r#"{"alg":"none","kid":1}"#, Err(JwtError::AlgNotAllowed)),
        ]);
    }

    #[test]
    fn crit_rules() {
        check_headers(&[
            (r#"{"alg":"RS256","crit":[]}"#, Err(JwtError::HeaderBadCrit)),
            (r#"{"alg":"RS256","crit":"b64","b64":false}"#, Err(JwtError::HeaderBadCrit)),
            (r#"{"alg":"RS256","crit":null}"#, Err(JwtError::HeaderBadCrit)),
            (r#"{"alg":"RS256","crit":{}}"#, Err(JwtError::HeaderBadCrit)),
            (r#"{"alg":"RS256","crit":[1]}"#, Err(JwtError::HeaderBadCrit)),
            (r#"{"alg":"RS256","crit":["b64",1],"b64":false}"#, Err(JwtError::HeaderBadCrit)),
            (r#"{"alg":"RS256","crit":["exp"]}"#, Err(JwtError::HeaderBadCrit)),
            (r#"{"alg":"RS256","crit":["b64","b64"],"b64":false}"#, Err(JwtError::HeaderBadCrit)),
            // Names RFC 7515 defines must not be listed, even when present.
            (r#"{"alg":"RS256","crit":["alg"]}"#, Err(JwtError::HeaderBadCrit)),
            (r#"{"alg":"RS256","kid":"k","crit":["kid"]}"#, Err(JwtError::HeaderBadCrit)),
            (r#"{"alg":"RS256","crit":["crit"]}"#, Err(JwtError::HeaderBadCrit)),
            // Well-formed, but no extension is understood.
            (r#"{"alg":"RS256","crit":["b64"],"b64":false}"#, Err(JwtError::CritNotSupported)),
            (r#"{"alg":"RS256","crit":["exp"],"exp":1}"#, Err(JwtError::CritNotSupported)),
            (r#"{"alg":"RS256","crit":["a","b"],"a":1,"b":2}"#, Err(JwtError::CritNotSupported)),
            // An extension header without crit is simply ignored.
            (r#"{"alg":"RS256","b64":false}"#, Ok(())),
            // Order: alg, then kid, then crit.
            (r#"{"alg":"HS256","crit":[]}"#, Err(JwtError::AlgNotAllowed)),
            (r#"{"alg":"RS256","kid":1,"crit":[]}"#, Err(JwtError::HeaderBadKid)),
        ]);
    }

    #[test]
    fn cty_rules() {
        check_headers(&[
            (r#"{"alg":"RS256","cty":"JWT"}"#, Err(JwtError::NestedJwt)),
            (r#"{"alg":"RS256","cty":"jwt"}"#, Err(JwtError::NestedJwt)),
            (r#"{"alg":"RS256","cty":"Jwt"}"#, Err(JwtError::NestedJwt)),
            // Not "JWT": an informational content type, ignored (a nested token would fail claim
            // parsing anyway). Non-strings cannot say "JWT" and are ignored too.
            (r#"{"alg":"RS256","cty":"JWT "}"#, Ok(())),
            (r#"{"alg":"RS256","cty":"application/jwt"}"#, Ok(())),
            (r#"{"alg":"RS256","cty":"json"}"#, Ok(())),
            (r#"{"alg":"RS256","cty":1}"#, Ok(())),
            // crit is checked before cty.
            (r#"{"alg":"RS256","cty":"JWT","crit":[]}"#, Err(JwtError::HeaderBadCrit)),
        ]);
    }

    #[test]
    fn key_locating_members_are_ignored() {
        check_headers(&[
            (r#"{"alg":"RS256","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}"#, Ok(())),
            (r#"{"alg":"RS256","jku":"https://evil.example/jwks"}"#, Ok(())),
            (r#"{"alg":"RS256","x5u":"https://evil.example/cert"}"#, Ok(())),
            (r#"{"alg":"RS256","x5c":["MIIB"],"x5t":"abc","x5t#S256":"def"}"#, Ok(())),
            (r#"{"alg":"RS256","typ":"at+jwt","unknown":{"deep":[1,2,{"x":null}]}}"#, Ok(())),
        ]);
    }
}

//! The verification policy, rule by rule, through `verify::verify` with really signed tokens: one
//! table per numbered rule, each with cases that pass and cases that are refused, and the reason.
//!
//! Tokens are signed with the test-only fixture keys (`tests/support/mint.rs`) over exact header and
//! payload texts, so a case can carry anything a parser must refuse. The provider's key set is the
//! public JWKs of `PROVIDER`; `RsaB` is left out of it and plays the attacker. Run with
//! `-- --nocapture` to see the case counts per rule.

#[path = "common/hmac.rs"]
mod hmac;
#[path = "support/mint.rs"]
mod mint;

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE as URL_SAFE_PADDED, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jwt_authn_wasm::alg::{Algorithm, AlgorithmSet, KeyKind};
use jwt_authn_wasm::error::JwtError;
use jwt_authn_wasm::jwks::{JwksError, KeySet, KeySkip};
use jwt_authn_wasm::policy::Policy;
use jwt_authn_wasm::verify;
use mint::{Key, TestKey, b64};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::sync::OnceLock;

const NOW: i64 = 1_700_000_000;
const ISS: &str = "https://issuer.example";
const AUD: &str = "api";

type Outcome = Result<(), JwtError>;

/// The provider's keys: a key of every supported kind; not `RsaB` (the attacker's) and not the
/// 1024-bit key.
const PROVIDER: [(TestKey, &str); 5] = [
    (TestKey::RsaA, "rsa-a"),
    (TestKey::Rsa3072, "rsa-3072"),
    (TestKey::P256A, "ec-a"),
    (TestKey::P384, "ec-384"),
    (TestKey::Ed25519, "ed"),
];

/// A JWKS document's usable keys (skipped keys are allowed; rule 6 looks at them).
fn parse(jwks: &str) -> KeySet {
    KeySet::parse(jwks.as_bytes()).unwrap().keys
}

fn provider_keys() -> KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| parse(&mint::jwks(&PROVIDER))).clone()
}

/// The provider's policy: issuer and audience required, the rest default (every asymmetric
/// algorithm, 60 s skew, 8 KiB cap).
fn policy() -> Policy {
    Policy { issuer: Some(ISS.into()), audiences: vec![AUD.into()], ..Policy::default() }
}

/// The claim set `policy()` accepts at `NOW`, as JSON text, with members replaced or added (raw
/// JSON values) or removed (`None`), in a fixed order.
fn claims_with(changes: &[(&str, Option<&str>)]) -> String {
    let exp = (NOW + 3600).to_string();
    let now = NOW.to_string();
    let mut members: Vec<(&str, Option<&str>)> = vec![
        ("iss", Some("\"https://issuer.example\"")),
        ("aud", Some("\"api\"")),
        ("iat", Some(&now)),
        ("exp", Some(&exp)),
    ];
    for (name, value) in changes {
        match members.iter_mut().find(|(n, _)| n == name) {
            Some(member) => member.1 = *value,
            None => members.push((name, *value)),
        }
    }
    let text: Vec<String> = members.iter().filter_map(|(n, v)| v.map(|v| format!("\"{n}\":{v}"))).collect();
    format!("{{{}}}", text.join(","))
}

fn claims() -> String {
    claims_with(&[])
}

/// The usual header: `alg` and `kid`.
fn header(alg: &str, kid: &str) -> String {
    format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#)
}

fn sign(header: &str, payload: &str, key: TestKey, alg: &str) -> String {
    mint::sign(header, payload, &key, alg)
}

/// An RS256 token by `rsa-a` over `payload`.
fn rs256(payload: &str) -> String {
    sign(&header("RS256", "rsa-a"), payload, TestKey::RsaA, "RS256")
}

/// An RS256 token by `rsa-a` with this header text.
fn rs256_header(header: &str) -> String {
    sign(header, &claims(), TestKey::RsaA, "RS256")
}

/// A valid RS256 token by `rsa-a`.
fn good() -> String {
    rs256(&claims())
}

/// A compact JWS over an exact signing input, for segments that are not canonical base64url.
fn sign_input(input: &str, key: TestKey, alg: &str) -> String {
    format!("{input}.{}", b64(&key.sign_bytes(alg, input.as_bytes()).unwrap()))
}

fn segments(token: &str) -> [&str; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    parts.try_into().unwrap()
}

fn signature(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(segments(token)[2]).unwrap()
}

fn with_signature(token: &str, signature: &[u8]) -> String {
    let [h, p, _] = segments(token);
    format!("{h}.{p}.{}", b64(signature))
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// One row of a rule's table.
struct Case {
    name: String,
    token: String,
    keys: KeySet,
    policy: Policy,
    now: i64,
    expected: Outcome,
}

/// A case against the provider's keys and policy at `NOW`.
fn case(name: impl Into<String>, token: impl Into<String>, expected: Outcome) -> Case {
    Case {
        name: name.into(),
        token: token.into(),
        keys: provider_keys(),
        policy: policy(),
        now: NOW,
        expected,
    }
}

impl Case {
    fn keys(self, keys: &KeySet) -> Case {
        Case { keys: keys.clone(), ..self }
    }

    fn policy(self, policy: Policy) -> Case {
        Case { policy, ..self }
    }
}

/// Runs every case through `verify::verify`, then fails once, listing every case that came out
/// otherwise. A rule's table must have cases on both sides.
fn check(rule: &str, cases: Vec<Case>) {
    let mut wrong = Vec::new();
    let mut accepted = 0;
    for c in &cases {
        let got = verify::verify(&c.token, &c.keys, &c.policy, c.now).map(|_| ());
        accepted += usize::from(got.is_ok());
        if got != c.expected {
            wrong.push(format!("  {}: expected {:?}, got {got:?}", c.name, c.expected));
        }
    }
    assert!(wrong.is_empty(), "rule {rule}:\n{}", wrong.join("\n"));
    assert!(accepted > 0 && accepted < cases.len(), "rule {rule} needs cases on both sides");
    eprintln!("rule {rule}: {} cases, {accepted} accepted, {} refused", cases.len(), cases.len() - accepted);
}

#[test]
fn rule_1_form() {
    let good = good();
    let [h, p, s] = segments(&good);
    let sig = signature(&good);
    let cap = |max_token_bytes| Policy { max_token_bytes, ..policy() };
    let big = claims_with(&[("pad", Some(&format!("\"{}\"", "x".repeat(16 * 1024))))]);
    let groups: Vec<String> = (0..220).map(|i| format!("\"/org/department-{i:03}/team\"")).collect();
    let keycloak = claims_with(&[("groups", Some(&format!("[{}]", groups.join(","))))]);
    // Over the old 8 KiB default, as the access tokens of a user in many groups are.
    assert!((8400..8800).contains(&rs256(&keycloak).len()), "{}", rs256(&keycloak).len());
    let jwe = [r#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"rsa-a"}"#, "key", "iv", "ciphertext", "tag"]
        .map(|part| b64(part.as_bytes()))
        .join(".");
    let nested = sign(r#"{"alg":"RS256","kid":"rsa-a","cty":"JWT"}"#, &good, TestKey::RsaA, "RS256");

    // The same signature bytes in encodings a lenient decoder would take.
    let padded_sig = URL_SAFE_PADDED.encode(&sig);
    let standard_sig = STANDARD_NO_PAD.encode(&sig);
    assert!(padded_sig.ends_with("==") && standard_sig != s);
    let trailing_bits = with_trailing_bits(s);
    let lenient = GeneralPurpose::new(
        &URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    assert_eq!(lenient.decode(&trailing_bits).unwrap(), sig);
    // Other segments, signed exactly as sent: only their encoding is wrong.
    let padded_header = URL_SAFE_PADDED.encode(header("RS256", "rsa-a"));
    assert!(padded_header.ends_with('='));
    let standard_payload = STANDARD_NO_PAD.encode(claims_with(&[("q", Some("\"???\""))]));
    assert!(standard_payload.contains('/'));

    #[rustfmt::skip]
    let cases = vec![
        case("compact RS256", &good, Ok(())),
        case("exactly max_token_bytes", &good, Ok(())).policy(cap(good.len())),
        case("one byte over max_token_bytes", &good, Err(JwtError::TooLarge)).policy(cap(good.len() - 1)),
        case("64 KiB of garbage: the cap comes before decoding", "!".repeat(65536), Err(JwtError::TooLarge)),
        case("valid but over the default 16 KiB", rs256(&big), Err(JwtError::TooLarge)),
        case("a Keycloak-style token of ~8.6 KB passes the default", rs256(&keycloak), Ok(())),
        case("two segments", format!("{h}.{p}"), Err(JwtError::BadFormat)),
        case("four segments", format!("{h}.{p}.{s}.{s}"), Err(JwtError::BadFormat)),
        case("empty header", format!(".{p}.{s}"), Err(JwtError::BadFormat)),
        case("empty payload", format!("{h}..{s}"), Err(JwtError::BadFormat)),
        case("empty signature", format!("{h}.{p}."), Err(JwtError::BadFormat)),
        case("empty token", "", Err(JwtError::BadFormat)),
        case(
            "JWS JSON serialization, flattened",
            json!({"protected": h, "payload": p, "signature": s}).to_string(),
            Err(JwtError::JsonSerialization),
        ),
        case(
            "JWS JSON serialization, general",
            json!({"payload": p, "signatures": [{"protected": h, "signature": s}]}).to_string(),
            Err(JwtError::JsonSerialization),
        ),
        case("JWE, five segments", jwe, Err(JwtError::Jwe)),
        case("nested JWT (cty JWT), properly signed", nested, Err(JwtError::NestedJwt)),
        case("signature padded", format!("{h}.{p}.{padded_sig}"), Err(JwtError::SignatureBadBase64)),
        case("signature in + / alphabet", format!("{h}.{p}.{standard_sig}"), Err(JwtError::SignatureBadBase64)),
        case("signature with unused bits set", format!("{h}.{p}.{trailing_bits}"), Err(JwtError::SignatureBadBase64)),
        case(
            "header padded, signed as sent",
            sign_input(&format!("{padded_header}.{p}"), TestKey::RsaA, "RS256"),
            Err(JwtError::HeaderBadBase64),
        ),
        case(
            "space in the payload segment, signed as sent",
            sign_input(&format!("{h}.{} {}", &p[..8], &p[8..]), TestKey::RsaA, "RS256"),
            Err(JwtError::PayloadBadBase64),
        ),
        case(
            "payload in + / alphabet, signed as sent",
            sign_input(&format!("{h}.{standard_payload}"), TestKey::RsaA, "RS256"),
            Err(JwtError::PayloadBadBase64),
        ),
    ];
    check("1 (form)", cases);
}

/// A segment encoding a length ≡ 1 (mod 3) ends in a character with 4 unused bits: setting one
/// gives another spelling of the same bytes, which strict base64url refuses.
fn with_trailing_bits(segment: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (head, last) = segment.split_at(segment.len() - 1);
    let index = ALPHABET.iter().position(|c| *c == last.as_bytes()[0]).unwrap();
    assert_eq!(index & 0x0f, 0, "not a 1-byte final group");
    format!("{head}{}", ALPHABET[index | 1] as char)
}

#[test]
fn rule_2_header() {
    let claims = claims();
    let not_utf8 = format!(
        "{}.{}",
        b64(b"{\"alg\":\"RS256\",\"kid\":\"rsa-a\",\"x\":\"\xff\"}"),
        b64(claims.as_bytes())
    );
    let deep = format!(r#"{{"alg":"RS256","kid":"rsa-a","x":{}1{}}}"#, "[".repeat(16), "]".repeat(16));
    #[rustfmt::skip]
    let mut cases = vec![
        case("alg and kid", good(), Ok(())),
        case("typ and unknown members are ignored", rs256_header(r#"{"alg":"RS256","kid":"rsa-a","typ":"JWT","ext":{"a":[1]}}"#), Ok(())),
        case("header not UTF-8", sign_input(&not_utf8, TestKey::RsaA, "RS256"), Err(JwtError::HeaderParse)),
        case("header a JSON array", rs256_header(r#"["RS256"]"#), Err(JwtError::HeaderParse)),
        case("header with trailing data", rs256_header(r#"{"alg":"RS256","kid":"rsa-a"} {}"#), Err(JwtError::HeaderParse)),
        case("header nested 17 deep", rs256_header(&deep), Err(JwtError::HeaderParse)),
        case("alg twice, same value", rs256_header(r#"{"alg":"RS256","kid":"rsa-a","alg":"RS256"}"#), Err(JwtError::HeaderDuplicateMember)),
        case("alg twice, none then RS256", rs256_header(r#"{"alg":"none","kid":"rsa-a","alg":"RS256"}"#), Err(JwtError::HeaderDuplicateMember)),
        case("alg twice, one escaped", rs256_header(r#"{"alg":"RS256","kid":"rsa-a","\u0061lg":"RS256"}"#), Err(JwtError::HeaderDuplicateMember)),
        case("alg rs256", rs256_header(&header("rs256", "rsa-a")), Err(JwtError::AlgNotAllowed)),
        case("alg Rs256", rs256_header(&header("Rs256", "rsa-a")), Err(JwtError::AlgNotAllowed)),
        case("alg with a trailing space", rs256_header(&header("RS256 ", "rsa-a")), Err(JwtError::AlgNotAllowed)),
        case("alg none, with a signature", rs256_header(&header("none", "rsa-a")), Err(JwtError::AlgNotAllowed)),
        case("alg None, with a signature", rs256_header(&header("None", "rsa-a")), Err(JwtError::AlgNotAllowed)),
        // The classic unsecured form fails rule 1 first: its signature segment is empty.
        case("alg none, unsigned", mint::unsigned(r#"{"alg":"none"}"#, &claims), Err(JwtError::BadFormat)),
        case("no alg", rs256_header(r#"{"kid":"rsa-a"}"#), Err(JwtError::HeaderMissingAlg)),
        case("alg a number", rs256_header(r#"{"alg":256,"kid":"rsa-a"}"#), Err(JwtError::HeaderBadAlg)),
        case("alg an array", rs256_header(r#"{"alg":["RS256"],"kid":"rsa-a"}"#), Err(JwtError::HeaderBadAlg)),
        case("kid a number", rs256_header(r#"{"alg":"RS256","kid":7}"#), Err(JwtError::HeaderBadKid)),
        case("kid null", rs256_header(r#"{"alg":"RS256","kid":null}"#), Err(JwtError::HeaderBadKid)),
        case("crit names an extension", rs256_header(r#"{"alg":"RS256","kid":"rsa-a","crit":["exp"],"exp":1}"#), Err(JwtError::CritNotSupported)),
        case("crit empty", rs256_header(r#"{"alg":"RS256","kid":"rsa-a","crit":[]}"#), Err(JwtError::HeaderBadCrit)),
        case("crit names alg", rs256_header(r#"{"alg":"RS256","kid":"rsa-a","crit":["alg"]}"#), Err(JwtError::HeaderBadCrit)),
        case("crit names an absent member", rs256_header(r#"{"alg":"RS256","kid":"rsa-a","crit":["b64"]}"#), Err(JwtError::HeaderBadCrit)),
    ];
    // Members that locate a key are never used: the attacker's key, embedded or pointed to, signs
    // in vain; the same header over a signature by the provider's key passes.
    let attacker = TestKey::RsaB.jwk("rsa-a", Some("RS256"));
    let locating = [
        ("jwk, no kid", json!({"alg": "RS256", "jwk": attacker})),
        ("jwk under the provider's kid", json!({"alg": "RS256", "kid": "rsa-a", "jwk": attacker})),
        ("jku", json!({"alg": "RS256", "kid": "rsa-a", "jku": "https://attacker.example/jwks.json"})),
        ("x5u", json!({"alg": "RS256", "kid": "rsa-a", "x5u": "https://attacker.example/key.pem"})),
        (
            "x5c",
            json!({"alg": "RS256", "kid": "rsa-a", "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]}),
        ),
    ];
    for (name, header) in locating {
        let header = header.to_string();
        let by_attacker = sign(&header, &claims, TestKey::RsaB, "RS256");
        cases.push(case(format!("{name}, signed by the attacker"), by_attacker, Err(JwtError::BadSignature)));
        cases.push(case(format!("{name}, signed by the provider"), rs256_header(&header), Ok(())));
    }
    let own_kid =
        json!({"alg": "RS256", "kid": "attacker", "jwk": TestKey::RsaB.jwk("attacker", None)}).to_string();
    cases.push(case(
        "jwk with its own kid",
        sign(&own_kid, &claims, TestKey::RsaB, "RS256"),
        Err(JwtError::UnknownKid),
    ));
    check("2 (header)", cases);
}

#[test]
fn rule_3_claims() {
    let with = |name: &str, value: &str| rs256(&claims_with(&[(name, Some(value))]));
    let without = |name: &str| rs256(&claims_with(&[(name, None)]));
    let at = |offset: i64| (NOW + offset).to_string();
    let nested = |depth: usize| with("x", &format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
    let not_utf8 = format!("{}.{}", b64(header("RS256", "rsa-a").as_bytes()), b64(b"{\"sub\":\"\xff\"}"));
    let skew = |clock_skew_seconds| Policy { clock_skew_seconds, ..policy() };
    let require_exp = Policy { require_expiration: true, ..policy() };
    let max_hour = Policy { max_lifetime_seconds: Some(3600), ..policy() };
    #[rustfmt::skip]
    let cases = vec![
        case("the usual claims", good(), Ok(())),
        case("payload not JSON", rs256("foo"), Err(JwtError::PayloadParse)),
        case("payload a JSON array", rs256("[]"), Err(JwtError::PayloadParse)),
        case("payload a JSON string", rs256("\"claims\""), Err(JwtError::PayloadParse)),
        case("payload not UTF-8", sign_input(&not_utf8, TestKey::RsaA, "RS256"), Err(JwtError::PayloadParse)),
        case("payload after a BOM", rs256(&format!("\u{feff}{}", claims())), Err(JwtError::PayloadParse)),
        case("sub twice", rs256(r#"{"iss":"https://issuer.example","aud":"api","sub":"a","sub":"b"}"#), Err(JwtError::PayloadDuplicateMember)),
        case("exp twice, one escaped", with("\\u0065xp", "1"), Err(JwtError::PayloadDuplicateMember)),
        case("duplicate member deep inside", with("x", r#"[{"y":1,"y":2}]"#), Err(JwtError::PayloadDuplicateMember)),
        case("nested 16 deep", nested(15), Ok(())),
        case("nested 17 deep", nested(16), Err(JwtError::PayloadParse)),
        case("iss a number", with("iss", "1"), Err(JwtError::BadIss)),
        case("sub a number", with("sub", "1"), Err(JwtError::BadSub)),
        case("aud a number", with("aud", "1"), Err(JwtError::BadAud)),
        case("aud with a number inside", with("aud", r#"["api",1]"#), Err(JwtError::BadAud)),
        case("exp a string", with("exp", &format!("\"{}\"", at(3600))), Err(JwtError::BadExp)),
        case("exp null", with("exp", "null"), Err(JwtError::BadExp)),
        case("nbf a boolean", with("nbf", "true"), Err(JwtError::BadNbf)),
        case("iat a string", with("iat", "\"now\""), Err(JwtError::BadIat)),
        case("exp 59 s ago, within the 60 s skew", with("exp", &at(-59)), Ok(())),
        case("exp 60 s ago", with("exp", &at(-60)), Err(JwtError::Expired)),
        case("exp 0", with("exp", "0"), Err(JwtError::Expired)),
        case("exp i64::MIN", with("exp", "-9223372036854775808"), Err(JwtError::Expired)),
        case("exp i64::MAX", with("exp", "9223372036854775807"), Ok(())),
        case("exp i64::MAX + 1", with("exp", "9223372036854775808"), Err(JwtError::BadExp)),
        case("exp 1e400, beyond f64", with("exp", "1e400"), Err(JwtError::PayloadParse)),
        case("exp in exponent form", with("exp", "1.7000036e9"), Ok(())),
        case("exp now, no skew", with("exp", &at(0)), Err(JwtError::Expired)).policy(skew(0)),
        case("exp in 1 s, no skew", with("exp", &at(1)), Ok(())).policy(skew(0)),
        case("skew u64::MAX, exp i64::MAX: no overflow", with("exp", "9223372036854775807"), Ok(()))
            .policy(skew(u64::MAX)),
        case("skew u64::MAX, nbf i64::MAX: no overflow", with("nbf", "9223372036854775807"), Ok(()))
            .policy(skew(u64::MAX)),
        case("nbf in 60 s, within the skew", with("nbf", &at(60)), Ok(())),
        case("nbf in 61 s", with("nbf", &at(61)), Err(JwtError::NotYetValid)),
        case("no exp", without("exp"), Ok(())),
        case("no exp, expiration required", without("exp"), Err(JwtError::MissingExp)).policy(require_exp),
        case("iat a day ahead", with("iat", &at(86_400)), Ok(())),
        case("lifetime exactly max_lifetime", good(), Ok(())).policy(max_hour.clone()),
        case("lifetime 1 s over", with("exp", &at(3601)), Err(JwtError::LifetimeTooLong)).policy(max_hour.clone()),
        case("max_lifetime and no iat", without("iat"), Err(JwtError::MissingIat)).policy(max_hour.clone()),
        case("max_lifetime and no exp", without("exp"), Err(JwtError::MissingExp)).policy(max_hour),
    ];
    check("3 (claims)", cases);
}

#[test]
fn rule_4_issuer_and_audience() {
    let with = |name: &str, value: &str| rs256(&claims_with(&[(name, Some(value))]));
    let without = |name: &str| rs256(&claims_with(&[(name, None)]));
    let any_issuer = Policy { issuer: None, ..policy() };
    let any_audience = Policy { audiences: Vec::new(), ..policy() };
    let two_audiences = Policy { audiences: vec!["other".into(), AUD.into()], ..policy() };
    #[rustfmt::skip]
    let cases = vec![
        case("iss exact", good(), Ok(())),
        case("iss with a trailing slash", with("iss", "\"https://issuer.example/\""), Err(JwtError::IssuerNotAllowed)),
        case("iss in upper case", with("iss", "\"HTTPS://ISSUER.EXAMPLE\""), Err(JwtError::IssuerNotAllowed)),
        case("iss with a leading space", with("iss", "\" https://issuer.example\""), Err(JwtError::IssuerNotAllowed)),
        case("iss of another provider", with("iss", "\"https://other.example\""), Err(JwtError::IssuerNotAllowed)),
        case("no iss", without("iss"), Err(JwtError::IssuerNotAllowed)),
        case("no issuer configured: any iss", with("iss", "\"https://other.example\""), Ok(())).policy(any_issuer),
        case("aud a string", good(), Ok(())),
        case("aud an array holding it", with("aud", r#"["other","api"]"#), Ok(())),
        case("aud in upper case", with("aud", "\"API\""), Err(JwtError::AudienceNotAllowed)),
        case("aud with a trailing slash", with("aud", "\"api/\""), Err(JwtError::AudienceNotAllowed)),
        case("aud an array without it", with("aud", r#"["other","apis"]"#), Err(JwtError::AudienceNotAllowed)),
        case("aud empty string", with("aud", "\"\""), Err(JwtError::AudienceNotAllowed)),
        case("no aud", without("aud"), Err(JwtError::MissingAudience)),
        case("aud an empty array", with("aud", "[]"), Err(JwtError::MissingAudience)),
        case("no audience configured: no aud needed", without("aud"), Ok(())).policy(any_audience),
        case("the second configured audience", good(), Ok(())).policy(two_audiences),
    ];
    check("4 (issuer and audience)", cases);
}

/// A fixture's public JWK with members replaced or added (`Value::Null` removes one).
fn jwk(key: TestKey, kid: &str, members: &[(&str, Value)]) -> Value {
    let mut jwk = key.jwk(kid, None);
    let object = jwk.as_object_mut().unwrap();
    for (name, value) in members {
        match value {
            Value::Null => object.remove(*name),
            _ => object.insert((*name).to_owned(), value.clone()),
        };
    }
    jwk
}

#[test]
fn rule_5_keys() {
    let claims = claims();
    let by = |header: &str, key: TestKey, alg: &str| sign(header, &claims, key, alg);
    let no_kid = |alg: &str| format!(r#"{{"alg":"{alg}"}}"#);
    let rs256_by = |kid: &str, key: TestKey| by(&header("RS256", kid), key, "RS256");
    let no_kids = parse(&mint::jwks_of([
        jwk(TestKey::RsaA, "", &[("kid", Value::Null)]),
        jwk(TestKey::RsaB, "", &[("kid", Value::Null)]),
    ]));
    let bound = parse(&mint::jwks_of([jwk(TestKey::RsaA, "rsa-a", &[("alg", json!("RS256"))])]));
    let intended_use = parse(&mint::jwks_of([
        jwk(TestKey::RsaA, "rsa-a", &[("use", json!("enc"))]),
        jwk(TestKey::Rsa3072, "rsa-3072", &[("key_ops", json!(["sign"]))]),
        jwk(TestKey::P256A, "ec-a", &[("use", json!("sig")), ("key_ops", json!(["verify"]))]),
    ]));
    #[rustfmt::skip]
    let cases = vec![
        case("kid rsa-a", good(), Ok(())),
        case("kid in upper case", rs256_by("RSA-A", TestKey::RsaA), Err(JwtError::UnknownKid)),
        case("kid with a trailing space", rs256_by("rsa-a ", TestKey::RsaA), Err(JwtError::UnknownKid)),
        case("empty kid", rs256_by("", TestKey::RsaA), Err(JwtError::UnknownKid)),
        case("kid unknown", rs256_by("rsa-b", TestKey::RsaB), Err(JwtError::UnknownKid)),
        case("kid of an EC key on an RS256 token", rs256_by("ec-a", TestKey::RsaA), Err(JwtError::NoMatchingKey)),
        // With a kid only that key is tried, though another key in the set would verify.
        case("kid rsa-a, signed by rsa-3072", rs256_by("rsa-a", TestKey::Rsa3072), Err(JwtError::BadSignature)),
        case("no kid, signed by rsa-a", by(&no_kid("RS256"), TestKey::RsaA, "RS256"), Ok(())),
        case("no kid, signed by rsa-3072, the second RSA key", by(&no_kid("PS256"), TestKey::Rsa3072, "PS256"), Ok(())),
        case("no kid, ES384", by(&no_kid("ES384"), TestKey::P384, "ES384"), Ok(())),
        case("no kid, EdDSA", by(&no_kid("EdDSA"), TestKey::Ed25519, "EdDSA"), Ok(())),
        case("no kid, signed by a key not in the set", by(&no_kid("RS256"), TestKey::RsaB, "RS256"), Err(JwtError::BadSignature)),
        case("two RSA keys without kid, the second signs", by(&no_kid("RS256"), TestKey::RsaB, "RS256"), Ok(()))
            .keys(&no_kids),
        case("two RSA keys without kid, token names a kid", rs256_by("rsa-a", TestKey::RsaA), Err(JwtError::UnknownKid))
            .keys(&no_kids),
        case("kty does not fit: ES256 token, RSA keys", by(&no_kid("ES256"), TestKey::P256A, "ES256"), Err(JwtError::NoMatchingKey))
            .keys(&no_kids),
        case("key alg RS256, RS256 token", good(), Ok(())).keys(&bound),
        case("key alg RS256, PS256 token", by(&header("PS256", "rsa-a"), TestKey::RsaA, "PS256"), Err(JwtError::NoMatchingKey))
            .keys(&bound),
        case("key alg RS256, PS256 token without kid", by(&no_kid("PS256"), TestKey::RsaA, "PS256"), Err(JwtError::NoMatchingKey))
            .keys(&bound),
        // Keys not meant for verifying are skipped, so they are not in the set at all.
        case("key with use enc", good(), Err(JwtError::UnknownKid)).keys(&intended_use),
        case("key with key_ops [sign]", rs256_by("rsa-3072", TestKey::Rsa3072), Err(JwtError::UnknownKid)).keys(&intended_use),
        case("no kid, only RSA keys not for verifying", by(&no_kid("RS256"), TestKey::RsaA, "RS256"), Err(JwtError::NoMatchingKey))
            .keys(&intended_use),
        case("use sig and key_ops [verify]", by(&header("ES256", "ec-a"), TestKey::P256A, "ES256"), Ok(())).keys(&intended_use),
        case("no key set yet", good(), Err(JwtError::UnknownKid)).keys(&KeySet::default()),
    ];
    check("5 (keys)", cases);
}

#[test]
fn rule_6_jwks() {
    let hmac_secret = b"a shared secret, in a public key set";
    let bad_keys = [
        json!({"kty": "oct", "kid": "hmac", "k": b64(hmac_secret)}),
        TestKey::Rsa1024TooSmall.jwk("small", None),
        jwk(TestKey::RsaB, "private", &[("d", json!("AQ"))]),
        jwk(TestKey::P256B, "enc", &[("use", json!("enc"))]),
        jwk(TestKey::P256B, "p521", &[("crv", json!("P-521"))]),
        json!("not a key"),
    ];
    let expected_skips = [
        (0, Some("hmac"), KeySkip::SymmetricKey),
        (1, Some("small"), KeySkip::RsaModulusTooSmall),
        (2, Some("private"), KeySkip::PrivateKeyMaterial),
        (3, Some("enc"), KeySkip::UseNotSig),
        (4, Some("p521"), KeySkip::UnsupportedCurve),
        (5, None, KeySkip::NotAnObject),
    ];
    let skips = |skipped: &[jwt_authn_wasm::jwks::SkippedKey]| -> Vec<(usize, Option<String>, KeySkip)> {
        skipped.iter().map(|s| (s.index, s.kid.clone(), s.reason)).collect()
    };
    let expected: Vec<_> =
        expected_skips.iter().map(|(i, kid, r)| (*i, kid.map(str::to_owned), *r)).collect();

    // Only bad keys: the set is refused as a whole, with every key's reason.
    let Err(JwksError::NoUsableKey(skipped)) = KeySet::parse(mint::jwks_of(bad_keys.clone()).as_bytes())
    else {
        panic!("a set without a usable key was accepted");
    };
    assert_eq!(skips(&skipped), expected);

    // One good key among them: it is kept and serves, the others are skipped with their reasons.
    let mixed = KeySet::parse(
        mint::jwks_of(bad_keys.into_iter().chain([TestKey::RsaA.jwk("rsa-a", None)])).as_bytes(),
    )
    .unwrap();
    assert_eq!(skips(&mixed.skipped), expected);
    let keys = mixed.keys;
    assert_eq!(keys.iter().map(|k| k.kid.as_deref()).collect::<Vec<_>>(), [Some("rsa-a")]);
    let claims = claims();
    let hs256_input = format!("{}.{}", b64(header("HS256", "hmac").as_bytes()), b64(claims.as_bytes()));
    let hs256 = format!("{hs256_input}.{}", b64(&hmac::hmac_sha256(hmac_secret, hs256_input.as_bytes())));
    #[rustfmt::skip]
    let cases = vec![
        case("the good key", good(), Ok(())).keys(&keys),
        case("the 1024-bit key's token", sign(&header("RS256", "small"), &claims, TestKey::Rsa1024TooSmall, "RS256"), Err(JwtError::UnknownKid))
            .keys(&keys),
        case("the private key's token", sign(&header("RS256", "private"), &claims, TestKey::RsaB, "RS256"), Err(JwtError::UnknownKid))
            .keys(&keys),
        case("no kid, signed by the 1024-bit key", sign(r#"{"alg":"RS256"}"#, &claims, TestKey::Rsa1024TooSmall, "RS256"), Err(JwtError::BadSignature))
            .keys(&keys),
        case("HS256 with the oct key's secret", hs256, Err(JwtError::AlgNotAllowed)).keys(&keys),
    ];
    check("6 (JWKS)", cases);
}

/// RSASSA-PSS by `rsa-a` over `input` with a chosen salt length.
fn pss_signature(alg: &str, salt: usize, input: &[u8]) -> Vec<u8> {
    let Key::Rsa(private) = TestKey::RsaA.key() else { unreachable!("rsa-a is an RSA key") };
    let signed = match alg {
        "PS256" => private.sign(rsa::Pss::<Sha256>::new_with_salt(salt), &Sha256::digest(input)),
        "PS384" => private.sign(rsa::Pss::<Sha384>::new_with_salt(salt), &Sha384::digest(input)),
        "PS512" => private.sign(rsa::Pss::<Sha512>::new_with_salt(salt), &Sha512::digest(input)),
        _ => unreachable!("{alg}"),
    };
    signed.unwrap()
}

/// The P-256 group order n, big-endian.
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
/// The Ed25519 group order L, little-endian (as Ed25519 encodes scalars).
const ED25519_ORDER_LE: &str = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";

/// The ECDSA cases: raw R||S of the exact size, r and s in [1, n-1], high-S accepted.
fn ecdsa_cases() -> Vec<Case> {
    let es256 = sign(&header("ES256", "ec-a"), &claims(), TestKey::P256A, "ES256");
    let sig = p256::ecdsa::Signature::from_slice(&signature(&es256)).unwrap();
    let (r, s) = sig.split_scalars();
    let high_s = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    // Exactly one of the two is high-S (normalising changes it), and both are valid ECDSA.
    assert_ne!(sig.normalize_s() == sig, high_s.normalize_s() == high_s);
    let (r, s, n, zero) = (r.to_bytes().to_vec(), s.to_bytes().to_vec(), hex(P256_ORDER), [0u8; 32]);
    let raw = sig.to_bytes().to_vec();
    let es384 = sign(&header("ES384", "ec-384"), &claims(), TestKey::P384, "ES384");
    let sig384 = p384::ecdsa::Signature::from_slice(&signature(&es384)).unwrap();
    let (r384, s384) = sig384.split_scalars();
    let high_s384 = p384::ecdsa::Signature::from_scalars(r384.to_bytes(), (-*s384).to_bytes()).unwrap();
    let with = |bytes: &[u8]| with_signature(&es256, bytes);
    vec![
        case("ES256 as signed", &es256, Ok(())),
        case("ES256 with s replaced by n - s", with(&high_s.to_bytes()), Ok(())),
        case("ES256 in DER", with(sig.to_der().as_bytes()), Err(JwtError::BadSignature)),
        case("ES256, 63 bytes", with(&raw[..63]), Err(JwtError::BadSignature)),
        case("ES256, a zero byte appended", with(&[&raw[..], &[0]].concat()), Err(JwtError::BadSignature)),
        case("ES256, r = 0", with(&[&zero[..], &s].concat()), Err(JwtError::BadSignature)),
        case("ES256, s = 0", with(&[&r[..], &zero].concat()), Err(JwtError::BadSignature)),
        case("ES256, r = n", with(&[&n[..], &s].concat()), Err(JwtError::BadSignature)),
        case("ES256, s = n", with(&[&r[..], &n].concat()), Err(JwtError::BadSignature)),
        case("ES384 as signed", &es384, Ok(())),
        case("ES384 with s replaced by n - s", with_signature(&es384, &high_s384.to_bytes()), Ok(())),
        case(
            "ES384 with an ES256-sized signature",
            with_signature(&es384, &raw),
            Err(JwtError::BadSignature),
        ),
    ]
}

/// The EdDSA cases: `verify_strict` refuses a non-canonical S (S + L encodes the same scalar).
fn eddsa_cases() -> Vec<Case> {
    let eddsa = sign(&header("EdDSA", "ed"), &claims(), TestKey::Ed25519, "EdDSA");
    let sig = signature(&eddsa);
    let mut s_plus_l = sig.clone();
    let mut carry = 0u16;
    for (byte, l) in s_plus_l[32..].iter_mut().zip(hex(ED25519_ORDER_LE)) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes");
    let mut r_flipped = sig;
    r_flipped[0] ^= 1;
    vec![
        case("EdDSA as signed", &eddsa, Ok(())),
        case("EdDSA with S + L", with_signature(&eddsa, &s_plus_l), Err(JwtError::BadSignature)),
        case(
            "EdDSA with a bit of R flipped",
            with_signature(&eddsa, &r_flipped),
            Err(JwtError::BadSignature),
        ),
    ]
}

#[test]
fn rule_7_signatures() {
    let good = good();
    let [_, p, s] = segments(&good);
    let sig = signature(&good);
    // The same header and claims, encoded differently: the signature covers the bytes as received.
    let reordered = format!("{}.{p}.{s}", b64(br#"{"kid":"rsa-a","alg":"RS256"}"#));
    let spaced = format!("{}.{p}.{s}", b64(br#"{"alg": "RS256", "kid": "rsa-a"}"#));
    let reencoded_claims = mint::swap_payload(&good, &claims().replace(',', ", "));
    // PKCS#1 v1.5 is deterministic: with this jti, rsa-a's RS256 signature starts with a zero byte.
    let leading_zero = rs256(&claims_with(&[("jti", Some("396"))]));
    let lz_sig = signature(&leading_zero);
    assert_eq!((lz_sig.len(), lz_sig[0]), (256, 0));
    let ps256 = sign(&header("PS256", "rsa-a"), &claims(), TestKey::RsaA, "PS256");
    #[rustfmt::skip]
    let mut cases = vec![
        case("as received", &good, Ok(())),
        case("header members reordered", reordered, Err(JwtError::BadSignature)),
        case("header with spaces", spaced, Err(JwtError::BadSignature)),
        case("claims with spaces", reencoded_claims, Err(JwtError::BadSignature)),
        case("RS256 signature with a leading zero byte", &leading_zero, Ok(())),
        case("that leading zero stripped (255 bytes)", with_signature(&leading_zero, &lz_sig[1..]), Err(JwtError::BadSignature)),
        case("RS256, a zero byte prepended (257 bytes)", with_signature(&good, &[&[0], &sig[..]].concat()), Err(JwtError::BadSignature)),
        case("RS256, a zero byte appended", with_signature(&good, &[&sig[..], &[0]].concat()), Err(JwtError::BadSignature)),
        case("RS256, last byte dropped", with_signature(&good, &sig[..255]), Err(JwtError::BadSignature)),
        case("PS256, a zero byte prepended", with_signature(&ps256, &[&[0], &signature(&ps256)[..]].concat()), Err(JwtError::BadSignature)),
    ];
    // RSASSA-PSS: the salt is exactly as long as the hash (RFC 7518 §3.5), never auto-detected.
    for (alg, hash_len) in [("PS256", 32), ("PS384", 48), ("PS512", 64)] {
        let input = format!("{}.{}", b64(header(alg, "rsa-a").as_bytes()), b64(claims().as_bytes()));
        for salt in [hash_len, 0, 20, hash_len - 1, hash_len + 1] {
            let token = format!("{input}.{}", b64(&pss_signature(alg, salt, input.as_bytes())));
            let expected = if salt == hash_len { Ok(()) } else { Err(JwtError::BadSignature) };
            cases.push(case(format!("{alg} with a {salt}-byte salt"), token, expected));
        }
    }
    cases.extend(ecdsa_cases());
    cases.extend(eddsa_cases());
    check("7 (signatures)", cases);
}

#[test]
fn rule_8_algorithm_allow_list() {
    // The default allow-list is every asymmetric algorithm this verifier knows; `none` and HMAC
    // are not algorithms here at all, so no configuration can allow them.
    assert_eq!(Policy::default().algorithms, AlgorithmSet::all());
    for name in ["none", "HS256", "HS384", "HS512"] {
        assert_eq!(Algorithm::from_name(name), None, "{name}");
    }
    let signer = |alg: Algorithm| match alg.key_kind() {
        KeyKind::Rsa => (TestKey::RsaA, "rsa-a"),
        KeyKind::P256 => (TestKey::P256A, "ec-a"),
        KeyKind::P384 => (TestKey::P384, "ec-384"),
        KeyKind::Ed25519 => (TestKey::Ed25519, "ed"),
    };
    let token = |alg: Algorithm| {
        let (key, kid) = signer(alg);
        sign(&header(alg.name(), kid), &claims(), key, alg.name())
    };
    let only_es256 = Policy { algorithms: [Algorithm::ES256].into_iter().collect(), ..policy() };
    let nothing = Policy { algorithms: AlgorithmSet::EMPTY, ..policy() };
    let mut cases: Vec<Case> = Algorithm::ALL
        .into_iter()
        .map(|alg| case(format!("{alg}, default allow-list"), token(alg), Ok(())))
        .collect();
    cases.extend([
        case("ES256, only ES256 allowed", token(Algorithm::ES256), Ok(())).policy(only_es256.clone()),
        case("RS256, only ES256 allowed", token(Algorithm::RS256), Err(JwtError::AlgNotAllowed))
            .policy(only_es256.clone()),
        case("EdDSA, only ES256 allowed", token(Algorithm::EdDSA), Err(JwtError::AlgNotAllowed))
            .policy(only_es256),
        case("RS256, empty allow-list", token(Algorithm::RS256), Err(JwtError::AlgNotAllowed))
            .policy(nothing),
    ]);
    // The classic confusion: an HS256 token whose MAC key is the RSA public key, in any form an
    // attacker can fetch. A verifier that fed the public key to HMAC would accept it.
    for (name, secret) in rsa_public_key_forms() {
        for header in [header("HS256", "rsa-a"), r#"{"alg":"HS256"}"#.to_owned()] {
            let input = format!("{}.{}", b64(header.as_bytes()), b64(claims().as_bytes()));
            let token = format!("{input}.{}", b64(&hmac::hmac_sha256(&secret, input.as_bytes())));
            cases.push(case(
                format!("HS256 keyed with {name}, {header}"),
                token,
                Err(JwtError::AlgNotAllowed),
            ));
        }
    }
    check("8 (algorithms)", cases);
}

/// `rsa-a`'s public key as the bytes an attacker might try as an HMAC secret.
fn rsa_public_key_forms() -> Vec<(&'static str, Vec<u8>)> {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let Key::Rsa(private) = TestKey::RsaA.key() else { unreachable!("rsa-a is an RSA key") };
    let public = private.to_public_key();
    vec![
        ("the PEM", public.to_public_key_pem(LineEnding::LF).unwrap().into_bytes()),
        ("the DER", public.to_public_key_der().unwrap().as_bytes().to_vec()),
        ("the JWK text", TestKey::RsaA.jwk("rsa-a", None).to_string().into_bytes()),
        ("the JWKS document", mint::jwks(&PROVIDER).into_bytes()),
        ("the modulus", public.n_bytes().to_vec()),
    ]
}

#[test]
fn a_verified_token_carries_what_was_received() {
    let good = good();
    let verified = verify::verify(&good, &provider_keys(), &policy(), NOW).unwrap();
    assert_eq!(verified.payload_b64, segments(&good)[1]);
    assert_eq!((verified.header.alg, verified.header.kid.as_deref()), (Algorithm::RS256, Some("rsa-a")));
    assert_eq!(verified.claims.iss.as_deref(), Some(ISS));
    assert_eq!(verified.claims.aud, [AUD]);
    assert_eq!(verified.claims.all.len(), 4);
}

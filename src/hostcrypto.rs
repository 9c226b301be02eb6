//! The pure half of host crypto: what goes to Envoy's `verify_signature` foreign function and what
//! its answer means. The call itself is made by the shell (`filter::crypto`); everything here is
//! plain data, tested natively.
//!
//! The function runs BoringSSL `EVP_DigestVerify` over a key given as SubjectPublicKeyInfo DER
//! (built once per key by `jwks`). RSA keys verify PKCS#1 v1.5 only, so RS256/384/512 go to the
//! host and PS* stay in Rust; EC keys take a DER `ECDSA-Sig-Value`, so the JWS `R||S` of
//! ES256/ES384 is converted first; Ed25519 does not work there at all, so EdDSA stays in Rust.
//! The host enforces no policy (it takes 512-bit RSA keys and `sha1`): every check of
//! `crypto::check_shape` runs before a call, and the hash name comes from the algorithm.
//!
//! Wire format (Envoy `source/extensions/common/wasm/ext/verify_signature.proto`), hand-encoded:
//! `VerifySignatureArguments { string hash_function = 1; bytes public_key = 2; bytes signature = 3;
//! bytes text = 4; string public_key_pem = 5; }` (field 5 is never sent: DER is cheaper to import)
//! and the answer `VerifySignatureResult { bool result = 1; string error = 2; }`.

use crate::alg::{Algorithm, KeyKind};
use crate::jwks::{Jwk, KeySet};
use std::borrow::Cow;

/// The foreign function's name.
pub const FUNCTION: &str = "verify_signature";

/// The error the host answers (with `result = false`) when it cannot import a key; a signature
/// that does not verify gets another ("Failed to verify digest. Error code: 0").
pub const KEY_NOT_IMPORTED: &str = "Failed to initialize digest verify.";

/// The text and signature of the key check: any key the host imports refuses this signature (a
/// DER `ECDSA-Sig-Value` with r = s = 1, and the wrong length for any RSA key), so the only
/// question the answer settles is whether the key was imported.
const KEY_CHECK_TEXT: &[u8] = b"key check";
const KEY_CHECK_SIGNATURE: [u8; 8] = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
const VARINT: u64 = 0;
const I64: u64 = 1;
const LEN: u64 = 2;
const I32: u64 = 5;
/// A varint has at most 10 octets (64 bits, 7 per octet).
const MAX_VARINT_OCTETS: usize = 10;

/// The hash name the host is given for `alg`, or `None` when `alg` never goes to the host
/// (PS*: the host's RSA verify is PKCS#1 v1.5 only; EdDSA and Ed25519: unsupported there).
pub fn hash_name(alg: Algorithm) -> Option<&'static str> {
    match alg {
        Algorithm::RS256 | Algorithm::ES256 => Some("sha256"),
        Algorithm::RS384 | Algorithm::ES384 => Some("sha384"),
        Algorithm::RS512 => Some("sha512"),
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => None,
        Algorithm::EdDSA | Algorithm::Ed25519 => None,
    }
}

/// The encoded arguments to verify `signature` over `text` with `key` on the host, or `None` when
/// this goes to Rust: `alg` is not for the host, the key has no SPKI (Ed25519, or withdrawn
/// because the host could not import it), or the key does not fit `alg`. The caller has run
/// `crypto::check_shape` already.
pub fn arguments(alg: Algorithm, key: &Jwk, text: &[u8], signature: &[u8]) -> Option<Vec<u8>> {
    let hash = hash_name(alg)?;
    if key.key.kind() != alg.key_kind() {
        return None;
    }
    let signature = match alg.key_kind() {
        KeyKind::Rsa => Cow::Borrowed(signature),
        KeyKind::P256 | KeyKind::P384 => Cow::Owned(ecdsa_der(signature)?),
        KeyKind::Ed25519 => return None,
    };
    Some(encode_arguments(hash, key.spki()?, &signature, text))
}

/// The arguments of the check run once per key when a key set is adopted, or `None` for a key
/// that never goes to the host. See [`key_imported`] for the answer.
pub fn key_check_arguments(key: &Jwk) -> Option<Vec<u8>> {
    let alg = match key.key.kind() {
        KeyKind::Rsa => Algorithm::RS256,
        KeyKind::P256 => Algorithm::ES256,
        KeyKind::P384 => Algorithm::ES384,
        KeyKind::Ed25519 => return None,
    };
    Some(encode_arguments(hash_name(alg)?, key.spki()?, &KEY_CHECK_SIGNATURE, KEY_CHECK_TEXT))
}

/// Whether the answer to [`key_check_arguments`] shows the key imported: the dummy signature was
/// refused, for another reason than the key. A host that accepts the dummy is not trusted with it.
pub fn key_imported(answer: &Answer) -> bool {
    !answer.result && answer.error != KEY_NOT_IMPORTED
}

/// Whether the host refused a verification because it could not import the key (not because the
/// signature is bad): then Rust must decide. A key a key set holds was checked when the set was
/// adopted (`key_check_arguments`); a DPoP proof's key arrives with its request and was not.
pub fn key_not_imported(answer: &Answer) -> bool {
    !answer.result && answer.error == KEY_NOT_IMPORTED
}

/// `VerifySignatureArguments` with fields 1 to 4.
fn encode_arguments(hash: &str, spki: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let fields: [(u64, &[u8]); 4] = [(1, hash.as_bytes()), (2, spki), (3, signature), (4, text)];
    let mut out = Vec::with_capacity(fields.iter().map(|(_, b)| b.len() + 1 + MAX_VARINT_OCTETS).sum());
    for (number, bytes) in fields {
        put_varint(&mut out, number << 3 | LEN);
        put_varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A decoded `VerifySignatureResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// True only when the host verified the signature.
    pub result: bool,
    /// The host's reason when `result` is false (empty when absent).
    pub error: String,
}

/// Decodes the host's answer. Unknown fields are skipped; `None` for anything malformed (a
/// truncated field, an overlong varint, a known field with the wrong wire type, groups), which the
/// caller treats as a failed call. `result` is true only for the value 1 (the only encoding of
/// `true`), so a garbled answer never verifies a signature.
pub fn decode_answer(bytes: &[u8]) -> Option<Answer> {
    let mut answer = Answer::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let tag = take_varint(&mut rest)?;
        match (tag >> 3, tag & 7) {
            (1, VARINT) => answer.result = take_varint(&mut rest)? == 1,
            (2, LEN) => answer.error = String::from_utf8_lossy(take_len(&mut rest)?).into_owned(),
            (0..=2, _) => return None,
            (_, VARINT) => {
                take_varint(&mut rest)?;
            }
            (_, I64) => {
                take(&mut rest, 8)?;
            }
            (_, LEN) => {
                take_len(&mut rest)?;
            }
            (_, I32) => {
                take(&mut rest, 4)?;
            }
            _ => return None,
        }
    }
    Some(answer)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = rest.split_at_checked(n)?;
    *rest = tail;
    Some(head)
}

fn take_len<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_varint(rest)?).ok()?;
    take(rest, len)
}

fn take_varint(rest: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, byte) in rest.iter().take(MAX_VARINT_OCTETS).enumerate() {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * i as u32;
        // The tenth octet may only carry the 64th bit.
        if i == MAX_VARINT_OCTETS - 1 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            *rest = rest.get(i + 1..)?;
            return Some(value);
        }
    }
    None
}

/// The JWS signature `R||S` (RFC 7518 §3.4) as a DER `ECDSA-Sig-Value` (RFC 3279 §2.2.3):
/// `SEQUENCE { INTEGER r, INTEGER s }`, each INTEGER minimal (no leading zero octets but the one a
/// set top bit needs). `None` for an empty or odd-length input.
pub fn ecdsa_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 6);
    der_integer(&mut body, r);
    der_integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    der_length(&mut out, body.len());
    out.extend_from_slice(&body);
    Some(out)
}

/// An unsigned big-endian magnitude as a DER INTEGER.
fn der_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let first = magnitude.iter().position(|b| *b != 0).unwrap_or(magnitude.len());
    let digits = magnitude.get(first..).unwrap_or_default();
    // Zero is one 0x00 octet; a set top bit would read as negative, so a 0x00 goes first.
    let pad = digits.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    der_length(out, digits.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
}

/// A DER length: short form below 128, else the minimal long form.
fn der_length(out: &mut Vec<u8>, len: usize) {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let octets = len.to_be_bytes();
            let first = octets.iter().position(|b| *b != 0).unwrap_or(octets.len());
            let significant = octets.get(first..).unwrap_or_default();
            out.push(0x80 | significant.len() as u8);
            out.extend_from_slice(significant);
        }
    }
}

/// One built-in vector for detecting host support: a signature the host must accept (`valid`) or
/// refuse. Detection needs both kinds, so a host that answers `true` to everything is not trusted.
#[derive(Debug, Clone)]
pub struct KnownAnswer {
    pub alg: Algorithm,
    pub key: Jwk,
    pub text: &'static [u8],
    pub signature: Vec<u8>,
    pub valid: bool,
}

/// The self-test keys: made for this purpose only, their private halves discarded, so they verify
/// nothing but the vectors below.
const KNOWN_ANSWER_JWKS: &str = r#"{"keys":[
{"kty":"RSA","kid":"rsa","e":"AQAB","n":"smJ9uGOhdwYEZjE_2vB9BQOOggABhZlB476GzUwcxFynu9LyDL4pUEjQ0uY4ccMAcGlaKwD1o8_MyacSfdc8ngfgJUfudJo9aKk71iRsxKu9vEYw31e-UZEoG7_HVS5UnmwbQnX3SSVS_5T74ir_dqbiwejmrcTZF2C_MWEV9KoK6RNgNYem0hTl2nH_lG8E_PtM9cSM_h1DusVy5TeXBMZoMIR6_VUk23VGOGA9FQMcebj4W7mmdsJFoAptTJpcck67of6f6NZrViMb_hwXxDIETOxuxT19hw9uWBBbXahQFas9AFtLm_zjPPjtUtMtFlc0ZhOwoh7f3TLzWCMMAw"},
{"kty":"EC","kid":"p256","crv":"P-256","x":"yWgBhi4Kgq6txfHcoNwB6pgak_Iv41wwghG5UGdZq9I","y":"xKWcQcu03pcSKDn95qysel5AbApmk_rJPvr4kktjD1I"},
{"kty":"EC","kid":"p384","crv":"P-384","x":"igm3F_ED5aKpVcVPpz6XhboajosYQ5tRWaIkMqOBuWeowChHq2hpkkbyFF8PDpnj","y":"csRvrmZRW1jTAhT4K0SXcEfFYpju8FmJqNAxeJTqfMY6JpH9Dasz6Lt4YS-w4ama"}
]}"#;

/// What every self-test signature signs; the refused vectors use the same signatures over
/// [`KNOWN_ANSWER_OTHER_TEXT`].
const KNOWN_ANSWER_TEXT: &[u8] = b"jwt-authn-wasm host crypto self-test";
const KNOWN_ANSWER_OTHER_TEXT: &[u8] = b"jwt-authn-wasm host crypto self-tesT";

/// One signature per algorithm the host handles: (alg, kid, base64url signature over the text).
const KNOWN_ANSWER_SIGNATURES: [(Algorithm, &str, &str); 5] = [
    (
        Algorithm::RS256,
        "rsa",
        "ZxxgQtPkSMjsEkZ53dNYtlo2t_PLZcxTrU0KVX0kIVDcetjrXxh6LpcA1UZLVdaRh0QfppMRr4thvJi5Wvr5-Qpt6rGP4mwySQ1Y8NdY0JZU_1fpKjjm-MhMLPmrSiEDE6uDQsYy8j2Ve9J9IFqwu9bY5KMNjAtjD5KcUMUm3RdJbVoMY73fmHb-EBSA52XrkFlvXv-0M5ZMdJd3tMmTuhzgQq1HVY08xcmj9QYnYWm8jJqOavxf4_ZP2zY5wtAuUJc5_pIEKrOfvs7uCorfWXG3iyAxRE9GS9JXgfs3hCQ2mBo0pFDgCG0X6R2sxyl5qOlLwnkL2Zwvm9KLkeLDJg",
    ),
    (
        Algorithm::RS384,
        "rsa",
        "ett0VJ-7V4c5cg1u30wqNSPcb4h0k4IE1Oxu0ZI0gAlzpxCOnk6pXUVLJcZEMe40omBDq42PsaCPdDDEP52N846vAyxNb5Gfv1fGD2h8w1cyyjzv3k-3nuusLrSngjJTvLQIDo6C_ZUMMK57WNI9NmlyPZa7Uq2DwtKGdExZTvp-kxYgJY-eIg28T3lXYI8eOpWkIAqPFrvgS2lEYz8CDo4ZA3aHq8-riUVvGknQRIvgCN_cEBAoei5Qz_isSWW27ZExM0MCaOQyTynSApvO3KS1AGXUCuuUXWGLBGeDVVKFVoQAaGHnzLpznxLWXPrrx9pzzTwHxYbEx0OquoifUQ",
    ),
    (
        Algorithm::RS512,
        "rsa",
        "CQjDtHK5jZ_XrRYDhintRI-eOp4FcBLuNI3mSdFG5QD14JsEOq7jPylzgH1Re-7pmI3Q56o2klrmFX9UlYBPxBuxqbyvz6eBtrNookA_KcSI7BA05erWBDphObuAlEQRljaT7iH9T3eZ0FZ0pRv0VPi-CpGpVICMjA6BzN4Kf9aIhNqgrhttXMFX9pXSMnl2u9FwpEQE2ssdrmKsYgZnd9nL7214v98xZC80PSnmxz6THk-9zxET-gQp-AEKdKXmyajCNz0Oyf1_-CSz__5UVZhSC7gKt11bGDF4fqVuLyXnTiP2VfPtsnLCs42GKDMDKGS_xsKMCNOAxZH9ra0LXQ",
    ),
    (
        Algorithm::ES256,
        "p256",
        "t0K24-B0jcY8UBAxpeh4QWbzAP5HaiVYlySlQQsZNsGixn_g2MZs2uniRKZFeKC813uCr6piK8q4X_xoa1N4uA",
    ),
    (
        Algorithm::ES384,
        "p384",
        "kJptLU7rluBSVsa3sRjXXOpp1Ge7OeC23cMbvioLugi4cRpyRCJwn_FXBfkuCTyLxYpaj2BwdKacTPobS_uaXQG6dVd2BYWWrKaBEqadz2x_PpO2NaMBIe0y4WT16-JI",
    ),
];

/// The self-test: for every algorithm the host handles, one signature it must accept and the same
/// signature over another text, which it must refuse. Empty only if the embedded data were broken
/// (a unit test says they are not); the caller then treats the host as unsupported.
pub fn known_answers() -> Vec<KnownAnswer> {
    let Ok(parsed) = KeySet::parse(KNOWN_ANSWER_JWKS.as_bytes()) else { return Vec::new() };
    let mut answers = Vec::new();
    for (alg, kid, signature) in KNOWN_ANSWER_SIGNATURES {
        let key = parsed.keys.iter().find(|k| k.kid.as_deref() == Some(kid));
        let (Some(key), Some(signature)) = (key, crate::token::b64url_decode(signature)) else {
            return Vec::new();
        };
        for (text, valid) in [(KNOWN_ANSWER_TEXT, true), (KNOWN_ANSWER_OTHER_TEXT, false)] {
            answers.push(KnownAnswer { alg, key: key.clone(), text, signature: signature.clone(), valid });
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Crypto, RustCrypto, check_shape};
    use crate::jwks::PublicKey;
    use crate::jwks::test_keys;
    use p256::ecdsa::signature::Signer;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn hash_names_come_from_the_algorithm() {
        use Algorithm::*;
        let expected = [
            (RS256, Some("sha256")),
            (RS384, Some("sha384")),
            (RS512, Some("sha512")),
            (ES256, Some("sha256")),
            (ES384, Some("sha384")),
            (PS256, None),
            (PS384, None),
            (PS512, None),
            (EdDSA, None),
            (Ed25519, None),
        ];
        assert_eq!(expected.len(), Algorithm::ALL.len());
        for (alg, name) in expected {
            assert_eq!(hash_name(alg), name, "{alg}");
        }
    }

    /// A minimal protobuf reader for the tests: every (field number, wire type, payload) in order.
    fn fields(mut bytes: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let tag = take_varint(&mut bytes).unwrap();
            assert_eq!(tag & 7, LEN);
            out.push((tag >> 3, LEN, take_len(&mut bytes).unwrap().to_vec()));
        }
        out
    }

    #[test]
    fn arguments_encode_fields_one_to_four() {
        let key = Jwk::from_key(PublicKey::P256(*test_keys::p256("p256-a").verifying_key()));
        let raw = [[0x11u8; 32], [0x22u8; 32]].concat();
        let text = vec![b'x'; 300]; // a length that needs a two-octet varint
        let args = arguments(Algorithm::ES256, &key, &text, &raw).unwrap();
        let decoded = fields(&args);
        assert_eq!(
            decoded,
            vec![
                (1, LEN, b"sha256".to_vec()),
                (2, LEN, key.spki().unwrap().to_vec()),
                (3, LEN, ecdsa_der(&raw).unwrap()),
                (4, LEN, text.clone()),
            ]
        );
        // Field 4's length, 300, is the varint ac 02.
        let text_tag = args.len() - 300 - 3;
        assert_eq!(&args[text_tag..text_tag + 3], &[0x22, 0xac, 0x02]);
    }

    #[test]
    fn arguments_only_for_what_the_host_does() {
        let rsa = Jwk::from_key(PublicKey::Rsa(test_keys::rsa("rsa2048-a").to_public_key()));
        let p256 = Jwk::from_key(PublicKey::P256(*test_keys::p256("p256-a").verifying_key()));
        let p384 = Jwk::from_key(PublicKey::P384(*test_keys::p384().verifying_key()));
        let ed = Jwk::from_key(PublicKey::Ed25519(test_keys::ed25519().verifying_key()));
        let sig = |n: usize| vec![1u8; n];
        use Algorithm::*;
        #[rustfmt::skip]
        let cases: [(Algorithm, &Jwk, usize, Option<&str>); 13] = [
            (RS256, &rsa, 256, Some("sha256")),
            (RS384, &rsa, 256, Some("sha384")),
            (RS512, &rsa, 256, Some("sha512")),
            (ES256, &p256, 64, Some("sha256")),
            (ES384, &p384, 96, Some("sha384")),
            (PS256, &rsa, 256, None),
            (PS512, &rsa, 256, None),
            (EdDSA, &ed, 64, None),
            (Ed25519, &ed, 64, None),
            (ES256, &p384, 64, None),
            (ES384, &p256, 96, None),
            (RS256, &p256, 256, None),
            (ES256, &rsa, 64, None),
        ];
        for (alg, key, len, hash) in cases {
            let args = arguments(alg, key, b"text", &sig(len));
            assert_eq!(args.map(|a| fields(&a)[0].2.clone()), hash.map(|h| h.as_bytes().to_vec()), "{alg}");
        }
        // An RSA signature goes as is.
        let args = arguments(RS256, &rsa, b"text", &sig(256)).unwrap();
        assert_eq!(fields(&args)[2].2, sig(256));
        // A key whose SPKI was withdrawn stays in Rust.
        let mut set =
            KeySet::parse(&test_keys::jwks(&[test_keys::p256_jwk(&test_keys::p256("p256-a"))])).unwrap().keys;
        set.withdraw_spki(|_| true);
        let withdrawn = set.iter().next().unwrap();
        assert_eq!(arguments(ES256, withdrawn, b"text", &sig(64)), None);
        assert_eq!(key_check_arguments(withdrawn), None);
    }

    #[test]
    fn key_check_uses_a_signature_no_key_accepts() {
        for (key, hash) in [
            (Jwk::from_key(PublicKey::Rsa(test_keys::rsa("rsa2048-a").to_public_key())), "sha256"),
            (Jwk::from_key(PublicKey::P256(*test_keys::p256("p256-a").verifying_key())), "sha256"),
            (Jwk::from_key(PublicKey::P384(*test_keys::p384().verifying_key())), "sha384"),
        ] {
            let decoded = fields(&key_check_arguments(&key).unwrap());
            assert_eq!(decoded[0].2, hash.as_bytes());
            assert_eq!(decoded[1].2, key.spki().unwrap());
            assert_eq!(decoded[2].2, KEY_CHECK_SIGNATURE);
        }
        // r = s = 1, DER-encoded: what ecdsa_der gives for the raw form.
        assert_eq!(ecdsa_der(&[0, 1, 0, 1]).unwrap(), KEY_CHECK_SIGNATURE);
        let ed = Jwk::from_key(PublicKey::Ed25519(test_keys::ed25519().verifying_key()));
        assert_eq!(key_check_arguments(&ed), None);

        let answer = |result: bool, error: &str| Answer { result, error: error.to_owned() };
        assert!(key_imported(&answer(false, "Failed to verify digest. Error code: 0")));
        assert!(!key_imported(&answer(false, KEY_NOT_IMPORTED)));
        assert!(!key_imported(&answer(true, "")), "a host that accepts the dummy is not trusted");
        assert!(key_not_imported(&answer(false, KEY_NOT_IMPORTED)));
        assert!(!key_not_imported(&answer(false, "Failed to verify digest. Error code: 0")));
        assert!(!key_not_imported(&answer(true, KEY_NOT_IMPORTED)), "an acceptance is the host's verdict");
    }

    #[test]
    fn answers_decode() {
        let ok = Answer { result: true, error: String::new() };
        let refused = |e: &str| Answer { result: false, error: e.to_owned() };
        let mut long_error = vec![0x12, 0x80, 0x01];
        long_error.extend(vec![b'e'; 128]);
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<u8>, Option<Answer>)> = vec![
            ("true", vec![0x08, 0x01], Some(ok.clone())),
            ("empty: all defaults", vec![], Some(refused(""))),
            ("false with error", [&[0x08, 0x00, 0x12, 0x03][..], b"bad"].concat(), Some(refused("bad"))),
            ("error only", [&[0x12, 0x03][..], b"bad"].concat(), Some(refused("bad"))),
            ("two-octet length", long_error, Some(refused(&"e".repeat(128)))),
            ("non-minimal varint 1", vec![0x08, 0x81, 0x00], Some(ok.clone())),
            ("last value wins", vec![0x08, 0x01, 0x08, 0x00], Some(refused(""))),
            ("2 is not true", vec![0x08, 0x02], Some(refused(""))),
            ("2^32+1 is not true", vec![0x08, 0x81, 0x80, 0x80, 0x80, 0x10], Some(refused(""))),
            ("unknown varint field", vec![0x18, 0x05, 0x08, 0x01], Some(ok.clone())),
            ("unknown fixed64", vec![0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 0x01], Some(ok.clone())),
            ("unknown bytes", vec![0x2a, 0x02, 0xff, 0xff, 0x08, 0x01], Some(ok.clone())),
            ("unknown fixed32", vec![0x35, 1, 2, 3, 4, 0x08, 0x01], Some(ok.clone())),
            ("invalid UTF-8 error", vec![0x12, 0x01, 0xff], Some(refused("\u{fffd}"))),
            ("truncated varint", vec![0x08], None),
            ("truncated varint value", vec![0x08, 0x80], None),
            ("truncated bytes", vec![0x12, 0x05, b'a'], None),
            ("truncated fixed64", vec![0x21, 1, 2, 3], None),
            ("result as bytes", vec![0x0a, 0x01, 0x01], None),
            ("error as varint", vec![0x10, 0x01], None),
            ("field 0", vec![0x00, 0x01], None),
            ("group", vec![0x1b, 0x1c], None),
            ("wire type 7", vec![0x1f, 0x00], None),
            ("eleven-octet varint", [vec![0x08], vec![0x80; 10], vec![0x01]].concat(), None),
            ("tenth octet overflows", [vec![0x08], vec![0xff; 9], vec![0x02]].concat(), None),
            ("length beyond usize", [vec![0x12], vec![0xff; 9], vec![0x01]].concat(), None),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(decode_answer(&bytes), expected, "{name}");
        }
    }

    #[test]
    fn decode_never_panics_on_garbage() {
        // Every prefix of real answers, and a deterministic stream of noise.
        let real = [&[0x08, 0x01, 0x12, 0x03][..], b"bad", &[0x2a, 0x02, 0xff, 0xff]].concat();
        for end in 0..=real.len() {
            let _ = decode_answer(&real[..end]);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (state >> (i % 8 * 8)) as u8 ^ i as u8).collect();
            if let Some(answer) = decode_answer(&bytes) {
                // True only through an explicit field 1 with value 1.
                assert!(!answer.result || bytes.contains(&0x08) || bytes.contains(&0x88), "{bytes:?}");
            }
        }
    }

    #[test]
    fn ecdsa_der_matches_the_p256_and_p384_encoders() {
        let p256_key = test_keys::p256("p256-a");
        let p384_key = test_keys::p384();
        let mut high_bit = [0usize; 2];
        for i in 0..400u32 {
            let msg = format!("message {i}");
            let sig: p256::ecdsa::Signature = p256_key.sign(msg.as_bytes());
            assert_eq!(ecdsa_der(&sig.to_bytes()).unwrap(), sig.to_der().as_bytes(), "P-256 {i}");
            high_bit[0] += usize::from(sig.to_bytes()[0] & 0x80 != 0);
            high_bit[1] += usize::from(sig.to_bytes()[0] == 0);
            if i % 4 == 0 {
                let sig: p384::ecdsa::Signature = p384_key.sign(msg.as_bytes());
                assert_eq!(ecdsa_der(&sig.to_bytes()).unwrap(), sig.to_der().as_bytes(), "P-384 {i}");
            }
        }
        // Both the padded (top bit set) and the shortened (leading zero) forms were exercised.
        assert!(high_bit[0] > 100 && high_bit[1] > 0, "{high_bit:?}");
    }

    #[test]
    fn ecdsa_der_edge_values() {
        #[rustfmt::skip]
        let cases: [(Vec<u8>, &str); 6] = [
            ([[0u8; 32], [0u8; 32]].concat(), "3006020100020100"),
            ([[0xffu8; 32], [0x01u8; 32]].concat(),
             "3045022100ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
              02200101010101010101010101010101010101010101010101010101010101010101"),
            ([vec![0u8; 31], vec![0x7f], vec![0u8; 30], vec![0x00, 0x80]].concat(), "300702017f02020080"),
            (vec![0x80, 0x01], "300702020080020101"),
            (vec![0x01; 2], "3006020101020101"),
            ([[0xffu8; 66], [0xffu8; 66]].concat(), ""),
        ];
        for (raw, expected) in &cases[..5] {
            assert_eq!(ecdsa_der(raw).unwrap(), hex(expected), "{expected}");
        }
        // P-521-sized halves need the long form of the SEQUENCE length (2 × 69 = 138 octets).
        let long = ecdsa_der(&cases[5].0).unwrap();
        assert_eq!(&long[..3], &[0x30, 0x81, 138]);
        assert_eq!(long.len(), 3 + 138);
        for bad in [&[][..], &[1, 2, 3][..]] {
            assert_eq!(ecdsa_der(bad), None);
        }
    }

    #[test]
    fn known_answers_are_right_by_rust_and_fit_the_policy() {
        let answers = known_answers();
        assert_eq!(answers.len(), 2 * KNOWN_ANSWER_SIGNATURES.len());
        for case in &answers {
            assert!(hash_name(case.alg).is_some(), "{}", case.alg);
            assert_eq!(check_shape(case.alg, &case.key.key, &case.signature), Ok(()), "{}", case.alg);
            let verdict = RustCrypto.verify(case.alg, &case.key, case.text, &case.signature);
            assert_eq!(verdict.is_ok(), case.valid, "{} valid={}", case.alg, case.valid);
            assert!(arguments(case.alg, &case.key, case.text, &case.signature).is_some());
        }
        // Every algorithm the host handles is covered, both ways.
        for alg in Algorithm::ALL.into_iter().filter(|a| hash_name(*a).is_some()) {
            let covered = |valid| answers.iter().any(|c| c.alg == alg && c.valid == valid);
            assert!(covered(true) && covered(false), "{alg}");
        }
    }
}

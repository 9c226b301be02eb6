//! Published JWS examples, copied verbatim, through the public API:
//! - RFC 7515 appendix A: A.2 (RS256) and A.3 (ES256) are JWTs, verified with `verify::verify`
//!   until their `exp` (2011-03-22) and refused as expired after it; A.1 (HS256) and A.5 (unsecured)
//!   are refused.
//! - RFC 7520 §4 (the JOSE cookbook): the payload is text, not a claim set, so the signatures are
//!   checked with `token::decode_jws` and `verify::check_signature`. §4.1 (RS256) and §4.2 (PS384)
//!   verify with the §3.3 key; §4.3 (ES512, P-521) and §4.4 (HS256) are out of scope and refused, as
//!   are their keys (§3.1, §3.5); §4.5 (detached content) has no payload in compact form.
//! - RFC 8037 appendix A.4: the Ed25519 example, with the A.2 key.
//!
//! Keys come in as JWKs through `KeySet::parse`. Every character matters: a wrong one in a token or
//! a key makes its signature fail, so each accepted example also proves its own transcription. The
//! refused HMAC examples are checked with a real HMAC, so they too are known to be exact.

#[path = "common/hmac.rs"]
mod hmac;
#[path = "support/mint.rs"]
mod mint;

use jwt_authn_wasm::alg::{Algorithm, AlgorithmSet};
use jwt_authn_wasm::claims::NumericDate;
use jwt_authn_wasm::crypto::RustCrypto;
use jwt_authn_wasm::error::JwtError;
use jwt_authn_wasm::jwks::{JwksError, KeySet, KeySkip};
use jwt_authn_wasm::policy::{DEFAULT_MAX_TOKEN_BYTES, Policy};
use jwt_authn_wasm::token::{self, b64url_decode};
use jwt_authn_wasm::verify;
use serde_json::json;

/// RFC 7515 A.2.1: the RSA key, public members only.
const RFC7515_A2_JWK: &str = concat!(
    r#"{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPM"#,
    "EzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5",
    "z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-",
    r#"DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"}"#,
);

/// RFC 7515 A.2.1: the JWS Compact Serialization, as the RFC breaks its lines.
const RFC7515_A2: &str = concat!(
    "eyJhbGciOiJSUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt",
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7",
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4",
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K",
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv",
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB",
    "p0igcN_IoypGlUPQGe77Rw",
);

/// RFC 7515 A.3.1: the P-256 key, public members only.
const RFC7515_A3_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

/// RFC 7515 A.3.1: the JWS Compact Serialization.
const RFC7515_A3: &str = concat!(
    "eyJhbGciOiJFUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt",
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
);

/// RFC 7515 A.1.1: the HMAC key.
const RFC7515_A1_JWK: &str = concat!(
    r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZ"#,
    r#"r1Z9CAow"}"#,
);

/// RFC 7515 A.1.1: the JWS Compact Serialization (header `{"typ":"JWT",\r\n "alg":"HS256"}`).
const RFC7515_A1: &str = concat!(
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt",
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
);

/// RFC 7515 A.5: the Unsecured JWS (header `{"alg":"none"}`, empty signature).
const RFC7515_A5: &str = concat!(
    "eyJhbGciOiJub25lIn0",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt",
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
);

/// The `exp` of every RFC 7515 example: 2011-03-22T18:43:00Z.
const RFC7515_EXP: i64 = 1_300_819_380;

/// RFC 7520 §3.3: the RSA public key (no `alg`: one key for RS256 and PS384 alike).
const RFC7520_RSA_JWK: &str = concat!(
    r#"{"kty":"RSA","kid":"bilbo.baggins@hobbiton.example","use":"sig","n":"n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLw"#,
    "UBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcE",
    "e6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCu",
    "EHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc",
    r#"5gHdrNP5zw","e":"AQAB"}"#,
);

/// RFC 7520 §3.1: the EC P-521 public key.
const RFC7520_EC_JWK: &str = concat!(
    r#"{"kty":"EC","kid":"bilbo.baggins@hobbiton.example","use":"sig","crv":"P-521","#,
    r#""x":"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt","#,
    r#""y":"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"}"#,
);

/// RFC 7520 §3.5: the symmetric (HMAC) key.
const RFC7520_OCT_JWK: &str = concat!(
    r#"{"kty":"oct","kid":"018c0ae5-4d9b-471b-bfd6-eef314bc7037","use":"sig","alg":"HS256","#,
    r#""k":"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"}"#,
);

/// RFC 7520 §4: the payload every signature example signs (with U+2019 apostrophes).
const RFC7520_PAYLOAD: &str = "It\u{2019}s a dangerous business, Frodo, going out your door. You step onto \
    the road, and if you don't keep your feet, there\u{2019}s no knowing where you might be swept off to.";

/// RFC 7520 §4.1.3: RSA v1.5 (RS256), compact serialization.
const RFC7520_4_1: &str = concat!(
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZX",
    "hhbXBsZSJ9",
    ".",
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IH",
    "lvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBk",
    "b24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcm",
    "UgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4",
    ".",
    "MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmK",
    "ZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4J",
    "IwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8w",
    "W1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluP",
    "xUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_f",
    "cIe8u9ipH84ogoree7vjbU5y18kDquDg",
);

/// RFC 7520 §4.2.3: RSA-PSS (PS384), compact serialization.
const RFC7520_4_2: &str = concat!(
    "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZX",
    "hhbXBsZSJ9",
    ".",
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IH",
    "lvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBk",
    "b24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcm",
    "UgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4",
    ".",
    "cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2I",
    "pN6-tPid6VrklHkqsGqDqHCdP6O8TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXU",
    "vdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRX",
    "e8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT",
    "0qI0n6uiP1aCN_2_jLAeQTlqRHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a",
    "6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw",
);

/// RFC 7520 §4.3.3: ECDSA (ES512, P-521), compact serialization.
const RFC7520_4_3: &str = concat!(
    "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZX",
    "hhbXBsZSJ9",
    ".",
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IH",
    "lvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBk",
    "b24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcm",
    "UgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4",
    ".",
    "AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvb",
    "u9Plon7KRTzoNEuT4Va2cmL1eJAQy3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kv",
    "AD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2",
);

/// RFC 7520 §4.4.3: HMAC-SHA2 (HS256), compact serialization.
const RFC7520_4_4: &str = concat!(
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LW",
    "VlZjMxNGJjNzAzNyJ9",
    ".",
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IH",
    "lvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBk",
    "b24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcm",
    "UgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4",
    ".",
    "s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0",
);

/// RFC 7520 §4.5.3: HS256 with detached content, compact serialization: the payload segment is
/// empty because the content travels elsewhere (RFC 7515 appendix F).
const RFC7520_4_5: &str = concat!(
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LW",
    "VlZjMxNGJjNzAzNyJ9",
    ".",
    ".",
    "s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0",
);

/// RFC 8037 A.2: the Ed25519 public key.
const RFC8037_JWK: &str =
    r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

/// RFC 8037 A.4: the Ed25519 JWS (payload "Example of Ed25519 signing").
const RFC8037_A4: &str = concat!(
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6",
    "dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
);

/// A key set of one JWK, through the public parser.
fn key_set(jwk: &str) -> KeySet {
    let parsed = KeySet::parse(format!(r#"{{"keys":[{jwk}]}}"#).as_bytes()).unwrap();
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    parsed.keys
}

/// Why a one-JWK set is refused.
fn skip_reason(jwk: &str) -> KeySkip {
    match KeySet::parse(format!(r#"{{"keys":[{jwk}]}}"#).as_bytes()) {
        Err(JwksError::NoUsableKey(skipped)) if skipped.len() == 1 => skipped[0].reason,
        other => panic!("{jwk}: {other:?}"),
    }
}

/// `decode_jws` (all algorithms allowed) and `check_signature`: for examples whose payload is text.
fn check_jws(jws: &str, keys: &KeySet) -> Result<(), JwtError> {
    let decoded = token::decode_jws(jws, AlgorithmSet::all(), DEFAULT_MAX_TOKEN_BYTES)?;
    verify::check_signature(&RustCrypto, &decoded, keys)
}

/// The HMAC-SHA-256 of a compact JWS's signing input under a JWK's `k` equals its signature.
fn mac_is_valid(jws: &str, oct_jwk: &str) -> bool {
    let jwk: serde_json::Value = serde_json::from_str(oct_jwk).unwrap();
    let key = b64url_decode(jwk["k"].as_str().unwrap()).unwrap();
    let (input, signature) = jws.rsplit_once('.').unwrap();
    hmac::hmac_sha256(&key, input.as_bytes()) == b64url_decode(signature).unwrap()
}

/// RFC 7515's JWT examples: valid up to their `exp` (with the default 60 s skew), then expired;
/// the claims come through; a changed signature or a narrower allow-list is refused.
fn check_rfc7515_jwt(token: &str, jwk: &str, alg: Algorithm) {
    let keys = key_set(jwk);
    let policy = Policy::default();
    let verified = verify::verify(token, &keys, &policy, RFC7515_EXP - 1).unwrap();
    assert_eq!((verified.header.alg, verified.header.kid), (alg, None));
    assert_eq!(verified.claims.iss.as_deref(), Some("joe"));
    assert_eq!(verified.claims.exp, Some(NumericDate::from_secs(RFC7515_EXP)));
    assert_eq!(verified.claims.all["http://example.com/is_root"], json!(true));
    assert_eq!(verified.payload_b64, token.split('.').nth(1).unwrap());

    let at = |now: i64, policy: &Policy| verify::verify(token, &keys, policy, now).map(|_| ());
    let no_skew = Policy { clock_skew_seconds: 0, ..Policy::default() };
    assert_eq!(at(0, &policy), Ok(()));
    assert_eq!(at(RFC7515_EXP + 59, &policy), Ok(()));
    assert_eq!(at(RFC7515_EXP + 60, &policy), Err(JwtError::Expired));
    assert_eq!(at(RFC7515_EXP - 1, &no_skew), Ok(()));
    assert_eq!(at(RFC7515_EXP, &no_skew), Err(JwtError::Expired));
    assert_eq!(at(1_700_000_000, &policy), Err(JwtError::Expired));
    let issuer = |iss: &str| Policy { issuer: Some(iss.into()), ..Policy::default() };
    assert_eq!(at(RFC7515_EXP - 1, &issuer("joe")), Ok(()));
    assert_eq!(at(RFC7515_EXP - 1, &issuer("Joe")), Err(JwtError::IssuerNotAllowed));
    let others = Policy { algorithms: Algorithm::ALL.into_iter().filter(|a| *a != alg).collect(), ..policy };
    assert_eq!(at(RFC7515_EXP - 1, &others), Err(JwtError::AlgNotAllowed));

    let tampered = mint::tamper(token);
    let verify_tampered = |now| verify::verify(&tampered, &keys, &Policy::default(), now).map(|_| ());
    assert_eq!(verify_tampered(RFC7515_EXP - 1), Err(JwtError::BadSignature));
    // Claims are checked before the signature: an expired token costs no signature check.
    assert_eq!(verify_tampered(RFC7515_EXP + 60), Err(JwtError::Expired));
}

#[test]
fn rfc7515_a2_rs256() {
    check_rfc7515_jwt(RFC7515_A2, RFC7515_A2_JWK, Algorithm::RS256);
}

#[test]
fn rfc7515_a3_es256() {
    check_rfc7515_jwt(RFC7515_A3, RFC7515_A3_JWK, Algorithm::ES256);
}

#[test]
fn rfc7515_a5_unsecured_is_refused() {
    let keys = key_set(RFC7515_A2_JWK);
    let at = |token: &str| verify::verify(token, &keys, &Policy::default(), RFC7515_EXP - 1).map(|_| ());
    // Rule 1 comes first: the empty signature segment is not the compact form this verifier takes.
    assert_eq!(at(RFC7515_A5), Err(JwtError::BadFormat));
    // With any signature at all (here A.2's), `none` is refused by the allow-list, which can never
    // contain it: `Algorithm` has no `none`.
    let with_signature = format!("{RFC7515_A5}{}", RFC7515_A2.rsplit_once('.').unwrap().1);
    assert_eq!(at(&with_signature), Err(JwtError::AlgNotAllowed));
    assert_eq!(Algorithm::from_name("none"), None);
}

#[test]
fn rfc7515_a1_hs256_is_refused() {
    // The example is exact (its MAC verifies under its key), and refused all the same.
    assert!(mac_is_valid(RFC7515_A1, RFC7515_A1_JWK));
    let keys = key_set(RFC7515_A2_JWK);
    assert_eq!(
        verify::verify(RFC7515_A1, &keys, &Policy::default(), RFC7515_EXP - 1).map(|_| ()),
        Err(JwtError::AlgNotAllowed)
    );
    assert_eq!(skip_reason(RFC7515_A1_JWK), KeySkip::SymmetricKey);
}

#[test]
fn rfc7520_rs256_and_ps384_verify() {
    let keys = key_set(RFC7520_RSA_JWK);
    for (jws, alg) in [(RFC7520_4_1, Algorithm::RS256), (RFC7520_4_2, Algorithm::PS384)] {
        assert_eq!(check_jws(jws, &keys), Ok(()), "{alg}");
        let decoded = token::decode_jws(jws, AlgorithmSet::all(), DEFAULT_MAX_TOKEN_BYTES).unwrap();
        assert_eq!(decoded.header.alg, alg);
        assert_eq!(decoded.header.kid.as_deref(), Some("bilbo.baggins@hobbiton.example"));
        assert_eq!(decoded.payload, RFC7520_PAYLOAD.as_bytes());
        assert_eq!(check_jws(&mint::tamper(jws), &keys), Err(JwtError::BadSignature), "{alg}");
        // A JWS, not a JWT: the whole verifier refuses the text payload as claims.
        let policy = Policy::default();
        assert_eq!(verify::verify(jws, &keys, &policy, 0).map(|_| ()), Err(JwtError::PayloadParse));
    }
    // Rule 5: bound to RS256 by its `alg`, the same key no longer serves the PS384 example.
    let bound = key_set(&RFC7520_RSA_JWK.replacen(r#""use":"sig""#, r#""use":"sig","alg":"RS256""#, 1));
    assert_eq!(check_jws(RFC7520_4_1, &bound), Ok(()));
    assert_eq!(check_jws(RFC7520_4_2, &bound), Err(JwtError::NoMatchingKey));
}

#[test]
fn rfc7520_es512_and_hmac_are_refused() {
    // Out of scope: ES512 (P-521) and HMAC. Tokens are refused by the allow-list, keys by the parser.
    let rsa = key_set(RFC7520_RSA_JWK);
    assert_eq!(check_jws(RFC7520_4_3, &rsa), Err(JwtError::AlgNotAllowed));
    assert_eq!(skip_reason(RFC7520_EC_JWK), KeySkip::UnsupportedCurve);
    assert!(mac_is_valid(RFC7520_4_4, RFC7520_OCT_JWK));
    assert_eq!(check_jws(RFC7520_4_4, &rsa), Err(JwtError::AlgNotAllowed));
    assert_eq!(skip_reason(RFC7520_OCT_JWK), KeySkip::SymmetricKey);
    // §4.5, detached content: the compact form has an empty payload segment, so it cannot be
    // verified as it stands (and is HS256 besides); rule 1 refuses it first. Reattached, it is §4.4.
    assert_eq!(check_jws(RFC7520_4_5, &rsa), Err(JwtError::BadFormat));
    let (header, signature) = RFC7520_4_5.split_once("..").unwrap();
    let payload = RFC7520_4_4.split('.').nth(1).unwrap();
    assert_eq!(format!("{header}.{payload}.{signature}"), RFC7520_4_4);
}

#[test]
fn rfc8037_ed25519_verifies() {
    let keys = key_set(RFC8037_JWK);
    assert_eq!(check_jws(RFC8037_A4, &keys), Ok(()));
    let decoded = token::decode_jws(RFC8037_A4, AlgorithmSet::all(), DEFAULT_MAX_TOKEN_BYTES).unwrap();
    assert_eq!(decoded.payload, b"Example of Ed25519 signing");
    assert_eq!(check_jws(&mint::tamper(RFC8037_A4), &keys), Err(JwtError::BadSignature));
}

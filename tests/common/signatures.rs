//! The Wycheproof signature suites (ECDSA, RSASSA-PKCS1-v1_5, RSASSA-PSS, EdDSA) as this filter
//! meets them: each group's public key as a JWK, and either the one JWS algorithm whose parameters
//! are exactly the group's (its cases get Wycheproof's verdict, the strict one for "acceptable"),
//! or the rule by which no JWS algorithm has them (every case must then be refused, whatever `alg`
//! a token names). Shared by the pure-Rust run (`wycheproof_signatures.rs`) and the host run
//! (`e2e_hostcrypto.rs`), so both judge the same groups the same way.
// Each test file includes this module and uses only part of it.
#![allow(dead_code)]

use super::wycheproof::{self, Expected};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_authn_wasm::alg::Algorithm;
use serde_json::{Value, json};
use std::fmt;

/// Every suite file the filter is tested on (upstream names): 14 ECDSA, 24 RSASSA-PKCS1-v1_5,
/// 26 RSASSA-PSS (all the crate has), 2 EdDSA. Left out: ECDSA over curves no JWK can name
/// (brainpool, secp160/192/224), and the DER and SHA-3 ECDSA files beyond one DER file for each
/// supported curve (the P1363 files above already show those hashes refused).
pub const SUITES: [&str; 66] = [
    // ES256, ES384 (raw R||S, as JWS signs), then the same curves with other hashes.
    "ecdsa_secp256r1_sha256_p1363_test.json",
    "ecdsa_secp384r1_sha384_p1363_test.json",
    "ecdsa_secp256r1_sha512_p1363_test.json",
    "ecdsa_secp256r1_shake128_p1363_test.json",
    "ecdsa_secp384r1_sha512_p1363_test.json",
    "ecdsa_secp384r1_shake256_p1363_test.json",
    // The DER signatures of ES256's and ES384's parameters: never a JWS signature.
    "ecdsa_secp256r1_sha256_test.json",
    "ecdsa_secp384r1_sha384_test.json",
    // Curves a JWK can name (RFC 7518, RFC 8812) that this filter does not take.
    "ecdsa_secp521r1_sha512_p1363_test.json",
    "ecdsa_secp521r1_shake256_p1363_test.json",
    "ecdsa_secp256k1_sha256_p1363_test.json",
    "ecdsa_secp256k1_sha512_p1363_test.json",
    "ecdsa_secp256k1_shake128_p1363_test.json",
    "ecdsa_secp256k1_shake256_p1363_test.json",
    // RSASSA-PKCS1-v1_5: RS256/384/512 for 2048 to 8192 bits, then the other hashes.
    "rsa_signature_2048_sha256_test.json",
    "rsa_signature_2048_sha384_test.json",
    "rsa_signature_2048_sha512_test.json",
    "rsa_signature_3072_sha256_test.json",
    "rsa_signature_3072_sha384_test.json",
    "rsa_signature_3072_sha512_test.json",
    "rsa_signature_4096_sha256_test.json",
    "rsa_signature_4096_sha384_test.json",
    "rsa_signature_4096_sha512_test.json",
    "rsa_signature_8192_sha256_test.json",
    "rsa_signature_8192_sha384_test.json",
    "rsa_signature_8192_sha512_test.json",
    "rsa_signature_2048_sha224_test.json",
    "rsa_signature_2048_sha512_224_test.json",
    "rsa_signature_2048_sha512_256_test.json",
    "rsa_signature_2048_sha3_224_test.json",
    "rsa_signature_2048_sha3_256_test.json",
    "rsa_signature_2048_sha3_384_test.json",
    "rsa_signature_2048_sha3_512_test.json",
    "rsa_signature_3072_sha512_256_test.json",
    "rsa_signature_3072_sha3_256_test.json",
    "rsa_signature_3072_sha3_384_test.json",
    "rsa_signature_3072_sha3_512_test.json",
    "rsa_signature_4096_sha512_256_test.json",
    // RSASSA-PSS: PS256/384/512 (MGF1 with the same hash, salt = hash length), then every other
    // hash, MGF1 hash and salt length the crate has.
    "rsa_pss_2048_sha256_mgf1_32_test.json",
    "rsa_pss_2048_sha256_mgf1_32_params_test.json",
    "rsa_pss_3072_sha256_mgf1_32_test.json",
    "rsa_pss_3072_sha256_mgf1_32_params_test.json",
    "rsa_pss_4096_sha256_mgf1_32_test.json",
    "rsa_pss_2048_sha384_mgf1_48_test.json",
    "rsa_pss_4096_sha384_mgf1_48_test.json",
    "rsa_pss_4096_sha512_mgf1_64_test.json",
    "rsa_pss_4096_sha512_mgf1_64_params_test.json",
    "rsa_pss_2048_sha1_mgf1_20_test.json",
    "rsa_pss_2048_sha1_mgf1_20_params_test.json",
    "rsa_pss_2048_sha256_mgf1_0_test.json",
    "rsa_pss_2048_sha256_mgf1_0_params_test.json",
    "rsa_pss_2048_sha256_mgf1sha1_20_test.json",
    "rsa_pss_2048_sha512_224_mgf1_28_test.json",
    "rsa_pss_2048_sha512_256_mgf1_32_test.json",
    "rsa_pss_2048_sha512_mgf1sha256_32_params_test.json",
    "rsa_pss_4096_sha512_mgf1_32_test.json",
    "rsa_pss_4096_sha512_mgf1_32_params_test.json",
    "rsa_pss_2048_shake128_test.json",
    "rsa_pss_2048_shake256_test.json",
    "rsa_pss_3072_shake128_test.json",
    "rsa_pss_3072_shake256_test.json",
    "rsa_pss_4096_shake256_test.json",
    "rsa_pss_misc_test.json",
    "rsa_pss_misc_params_test.json",
    // EdDSA: Ed25519, and Ed448, which JWS names (RFC 8037) but this filter does not take.
    "ed25519_test.json",
    "ed448_test.json",
];

/// The signature scheme of a suite file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ecdsa,
    RsaPkcs1,
    RsaPss,
    Eddsa,
}

impl Scheme {
    pub fn of(file: &str) -> Scheme {
        match file.split('_').next() {
            Some("ecdsa") => Scheme::Ecdsa,
            Some("ed25519" | "ed448") => Scheme::Eddsa,
            _ if file.starts_with("rsa_pss_") => Scheme::RsaPss,
            _ if file.starts_with("rsa_signature_") => Scheme::RsaPkcs1,
            _ => panic!("{file}: no signature scheme"),
        }
    }
}

/// Why no JWS algorithm has a group's parameters, and so the filter must refuse all its cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// ES256 is P-256, ES384 P-384, EdDSA Ed25519: any other curve's key is skipped.
    Curve,
    /// ES256/ES384 signatures are raw R||S (RFC 7518 §3.4), never DER.
    Der,
    /// RS*, PS* and ES* hash with SHA-256/384/512 only (ES256 with SHA-256, ES384 with SHA-384).
    Hash,
    /// PS* use MGF1 with the message's hash and a salt as long as it (RFC 7518 §3.5).
    PssParameters,
}

impl Rule {
    /// The filter's own word for the refusal: the key's skip reason, or the token's.
    pub fn reason(self) -> &'static str {
        match self {
            Rule::Curve => "unsupported_curve",
            Rule::Der | Rule::Hash | Rule::PssParameters => "jwt_bad_signature",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match self {
            Rule::Curve => "curve: ES256 P-256, ES384 P-384, EdDSA Ed25519 only",
            Rule::Der => "ES* signatures are raw R||S, not DER",
            Rule::Hash => "hash: SHA-256/384/512 as the alg names it",
            Rule::PssParameters => "PS*: MGF1 with the same hash, salt = hash length",
        };
        write!(f, "{rule} ({})", self.reason())
    }
}

/// What the filter must do with a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The group's parameters are exactly this algorithm's: Wycheproof's verdict holds.
    Alg(Algorithm),
    /// No algorithm has them: every case is refused, by this rule.
    Refused(Rule),
}

/// One Wycheproof case: a message, its signature and the expected verdict.
pub struct Case {
    pub tc: u64,
    pub comment: String,
    pub expected: Expected,
    pub msg: Vec<u8>,
    pub sig: Vec<u8>,
}

/// One test group: its key and cases, and what the filter must do with them.
pub struct Group {
    pub file: &'static str,
    pub plan: Plan,
    /// The public key as a JWK: the group's own when it has one (without its `alg` in a refused
    /// group, so that only the signature decides), else built from the group's raw key.
    pub jwk: Value,
    /// Wycheproof's DER encoding of the key, to compare with the SPKI the filter builds for the
    /// host: for RSA and ECDSA keys, but the RSASSA-PSS encoding with parameters.
    pub spki: Option<Vec<u8>>,
    /// The algorithms of the group's scheme a token with this key may name (the key's `alg`
    /// aside): none for a curve the filter does not take. (Across schemes, e.g. a PSS signature
    /// as RS256, the encodings differ; `crypto.rs` tests that the algorithm is the caller's.)
    pub scheme_algs: Vec<Algorithm>,
    pub cases: Vec<Case>,
}

impl Group {
    /// Whether Wycheproof's verdict on `case` says what the filter must do: always in a group
    /// with an algorithm; in a refused group only for a valid or acceptable case (which must be
    /// refused). An invalid case there is invalid under parameters the filter never uses, and may
    /// well be a good signature under one it does ("hashed with SHA-256 instead of SHA-224" is a
    /// valid RS256 signature): it is not tried.
    pub fn judged(&self, case: &Case) -> bool {
        matches!(self.plan, Plan::Alg(_)) || case.expected != Expected::Invalid
    }

    /// The algorithms a case is tried under: the group's own; in a refused group, for a judged
    /// case, every algorithm of its scheme the key may serve (no such `alg` a token names gets it
    /// through).
    pub fn algs(&self, case: &Case) -> Vec<Algorithm> {
        match self.plan {
            Plan::Alg(alg) => vec![alg],
            Plan::Refused(_) if self.judged(case) => self.scheme_algs.clone(),
            Plan::Refused(_) => Vec::new(),
        }
    }

    /// The JWK as a one-key set.
    pub fn jwks(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": [self.jwk] })).unwrap()
    }

    pub fn label(&self, case: &Case) -> String {
        format!("{} tc {} ({})", self.file, case.tc, case.comment)
    }
}

/// Every group of a suite file.
pub fn groups(file: &'static str) -> Vec<Group> {
    let vectors = wycheproof::load(file);
    let scheme = Scheme::of(file);
    wycheproof::groups(&vectors).iter().map(|group| Group::of(file, scheme, group)).collect()
}

/// The hash names JWS algorithms use, by their Wycheproof names.
fn jws_hash(sha: &str) -> Option<u16> {
    match sha {
        "SHA-256" => Some(256),
        "SHA-384" => Some(384),
        "SHA-512" => Some(512),
        _ => None,
    }
}

/// RS* or PS* with SHA-`bits` (256 for anything but 384 and 512).
fn rsa_alg(pss: bool, bits: u16) -> Algorithm {
    match (pss, bits) {
        (false, 384) => Algorithm::RS384,
        (false, 512) => Algorithm::RS512,
        (false, _) => Algorithm::RS256,
        (true, 384) => Algorithm::PS384,
        (true, 512) => Algorithm::PS512,
        (true, _) => Algorithm::PS256,
    }
}

impl Group {
    fn of(file: &'static str, scheme: Scheme, group: &Value) -> Group {
        let sha = group["sha"].as_str().unwrap_or_default();
        let hash = jws_hash(sha);
        let (scheme_algs, plan) = match scheme {
            Scheme::Ecdsa => ecdsa_plan(group, hash),
            Scheme::Eddsa => match group["publicKey"]["curve"].as_str() {
                Some("edwards25519") => (vec![Algorithm::EdDSA], Plan::Alg(Algorithm::EdDSA)),
                _ => (vec![], Plan::Refused(Rule::Curve)),
            },
            Scheme::RsaPkcs1 | Scheme::RsaPss => {
                let pss = scheme == Scheme::RsaPss;
                let plan = match hash {
                    None => Plan::Refused(Rule::Hash),
                    Some(bits) if pss && !pss_parameters_fit(group, sha, bits) => {
                        Plan::Refused(Rule::PssParameters)
                    }
                    Some(bits) => Plan::Alg(rsa_alg(pss, bits)),
                };
                ([256, 384, 512].map(|bits| rsa_alg(pss, bits)).to_vec(), plan)
            }
        };
        let mut jwk = own_jwk(group).cloned().unwrap_or_else(|| built_jwk(scheme, group));
        if let Plan::Refused(_) = plan {
            jwk.as_object_mut().unwrap().remove("alg");
        }
        let plain_spki = scheme != Scheme::Eddsa && group["type"] != "RsassaPssWithParametersVerify";
        let spki = plain_spki.then(|| wycheproof::hex(group["publicKeyDer"].as_str().unwrap()));
        let cases = group["tests"].as_array().unwrap().iter().map(Case::of).collect();
        Group { file, plan, jwk, spki, scheme_algs, cases }
    }
}

/// ECDSA: the curve gives the one algorithm, which must hash with its own SHA-2 and sign R||S.
fn ecdsa_plan(group: &Value, hash: Option<u16>) -> (Vec<Algorithm>, Plan) {
    let (alg, bits) = match group["publicKey"]["curve"].as_str() {
        Some("secp256r1") => (Algorithm::ES256, 256),
        Some("secp384r1") => (Algorithm::ES384, 384),
        _ => return (vec![], Plan::Refused(Rule::Curve)),
    };
    let plan = if group["type"] != "EcdsaP1363Verify" {
        Plan::Refused(Rule::Der)
    } else if hash != Some(bits) {
        Plan::Refused(Rule::Hash)
    } else {
        Plan::Alg(alg)
    };
    (vec![alg], plan)
}

/// PS256/384/512: MGF1 over the message's hash, salt as long as the hash.
fn pss_parameters_fit(group: &Value, sha: &str, bits: u16) -> bool {
    group["mgf"] == "MGF1" && group["mgfSha"] == sha && group["sLen"].as_u64() == Some(u64::from(bits / 8))
}

/// The group's own JWK (its member name differs between the schemes).
fn own_jwk(group: &Value) -> Option<&Value> {
    ["publicKeyJwk", "keyJwk"].into_iter().map(|name| &group[name]).find(|jwk| jwk.is_object())
}

/// A JWK from the group's raw key, for the groups that have none.
fn built_jwk(scheme: Scheme, group: &Value) -> Value {
    let key = &group["publicKey"];
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    match scheme {
        Scheme::Ecdsa => {
            let crv = match key["curve"].as_str().unwrap() {
                "secp256r1" => "P-256",
                "secp384r1" => "P-384",
                "secp521r1" => "P-521",
                other => other, // secp256k1 is its JOSE name too (RFC 8812)
            };
            let point = wycheproof::hex(key["uncompressed"].as_str().unwrap());
            let (x, y) = point[1..].split_at((point.len() - 1) / 2);
            json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)})
        }
        Scheme::RsaPkcs1 | Scheme::RsaPss => {
            // JWK integers have no leading zero octets (RFC 7518 §6.3.1.1).
            let unsigned = |name: &str| {
                let bytes = wycheproof::hex(key[name].as_str().unwrap());
                b64(&bytes[bytes.iter().take_while(|b| **b == 0).count()..])
            };
            json!({"kty": "RSA", "n": unsigned("modulus"), "e": unsigned("publicExponent")})
        }
        Scheme::Eddsa => panic!("every EdDSA group has its JWK"),
    }
}

impl Case {
    fn of(test: &Value) -> Case {
        Case {
            tc: test["tcId"].as_u64().unwrap(),
            comment: test["comment"].as_str().unwrap_or_default().to_owned(),
            expected: Expected::of(test),
            msg: wycheproof::hex(test["msg"].as_str().unwrap()),
            sig: wycheproof::hex(test["sig"].as_str().unwrap()),
        }
    }
}

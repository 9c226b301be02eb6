//! A JSON Web Key Set (RFC 7517) parsed once into ready verifying keys (rules 5 and 6).
//!
//! Each key is judged on its own: an unusable key is skipped with a stable reason and the others
//! still serve, because one odd key in an identity provider's set must not lock every user out.
//! The whole document fails only when it is not a key set at all or when no key survives.
//!
//! Refused on purpose, beyond malformed members:
//! - `oct` keys: a JWKS is public, so a shared secret in it lets anyone mint tokens.
//! - keys carrying private members (`d`, `p`, `q`...): harmless for verifying, but an identity
//!   provider that publishes private keys is badly misconfigured and its tokens are not trusted.
//! - RSA moduli under 2048 bits, exponents under 3 or even, and ROCA-weak moduli (CVE-2017-15361).
//! - keys whose `use`/`key_ops` say they are not for verifying signatures, or whose `alg` is
//!   unknown or does not fit the key.
//! - several usable keys sharing one `kid`: a token naming that kid would be ambiguous.

use crate::alg::{Algorithm, KeyKind};
use crate::error::{JwtError, reasons};
use crate::json::{self, StrictJsonError};
use crate::token::b64url_decode;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// Nesting allowed inside one key: the key object, its `key_ops`/`x5c` arrays, `oth` entries.
const KEY_MAX_DEPTH: usize = 8;
const RSA_MIN_BITS: usize = 2048;
/// Larger moduli only make each verification slower; no identity provider uses them.
const RSA_MAX_BITS: usize = 8192;
/// Exponents beyond 32 bits only make verification slower (RSADoS); real keys use 65537.
const RSA_MAX_EXPONENT_OCTETS: usize = 4;
/// Members that only a private JWK has (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// A verifying key, built once when the set is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa(rsa::PublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// Which algorithms this key can serve (see [`Algorithm::key_kind`]).
    pub fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Rsa(_) => KeyKind::Rsa,
            PublicKey::P256(_) => KeyKind::P256,
            PublicKey::P384(_) => KeyKind::P384,
            PublicKey::Ed25519(_) => KeyKind::Ed25519,
        }
    }
}

/// One usable key of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// Compared byte for byte with a token's `kid`.
    pub kid: Option<String>,
    /// When present, the only algorithm this key may verify.
    pub alg: Option<Algorithm>,
    pub key: PublicKey,
    /// `key` as SubjectPublicKeyInfo DER, built once with it: private, so it can never describe
    /// another key than the one the policy checked.
    spki: Option<Vec<u8>>,
}

reasons! {
    /// Why one key of a set was skipped. `reason()` is stable (logs, metrics).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum KeySkip {
        /// The entry of `keys` is not a JSON object.
        NotAnObject => "not_an_object",
        /// The key names a member twice (at any depth).
        DuplicateMember => "duplicate_member",
        /// The key nests deeper than any real JWK.
        NestedTooDeep => "nested_too_deep",
        /// A member the key type needs (`kty`, `n`, `e`, `crv`, `x`, `y`) is absent.
        MissingMember => "missing_member",
        /// A known member has the wrong JSON type (e.g. `use` is a number, `key_ops` not strings).
        WrongMemberType => "wrong_member_type",
        /// `kid` is present but not a string.
        KidNotString => "kid_not_string",
        /// `kty` is not `RSA`, `EC`, `OKP` or `oct`.
        UnknownKty => "unknown_kty",
        /// `kty` is `oct`: a shared secret has no place in a public key set.
        SymmetricKey => "symmetric_key",
        /// `crv` is not P-256, P-384 (EC) or Ed25519 (OKP).
        UnsupportedCurve => "unsupported_curve",
        /// A key member is not canonical unpadded base64url.
        BadBase64 => "bad_base64url",
        /// An RSA integer is empty or has leading zero octets (RFC 7518 §2, §6.3.1.1).
        NonCanonicalInteger => "non_canonical_integer",
        RsaModulusTooSmall => "rsa_modulus_too_small",
        RsaModulusTooLarge => "rsa_modulus_too_large",
        /// The exponent is under 3, even, or longer than 32 bits.
        RsaBadExponent => "rsa_bad_exponent",
        /// The modulus has the ROCA fingerprint (CVE-2017-15361): it can be factored.
        RsaRocaVulnerable => "rsa_roca_vulnerable",
        /// The rsa crate refuses the key (even modulus, exponent not below the modulus).
        RsaInvalidKey => "rsa_invalid_key",
        /// An EC coordinate or Ed25519 key is not exactly the curve's size.
        BadKeyLength => "bad_key_length",
        /// The point is not on the curve, or is the identity or of small order.
        InvalidPoint => "invalid_point",
        /// `use` is present and not `sig`.
        UseNotSig => "use_not_sig",
        /// `key_ops` is present and does not contain `verify`.
        KeyOpsWithoutVerify => "key_ops_without_verify",
        /// `alg` names no algorithm this verifier knows (HS256, RSA1_5, ES512, ...).
        UnknownAlg => "unknown_alg",
        /// `alg` is known but needs another key type or curve (ES384 on P-256, RS256 on EC).
        AlgKeyMismatch => "alg_key_mismatch",
        /// The key carries private members: the identity provider publishes secrets.
        PrivateKeyMaterial => "private_key_material",
        /// Another usable key has the same `kid`.
        DuplicateKid => "duplicate_kid",
    }
}

/// A key of the document that was not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the document's `keys` array.
    pub index: usize,
    /// The key's `kid` when it is a string, for the operator's log.
    pub kid: Option<String>,
    pub reason: KeySkip,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {}", self.index)?;
        if let Some(kid) = &self.kid {
            // Debug quoting escapes control characters: a hostile kid cannot forge log lines.
            write!(f, " (kid {kid:?})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why a whole JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// Not UTF-8 JSON, or not an object at the top.
    NotJsonObject,
    /// The object has no `keys` member, or it is not an array.
    NoKeysArray,
    /// `keys` is named twice: which one a parser keeps is arbitrary.
    DuplicateKeysMember,
    /// No key survived; the skips say why (empty when `keys` is empty).
    NoUsableKey(Vec<SkippedKey>),
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::NotJsonObject => f.write_str("JWKS is not a JSON object"),
            JwksError::NoKeysArray => f.write_str("JWKS has no \"keys\" array"),
            JwksError::DuplicateKeysMember => f.write_str("JWKS names \"keys\" twice"),
            JwksError::NoUsableKey(skipped) if skipped.is_empty() => f.write_str("JWKS has no keys"),
            JwksError::NoUsableKey(skipped) => {
                f.write_str("JWKS has no usable key: ")?;
                for (i, skip) in skipped.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{skip}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for JwksError {}

/// The usable keys of a JWKS, ready to verify.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

/// A parsed JWKS: the usable keys and what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedJwks {
    pub keys: KeySet,
    /// In document order.
    pub skipped: Vec<SkippedKey>,
}

impl KeySet {
    /// Parse a JWKS document. Each key is parsed on its own; unusable keys are skipped with a reason.
    /// Err only when the document itself is bad or no key is usable (the error then lists the skips).
    pub fn parse(json: &[u8]) -> Result<ParsedJwks, JwksError> {
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, member) in key_members(json)?.into_iter().enumerate() {
            match parse_member(member) {
                Ok(jwk) => keys.push((index, jwk)),
                Err((kid, reason)) => skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        let (keys, ambiguous) = drop_duplicate_kids(keys);
        skipped.extend(ambiguous);
        skipped.sort_by_key(|skip| skip.index);
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(skipped));
        }
        Ok(ParsedJwks { keys: KeySet { keys }, skipped })
    }

    /// The keys that may verify a token with this `alg` and optional `kid` (rule 5):
    /// with a kid, only keys with exactly that kid (none → `UnknownKid`); without a kid, every
    /// compatible key. No compatible key → `NoMatchingKey`.
    pub fn candidates(&self, alg: Algorithm, kid: Option<&str>) -> Result<Vec<&Jwk>, JwtError> {
        let named: Vec<&Jwk> = match kid {
            Some(kid) => self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect(),
            None => self.keys.iter().collect(),
        };
        if kid.is_some() && named.is_empty() {
            return Err(JwtError::UnknownKid);
        }
        let fitting: Vec<&Jwk> = named.into_iter().filter(|k| k.fits(alg)).collect();
        if fitting.is_empty() {
            return Err(JwtError::NoMatchingKey);
        }
        Ok(fitting)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True only for `KeySet::default()`: a parsed set has at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The usable keys, in document order.
    pub fn iter(&self) -> impl Iterator<Item = &Jwk> {
        self.keys.iter()
    }

    /// Whether a usable key has exactly this `kid`.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Withdraws the SPKI of every key that has one and that `refuse` names: a backend that
    /// imports keys in that form (host crypto) found it cannot use them, so they are verified
    /// without it. The keys themselves stay in the set.
    pub fn withdraw_spki(&mut self, mut refuse: impl FnMut(&Jwk) -> bool) {
        for jwk in self.keys.iter_mut().filter(|jwk| jwk.spki.is_some()) {
            if refuse(jwk) {
                jwk.spki = None;
            }
        }
    }
}

impl Jwk {
    /// One JWK object, for tests. (Duplicate member names are not visible in a `Value`;
    /// [`KeySet::parse`] checks them on the raw text before calling `from_object`.)
    #[cfg(test)]
    pub fn parse(member: &Value) -> Result<Jwk, KeySkip> {
        Jwk::from_object(member.as_object().ok_or(KeySkip::NotAnObject)?)
    }

    /// A key without `kid` or `alg`, for tests.
    #[cfg(test)]
    pub fn from_key(key: PublicKey) -> Jwk {
        Jwk::new(None, None, key)
    }

    fn new(kid: Option<String>, alg: Option<Algorithm>, key: PublicKey) -> Jwk {
        let spki = spki_der(&key);
        Jwk { kid, alg, key, spki }
    }

    /// Whether this key may verify `alg`: the key type fits and the key's own `alg`, if any, is it.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.key.kind() == alg.key_kind() && self.alg.is_none_or(|own| own == alg)
    }

    /// The key as SubjectPublicKeyInfo DER (RFC 5280 §4.1.2.7), for backends that import keys in
    /// that form. `None` for Ed25519 keys (no backend here needs it) and once withdrawn
    /// ([`KeySet::withdraw_spki`]).
    pub fn spki(&self) -> Option<&[u8]> {
        self.spki.as_deref()
    }

    /// One JWK object already parsed as strict JSON, judged by every rule a key of a set must
    /// pass (the same checks for a DPoP proof's `jwk` header as for a JWKS key).
    pub fn from_object(obj: &Map<String, Value>) -> Result<Jwk, KeySkip> {
        let kid = optional_str(obj, "kid").map_err(|_| KeySkip::KidNotString)?;
        let kty = Kty::of(obj)?;
        if PRIVATE_MEMBERS.iter().any(|name| obj.contains_key(*name)) {
            return Err(KeySkip::PrivateKeyMaterial);
        }
        check_intended_use(obj)?;
        let alg = optional_str(obj, "alg")?
            .map(|name| Algorithm::from_name(name).ok_or(KeySkip::UnknownAlg))
            .transpose()?;
        let key = match kty {
            Kty::Rsa => rsa_key(obj)?,
            Kty::Ec => ec_key(obj)?,
            Kty::Okp => okp_key(obj)?,
        };
        if alg.is_some_and(|alg| alg.key_kind() != key.kind()) {
            return Err(KeySkip::AlgKeyMismatch);
        }
        Ok(Jwk::new(kid.map(str::to_owned), alg, key))
    }
}

/// SubjectPublicKeyInfo DER by the RustCrypto encoders: RSA as `rsaEncryption` with the PKCS#1
/// key, EC as `id-ecPublicKey` with the named curve and the uncompressed point. `None` only if an
/// encoder fails, which leaves the key to backends that do not need it.
fn spki_der(key: &PublicKey) -> Option<Vec<u8>> {
    use p256::pkcs8::EncodePublicKey;
    let document = match key {
        PublicKey::Rsa(key) => key.to_public_key_der(),
        PublicKey::P256(key) => key.to_public_key_der(),
        PublicKey::P384(key) => key.to_public_key_der(),
        PublicKey::Ed25519(_) => return None,
    };
    document.ok().map(|d| d.into_vec())
}

/// The raw entries of the document's `keys` array. Each entry is kept as text so that a duplicate
/// member inside one key skips that key only (`json::parse_object` on the whole document would
/// refuse every key for it).
fn key_members(json: &[u8]) -> Result<Vec<&RawValue>, JwksError> {
    let text = std::str::from_utf8(json).map_err(|_| JwksError::NotJsonObject)?;
    let document: Document = serde_json::from_str(text).map_err(|_| JwksError::NotJsonObject)?;
    if document.keys_named_twice {
        return Err(JwksError::DuplicateKeysMember);
    }
    let keys = document.keys.ok_or(JwksError::NoKeysArray)?;
    serde_json::from_str(keys.get()).map_err(|_| JwksError::NoKeysArray)
}

/// One entry of `keys`, strictly parsed, then judged. On a skip, the kid (if readable) comes along.
fn parse_member(member: &RawValue) -> Result<Jwk, (Option<String>, KeySkip)> {
    let obj = json::parse_object(member.get().as_bytes(), KEY_MAX_DEPTH).map_err(|e| {
        let reason = match e {
            StrictJsonError::DuplicateMember => KeySkip::DuplicateMember,
            StrictJsonError::TooDeep => KeySkip::NestedTooDeep,
            // The text is valid JSON (serde_json read it), so only a non-object lands here.
            StrictJsonError::Invalid => KeySkip::NotAnObject,
        };
        (None, reason)
    })?;
    Jwk::from_object(&obj).map_err(|reason| {
        let kid = obj.get("kid").and_then(Value::as_str).map(str::to_owned);
        (kid, reason)
    })
}

/// Splits off every usable key whose kid another usable key shares. Keys already skipped for
/// their own reason do not count: they can never be a candidate, so they make nothing ambiguous.
fn drop_duplicate_kids(keys: Vec<(usize, Jwk)>) -> (Vec<Jwk>, Vec<SkippedKey>) {
    let mut uses: HashMap<String, usize> = HashMap::new();
    for kid in keys.iter().filter_map(|(_, jwk)| jwk.kid.clone()) {
        *uses.entry(kid).or_default() += 1;
    }
    let mut kept = Vec::with_capacity(keys.len());
    let mut dropped = Vec::new();
    for (index, jwk) in keys {
        match jwk.kid {
            Some(kid) if uses.get(&kid).is_some_and(|n| *n > 1) => {
                dropped.push(SkippedKey { index, kid: Some(kid), reason: KeySkip::DuplicateKid });
            }
            _ => kept.push(jwk),
        }
    }
    (kept, dropped)
}

/// The top level of a JWKS. Only `keys` matters; other members are skipped unread. serde_json
/// would keep the last of two `keys` silently, so the visitor counts them itself.
struct Document<'a> {
    keys: Option<&'a RawValue>,
    keys_named_twice: bool,
}

impl<'de> de::Deserialize<'de> for Document<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWKS object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Document<'de>, A::Error> {
        let mut document = Document { keys: None, keys_named_twice: false };
        while let Some(name) = access.next_key::<String>()? {
            if name != "keys" {
                access.next_value::<IgnoredAny>()?;
            } else if document.keys.is_some() {
                document.keys_named_twice = true;
                access.next_value::<IgnoredAny>()?;
            } else {
                document.keys = Some(access.next_value()?);
            }
        }
        Ok(document)
    }
}

/// The key types this verifier can use; `oct` and unknown types are skipped in [`Kty::of`].
enum Kty {
    Rsa,
    Ec,
    Okp,
}

impl Kty {
    fn of(obj: &Map<String, Value>) -> Result<Kty, KeySkip> {
        match required_str(obj, "kty")? {
            "RSA" => Ok(Kty::Rsa),
            "EC" => Ok(Kty::Ec),
            "OKP" => Ok(Kty::Okp),
            "oct" => Err(KeySkip::SymmetricKey),
            _ => Err(KeySkip::UnknownKty),
        }
    }
}

/// `use` and `key_ops` (RFC 7517 §4.2, §4.3), when present, must allow verifying signatures.
fn check_intended_use(obj: &Map<String, Value>) -> Result<(), KeySkip> {
    if optional_str(obj, "use")?.is_some_and(|intended| intended != "sig") {
        return Err(KeySkip::UseNotSig);
    }
    match obj.get("key_ops") {
        None => Ok(()),
        Some(Value::Array(ops)) => {
            let ops: Option<Vec<&str>> = ops.iter().map(Value::as_str).collect();
            match ops {
                None => Err(KeySkip::WrongMemberType),
                Some(ops) if ops.contains(&"verify") => Ok(()),
                Some(_) => Err(KeySkip::KeyOpsWithoutVerify),
            }
        }
        Some(_) => Err(KeySkip::WrongMemberType),
    }
}

fn rsa_key(obj: &Map<String, Value>) -> Result<PublicKey, KeySkip> {
    let n = unsigned_member(obj, "n")?;
    let e = unsigned_member(obj, "e")?;
    let bits = bit_length(&n);
    if bits < RSA_MIN_BITS {
        return Err(KeySkip::RsaModulusTooSmall);
    }
    if bits > RSA_MAX_BITS {
        return Err(KeySkip::RsaModulusTooLarge);
    }
    let e = rsa_exponent(&e)?;
    if has_roca_fingerprint(&n) {
        return Err(KeySkip::RsaRocaVulnerable);
    }
    let n = rsa::BoxedUint::from_be_slice_vartime(&n);
    rsa::PublicKey::new_with_size_limits(n, rsa::BoxedUint::from(e), RSA_MIN_BITS..=RSA_MAX_BITS)
        .map(PublicKey::Rsa)
        .map_err(|_| KeySkip::RsaInvalidKey)
}

/// A Base64urlUInt (RFC 7518 §2): big-endian in the minimum number of octets, so never empty
/// and no leading zero (zero itself is the one octet 0). RFC 7518 §6.3.1.1 says `n` MUST NOT
/// carry the extra zero some libraries emit; this verifier holds the key set to that.
fn unsigned_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, KeySkip> {
    let bytes = bytes_member(obj, name)?;
    match bytes.as_slice() {
        [] | [0, _, ..] => Err(KeySkip::NonCanonicalInteger),
        _ => Ok(bytes),
    }
}

/// Bits of a big-endian integer without leading zero octets.
fn bit_length(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// `e` must be odd, at least 3 and at most 32 bits (e = 1 makes every "signature" its message).
fn rsa_exponent(e: &[u8]) -> Result<u32, KeySkip> {
    if e.len() > RSA_MAX_EXPONENT_OCTETS {
        return Err(KeySkip::RsaBadExponent);
    }
    let e = e.iter().fold(0u32, |acc, octet| (acc << 8) | u32::from(*octet));
    if e < 3 || e % 2 == 0 {
        return Err(KeySkip::RsaBadExponent);
    }
    Ok(e)
}

/// The small primes of the published ROCA fingerprint test (crocs-muni/roca `detect.py`).
const ROCA_PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103,
    107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// ROCA fingerprint (CVE-2017-15361): Infineon's generator made primes of the form
/// k·M + (65537^a mod M), so their product `n` lies, modulo every small prime p, in the subgroup
/// that 65537 generates. A random modulus passes all 38 tests with negligible probability.
fn has_roca_fingerprint(n: &[u8]) -> bool {
    ROCA_PRIMES.iter().all(|&p| generated_by_65537(residue(n, p), p))
}

/// `n mod p` for a big-endian `n`, one octet at a time (p < 2^23, so nothing overflows).
fn residue(n: &[u8], p: u32) -> u32 {
    n.iter().fold(0, |r, octet| ((r << 8) | u32::from(*octet)) % p)
}

/// Whether `r` is a power of 65537 modulo the prime `p`.
fn generated_by_65537(r: u32, p: u32) -> bool {
    let g = 65537 % p;
    let mut power = 1;
    loop {
        if power == r {
            return true;
        }
        power = power * g % p;
        if power == 1 {
            return false;
        }
    }
}

fn ec_key(obj: &Map<String, Value>) -> Result<PublicKey, KeySkip> {
    let key = match required_str(obj, "crv")? {
        "P-256" => p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_point(obj, 32)?).map(PublicKey::P256),
        "P-384" => p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_point(obj, 48)?).map(PublicKey::P384),
        _ => return Err(KeySkip::UnsupportedCurve),
    };
    // Decoding checks that each coordinate is below p and that the point is on the curve.
    key.map_err(|_| KeySkip::InvalidPoint)
}

/// `x` and `y` as an uncompressed SEC1 point. Each must be the full coordinate size
/// (RFC 7518 §6.2.1.2), so a short or padded coordinate is refused rather than guessed at.
fn sec1_point(obj: &Map<String, Value>, size: usize) -> Result<Vec<u8>, KeySkip> {
    let x = bytes_member(obj, "x")?;
    let y = bytes_member(obj, "y")?;
    if x.len() != size || y.len() != size {
        return Err(KeySkip::BadKeyLength);
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

fn okp_key(obj: &Map<String, Value>) -> Result<PublicKey, KeySkip> {
    if required_str(obj, "crv")? != "Ed25519" {
        return Err(KeySkip::UnsupportedCurve);
    }
    let x: [u8; 32] = bytes_member(obj, "x")?.try_into().map_err(|_| KeySkip::BadKeyLength)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| KeySkip::InvalidPoint)?;
    // A small-order key is nobody's real key; verify_strict would refuse its signatures anyway.
    if key.is_weak() {
        return Err(KeySkip::InvalidPoint);
    }
    Ok(PublicKey::Ed25519(key))
}

fn optional_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, KeySkip> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(KeySkip::WrongMemberType),
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, KeySkip> {
    optional_str(obj, name)?.ok_or(KeySkip::MissingMember)
}

fn bytes_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, KeySkip> {
    b64url_decode(required_str(obj, name)?).ok_or(KeySkip::BadBase64)
}

/// Test-only keys from `tests/fixtures` and their public JWKs, shared with the crypto tests.
#[cfg(test)]
pub(crate) mod test_keys {
    use crate::token::b64url_encode;
    use serde_json::{Value, json};

    fn pem(name: &str) -> String {
        let path = format!("{}/tests/fixtures/test-only-{name}.pem", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `name` is the fixture's middle part: "rsa2048-a", "rsa3072", "rsa1024-too-small".
    pub fn rsa(name: &str) -> rsa::PrivateKey {
        use rsa::pkcs8::DecodePrivateKey;
        rsa::PrivateKey::from_pkcs8_pem(&pem(name)).unwrap()
    }

    /// "p256-a" or "p256-b".
    pub fn p256(name: &str) -> p256::ecdsa::SigningKey {
        use p256::pkcs8::DecodePrivateKey;
        p256::ecdsa::SigningKey::from_pkcs8_pem(&pem(name)).unwrap()
    }

    pub fn p384() -> p384::ecdsa::SigningKey {
        use p384::pkcs8::DecodePrivateKey;
        p384::ecdsa::SigningKey::from_pkcs8_pem(&pem("p384")).unwrap()
    }

    pub fn ed25519() -> ed25519_dalek::SigningKey {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        ed25519_dalek::SigningKey::from_pkcs8_pem(&pem("ed25519")).unwrap()
    }

    pub fn rsa_jwk(key: &rsa::PrivateKey) -> Value {
        use rsa::traits::PublicKeyParts;
        json!({"kty": "RSA", "n": b64url_encode(&key.n_bytes()), "e": b64url_encode(&key.e_bytes())})
    }

    /// An EC JWK from an uncompressed SEC1 point (0x04 || x || y).
    fn ec_jwk(crv: &str, sec1: &[u8]) -> Value {
        let (x, y) = sec1[1..].split_at((sec1.len() - 1) / 2);
        json!({"kty": "EC", "crv": crv, "x": b64url_encode(x), "y": b64url_encode(y)})
    }

    pub fn p256_jwk(key: &p256::ecdsa::SigningKey) -> Value {
        ec_jwk("P-256", key.verifying_key().to_sec1_point(false).as_bytes())
    }

    pub fn p384_jwk(key: &p384::ecdsa::SigningKey) -> Value {
        ec_jwk("P-384", key.verifying_key().to_sec1_point(false).as_bytes())
    }

    pub fn ed25519_jwk(key: &ed25519_dalek::SigningKey) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(key.verifying_key().as_bytes())})
    }

    /// `jwk` with members added or replaced (`Value::Null` removes one).
    pub fn with(mut jwk: Value, members: &[(&str, Value)]) -> Value {
        let obj = jwk.as_object_mut().unwrap();
        for (name, value) in members {
            match value {
                Value::Null => obj.remove(*name),
                _ => obj.insert((*name).to_owned(), value.clone()),
            };
        }
        jwk
    }

    pub fn jwks(keys: &[Value]) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::*;
    use super::*;
    use crate::token::b64url_encode;
    use serde_json::json;
    use std::collections::HashSet;

    fn good_rsa() -> Value {
        rsa_jwk(&rsa("rsa2048-a"))
    }

    fn good_p256() -> Value {
        p256_jwk(&p256("p256-a"))
    }

    fn good_ed25519() -> Value {
        ed25519_jwk(&ed25519())
    }

    /// 65537^k as big-endian bytes: odd, and its residue mod every prime is a power of 65537,
    /// so it carries the ROCA fingerprint by construction.
    fn power_of_65537(k: usize) -> Vec<u8> {
        let mut n = vec![1u8];
        for _ in 0..k {
            let mut carry = 0u64;
            for octet in n.iter_mut().rev() {
                let v = u64::from(*octet) * 65537 + carry;
                *octet = v as u8;
                carry = v >> 8;
            }
            while carry > 0 {
                n.insert(0, carry as u8);
                carry >>= 8;
            }
        }
        n
    }

    /// The reason one key is skipped with, parsed in a set beside a good key.
    fn skip_of(jwk: &Value) -> Option<KeySkip> {
        let parsed = KeySet::parse(&jwks(&[good_p256(), jwk.clone()])).unwrap();
        match parsed.skipped.as_slice() {
            [] => None,
            [skip] => {
                assert_eq!(skip.index, 1);
                Some(skip.reason)
            }
            more => panic!("{more:?}"),
        }
    }

    #[test]
    fn parses_every_supported_key_type() {
        let keys = [good_rsa(), rsa_jwk(&rsa("rsa3072")), good_p256(), p384_jwk(&p384()), good_ed25519()];
        let parsed = KeySet::parse(&jwks(&keys)).unwrap();
        assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
        let kinds: Vec<KeyKind> = parsed.keys.iter().map(|k| k.key.kind()).collect();
        use KeyKind::*;
        assert_eq!(kinds, [Rsa, Rsa, P256, P384, Ed25519]);
        assert_eq!(parsed.keys.len(), 5);
        assert!(!parsed.keys.is_empty());
    }

    #[test]
    fn spki_is_built_once_per_key_and_decodes_to_it() {
        use p256::pkcs8::DecodePublicKey;
        let keys = [good_rsa(), good_p256(), p384_jwk(&p384()), good_ed25519()];
        let parsed = KeySet::parse(&jwks(&keys)).unwrap().keys;
        let spki: Vec<Option<&[u8]>> = parsed.iter().map(Jwk::spki).collect();
        let decoded: Vec<PublicKey> = parsed
            .iter()
            .filter_map(|jwk| match (&jwk.key, jwk.spki()?) {
                (PublicKey::Rsa(_), der) => {
                    Some(PublicKey::Rsa(rsa::PublicKey::from_public_key_der(der).unwrap()))
                }
                (PublicKey::P256(_), der) => {
                    Some(PublicKey::P256(p256::ecdsa::VerifyingKey::from_public_key_der(der).unwrap()))
                }
                (PublicKey::P384(_), der) => {
                    Some(PublicKey::P384(p384::ecdsa::VerifyingKey::from_public_key_der(der).unwrap()))
                }
                (PublicKey::Ed25519(_), _) => panic!("an Ed25519 key has no SPKI"),
            })
            .collect();
        let originals: Vec<PublicKey> = parsed.iter().take(3).map(|jwk| jwk.key.clone()).collect();
        assert_eq!(decoded, originals);
        assert_eq!(spki[3], None, "Ed25519 goes to no backend that needs an SPKI");
        // Named-curve EC keys with the uncompressed point, as BoringSSL imports them.
        assert_eq!(spki[1].unwrap().len(), 91);
        assert_eq!(spki[2].unwrap().len(), 120);
        assert_eq!(Jwk::from_key(parsed.iter().next().unwrap().key.clone()).spki(), spki[0]);
    }

    #[test]
    fn withdrawing_spki_keeps_the_key() {
        let mut set = KeySet::parse(&jwks(&[good_rsa(), good_p256(), good_ed25519()])).unwrap().keys;
        let mut offered = Vec::new();
        set.withdraw_spki(|jwk| {
            offered.push(jwk.key.kind());
            jwk.key.kind() == KeyKind::P256
        });
        assert_eq!(offered, [KeyKind::Rsa, KeyKind::P256], "only keys with an SPKI are offered");
        let left: Vec<(KeyKind, bool)> = set.iter().map(|k| (k.key.kind(), k.spki().is_some())).collect();
        assert_eq!(left, [(KeyKind::Rsa, true), (KeyKind::P256, false), (KeyKind::Ed25519, false)]);
    }

    #[test]
    fn keys_that_are_kept() {
        let ext = json!({"a": [{"b": [1, 2, 3]}]});
        #[rustfmt::skip]
        let cases = [
            ("use sig", with(good_rsa(), &[("use", json!("sig"))])),
            ("key_ops verify", with(good_rsa(), &[("key_ops", json!(["verify"]))])),
            ("key_ops sign+verify", with(good_p256(), &[("key_ops", json!(["sign", "verify"]))])),
            ("RS256", with(good_rsa(), &[("alg", json!("RS256"))])),
            ("PS256 on RSA", with(good_rsa(), &[("alg", json!("PS256"))])),
            ("PS512 on RSA", with(good_rsa(), &[("alg", json!("PS512"))])),
            ("ES256 on P-256", with(good_p256(), &[("alg", json!("ES256"))])),
            ("ES384 on P-384", with(p384_jwk(&p384()), &[("alg", json!("ES384"))])),
            ("EdDSA on Ed25519", with(good_ed25519(), &[("alg", json!("EdDSA"))])),
            ("kid", with(good_rsa(), &[("kid", json!("2024-01"))])),
            ("unknown members", with(good_rsa(), &[("x5t", json!("abc")), ("ext", ext)])),
            ("e = 3", with(good_rsa(), &[("e", json!("Aw"))])),
            ("e = 2^32 - 1", with(good_rsa(), &[("e", json!("_____w"))])),
            ("3072 bits", rsa_jwk(&rsa("rsa3072"))),
        ];
        for (name, jwk) in cases {
            assert_eq!(skip_of(&jwk), None, "{name}");
            assert!(Jwk::parse(&jwk).is_ok(), "{name}");
        }
    }

    #[test]
    fn keys_that_are_skipped() {
        use KeySkip::*;
        let rsa_n = good_rsa()["n"].as_str().unwrap().to_owned();
        let n_bytes = b64url_decode(&rsa_n).unwrap();
        let mut padded_n = vec![0u8];
        padded_n.extend_from_slice(&n_bytes);
        let mut even_n = n_bytes.clone();
        *even_n.last_mut().unwrap() &= 0xfe;
        let mut huge_n = vec![0xffu8; 1025];
        huge_n[0] = 1;
        let p256 = good_p256();
        let x = p256["x"].as_str().unwrap().to_owned();
        let mut y = b64url_decode(p256["y"].as_str().unwrap()).unwrap();
        *y.last_mut().unwrap() ^= 1;
        let field_p = "_____wAAAAEAAAAAAAAAAAAAAAD_______________8";
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let b = b64url_encode;
        #[rustfmt::skip]
        let cases: Vec<(&str, Value, KeySkip)> = vec![
            ("string entry", json!("key"), NotAnObject),
            ("array entry", json!([good_rsa()]), NotAnObject),
            ("deep member", with(good_rsa(), &[("ext", json!([[[[[[[[1]]]]]]]]))]), NestedTooDeep),
            ("no kty", with(good_rsa(), &[("kty", Value::Null)]), MissingMember),
            ("no n", with(good_rsa(), &[("n", Value::Null)]), MissingMember),
            ("no e", with(good_rsa(), &[("e", Value::Null)]), MissingMember),
            ("no crv", with(good_p256(), &[("crv", Value::Null)]), MissingMember),
            ("no y", with(good_p256(), &[("y", Value::Null)]), MissingMember),
            ("no x", with(good_ed25519(), &[("x", Value::Null)]), MissingMember),
            ("kty number", with(good_rsa(), &[("kty", json!(1))]), WrongMemberType),
            ("n number", with(good_rsa(), &[("n", json!(1))]), WrongMemberType),
            ("use number", with(good_rsa(), &[("use", json!(1))]), WrongMemberType),
            ("alg array", with(good_rsa(), &[("alg", json!(["RS256"]))]), WrongMemberType),
            ("key_ops string", with(good_rsa(), &[("key_ops", json!("verify"))]), WrongMemberType),
            ("key_ops numbers", with(good_rsa(), &[("key_ops", json!(["verify", 1]))]), WrongMemberType),
            ("kid number", with(good_rsa(), &[("kid", json!(1))]), KidNotString),
            ("kid null", json!({"kty": "RSA", "kid": null}), KidNotString),
            ("kty foo", with(good_rsa(), &[("kty", json!("foo"))]), UnknownKty),
            ("kty rsa", with(good_rsa(), &[("kty", json!("rsa"))]), UnknownKty),
            ("oct", json!({"kty": "oct", "k": "c2VjcmV0"}), SymmetricKey),
            ("oct with alg", json!({"kty": "oct", "k": "c2VjcmV0", "alg": "RS256"}), SymmetricKey),
            ("P-521", with(good_p256(), &[("crv", json!("P-521"))]), UnsupportedCurve),
            ("secp256k1", with(good_p256(), &[("crv", json!("secp256k1"))]), UnsupportedCurve),
            ("X25519", with(good_ed25519(), &[("crv", json!("X25519"))]), UnsupportedCurve),
            ("Ed448", with(good_ed25519(), &[("crv", json!("Ed448"))]), UnsupportedCurve),
            ("OKP P-256", with(good_ed25519(), &[("crv", json!("P-256"))]), UnsupportedCurve),
            ("n padded", with(good_rsa(), &[("n", json!(format!("{rsa_n}==")))]), BadBase64),
            ("n std alphabet", with(good_rsa(), &[("n", json!(rsa_n.replace('-', "+")))]), BadBase64),
            ("n space", with(good_rsa(), &[("n", json!(format!(" {rsa_n}")))]), BadBase64),
            ("e stray bits", with(good_rsa(), &[("e", json!("AR"))]), BadBase64),
            ("x padded", with(good_p256(), &[("x", json!(format!("{x}=")))]), BadBase64),
            ("n leading zero", with(good_rsa(), &[("n", json!(b(&padded_n)))]), NonCanonicalInteger),
            ("e leading zero", with(good_rsa(), &[("e", json!("AAEAAQ"))]), NonCanonicalInteger),
            ("e empty", with(good_rsa(), &[("e", json!(""))]), NonCanonicalInteger),
            ("1024 bits", rsa_jwk(&rsa("rsa1024-too-small")), RsaModulusTooSmall),
            ("n = 1", with(good_rsa(), &[("n", json!("AQ"))]), RsaModulusTooSmall),
            ("8193 bits", with(good_rsa(), &[("n", json!(b(&huge_n)))]), RsaModulusTooLarge),
            ("e = 0", with(good_rsa(), &[("e", json!("AA"))]), RsaBadExponent),
            ("e = 1", with(good_rsa(), &[("e", json!("AQ"))]), RsaBadExponent),
            ("e = 2", with(good_rsa(), &[("e", json!("Ag"))]), RsaBadExponent),
            ("e = 65536", with(good_rsa(), &[("e", json!("AQAA"))]), RsaBadExponent),
            ("e = 2^32 + 1", with(good_rsa(), &[("e", json!("AQAAAAE"))]), RsaBadExponent),
            ("ROCA", with(good_rsa(), &[("n", json!(b(&power_of_65537(128))))]), RsaRocaVulnerable),
            ("even n", with(good_rsa(), &[("n", json!(b(&even_n)))]), RsaInvalidKey),
            ("x short", with(good_p256(), &[("x", json!(b(&[1u8; 31])))]), BadKeyLength),
            ("x 33 octets", with(good_p256(), &[("x", json!(b(&[0u8; 33])))]), BadKeyLength),
            ("P-256 point as P-384", with(good_p256(), &[("crv", json!("P-384"))]), BadKeyLength),
            ("Ed25519 short", with(good_ed25519(), &[("x", json!(b(&[1u8; 31])))]), BadKeyLength),
            ("y off curve", with(good_p256(), &[("y", json!(b(&y)))]), InvalidPoint),
            ("x = p", with(good_p256(), &[("x", json!(field_p))]), InvalidPoint),
            ("Ed25519 identity", with(good_ed25519(), &[("x", json!(b(&identity)))]), InvalidPoint),
            ("use enc", with(good_rsa(), &[("use", json!("enc"))]), UseNotSig),
            ("use SIG", with(good_rsa(), &[("use", json!("SIG"))]), UseNotSig),
            ("key_ops sign", with(good_rsa(), &[("key_ops", json!(["sign"]))]), KeyOpsWithoutVerify),
            ("key_ops empty", with(good_rsa(), &[("key_ops", json!([]))]), KeyOpsWithoutVerify),
            ("HS256", with(good_rsa(), &[("alg", json!("HS256"))]), UnknownAlg),
            ("RSA1_5", with(good_rsa(), &[("alg", json!("RSA1_5"))]), UnknownAlg),
            ("rs256", with(good_rsa(), &[("alg", json!("rs256"))]), UnknownAlg),
            ("none", with(good_rsa(), &[("alg", json!("none"))]), UnknownAlg),
            ("ES512", with(good_p256(), &[("alg", json!("ES512"))]), UnknownAlg),
            ("RS256 on EC", with(good_p256(), &[("alg", json!("RS256"))]), AlgKeyMismatch),
            ("ES384 on P-256", with(good_p256(), &[("alg", json!("ES384"))]), AlgKeyMismatch),
            ("ES256 on P-384", with(p384_jwk(&p384()), &[("alg", json!("ES256"))]), AlgKeyMismatch),
            ("EdDSA on RSA", with(good_rsa(), &[("alg", json!("EdDSA"))]), AlgKeyMismatch),
            ("ES256 on Ed25519", with(good_ed25519(), &[("alg", json!("ES256"))]), AlgKeyMismatch),
            ("RSA d", with(good_rsa(), &[("d", json!("AQ"))]), PrivateKeyMaterial),
            ("RSA oth", with(good_rsa(), &[("oth", json!([]))]), PrivateKeyMaterial),
            ("EC d", with(good_p256(), &[("d", json!("AQ"))]), PrivateKeyMaterial),
            ("OKP d", with(good_ed25519(), &[("d", json!("AQ"))]), PrivateKeyMaterial),
        ];
        let mut seen = HashSet::new();
        for (name, jwk, reason) in cases {
            assert_eq!(skip_of(&jwk), Some(reason), "{name}");
            if reason != NestedTooDeep {
                assert_eq!(Jwk::parse(&jwk), Err(reason), "{name}");
            }
            seen.insert(reason);
        }
        // Every per-key reason is shown here; the two set-level ones have their own tests.
        let elsewhere = [DuplicateMember, DuplicateKid];
        for reason in KeySkip::ALL.iter().filter(|r| !elsewhere.contains(r)) {
            assert!(seen.contains(reason), "{reason} untested");
        }
    }

    #[test]
    fn checks_run_in_a_stated_order() {
        // kid type first, then kty, private material, use, alg, key material, alg fit.
        let everything_wrong =
            with(good_rsa(), &[("d", json!("AQ")), ("use", json!("enc")), ("alg", json!("ES256"))]);
        assert_eq!(
            Jwk::parse(&with(everything_wrong.clone(), &[("kid", json!(7))])),
            Err(KeySkip::KidNotString)
        );
        assert_eq!(
            Jwk::parse(&with(everything_wrong.clone(), &[("kty", json!("oct"))])),
            Err(KeySkip::SymmetricKey)
        );
        assert_eq!(Jwk::parse(&everything_wrong), Err(KeySkip::PrivateKeyMaterial));
        let no_d = with(everything_wrong, &[("d", Value::Null)]);
        assert_eq!(Jwk::parse(&no_d), Err(KeySkip::UseNotSig));
        let no_use = with(no_d, &[("use", Value::Null), ("e", json!("AQ"))]);
        assert_eq!(Jwk::parse(&no_use), Err(KeySkip::RsaBadExponent));
        assert_eq!(Jwk::parse(&with(no_use, &[("e", json!("AQAB"))])), Err(KeySkip::AlgKeyMismatch));
    }

    #[test]
    fn duplicate_member_skips_only_that_key() {
        let rsa = good_rsa().to_string();
        let ec = good_p256().to_string();
        for dup in [
            r#"{"kty":"EC","kty":"RSA"}"#,
            r#"{"kty":"EC","\u006bty":"EC"}"#,
            r#"{"kty":"EC","ext":{"a":1,"a":2}}"#,
            r#"{"kty":"EC","ext":[{"a":1,"a":1}]}"#,
        ] {
            let doc = format!(r#"{{"keys":[{rsa},{dup},{ec}]}}"#);
            let parsed = KeySet::parse(doc.as_bytes()).unwrap();
            assert_eq!(parsed.keys.len(), 2, "{dup}");
            let skip = SkippedKey { index: 1, kid: None, reason: KeySkip::DuplicateMember };
            assert_eq!(parsed.skipped, [skip], "{dup}");
        }
    }

    #[test]
    fn good_keys_survive_beside_bad_ones() {
        let keys = [
            with(good_rsa(), &[("kid", json!("rsa"))]),
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
            rsa_jwk(&rsa("rsa1024-too-small")),
            with(good_p256(), &[("kid", json!("ec"))]),
            with(good_ed25519(), &[("use", json!("enc")), ("kid", json!("ed"))]),
        ];
        let parsed = KeySet::parse(&jwks(&keys)).unwrap();
        let kept: Vec<_> = parsed.keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kept, [Some("rsa"), Some("ec")]);
        let skipped: Vec<_> = parsed.skipped.iter().map(|s| (s.index, s.kid.as_deref(), s.reason)).collect();
        assert_eq!(
            skipped,
            [
                (1, Some("hmac"), KeySkip::SymmetricKey),
                (2, None, KeySkip::RsaModulusTooSmall),
                (4, Some("ed"), KeySkip::UseNotSig),
            ]
        );
    }

    #[test]
    fn only_bad_keys_is_an_error_listing_why() {
        let keys =
            [json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}), rsa_jwk(&rsa("rsa1024-too-small"))];
        let err = KeySet::parse(&jwks(&keys)).unwrap_err();
        let JwksError::NoUsableKey(skipped) = &err else { panic!("{err:?}") };
        assert_eq!(skipped.len(), 2);
        assert_eq!(
            err.to_string(),
            r#"JWKS has no usable key: key 0 (kid "hmac"): symmetric_key; key 1: rsa_modulus_too_small"#
        );
    }

    #[test]
    fn document_errors() {
        #[rustfmt::skip]
        let cases: [(&[u8], JwksError); 11] = [
            (b"", JwksError::NotJsonObject),
            (b"[]", JwksError::NotJsonObject),
            (b"\"keys\"", JwksError::NotJsonObject),
            (b"{\"keys\":[]", JwksError::NotJsonObject),
            (b"{\"keys\":[]} x", JwksError::NotJsonObject),
            (b"{\"keys\":[],\"x\":\"\xff\"}", JwksError::NotJsonObject),
            (b"{}", JwksError::NoKeysArray),
            (b"{\"keys\":{}}", JwksError::NoKeysArray),
            (b"{\"keys\":null}", JwksError::NoKeysArray),
            (b"{\"keys\":[],\"keys\":[]}", JwksError::DuplicateKeysMember),
            (b"{\"keys\":[],\"other\":{\"a\":1}}", JwksError::NoUsableKey(vec![])),
        ];
        for (doc, expected) in cases {
            assert_eq!(KeySet::parse(doc), Err(expected), "{}", String::from_utf8_lossy(doc));
        }
        for err in [
            JwksError::NotJsonObject,
            JwksError::NoKeysArray,
            JwksError::DuplicateKeysMember,
            JwksError::NoUsableKey(vec![]),
        ] {
            let message = err.to_string();
            assert!(message.starts_with("JWKS ") && !message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn duplicate_kid_makes_every_usable_holder_ambiguous() {
        let keys = [
            with(good_rsa(), &[("kid", json!("k"))]),
            with(good_p256(), &[("kid", json!("other"))]),
            with(good_ed25519(), &[("kid", json!("k"))]),
            // Unusable anyway, so it makes "other" no more ambiguous.
            with(rsa_jwk(&rsa("rsa2048-b")), &[("kid", json!("other")), ("use", json!("enc"))]),
            // Keys without a kid never collide.
            good_rsa(),
            good_p256(),
        ];
        let parsed = KeySet::parse(&jwks(&keys)).unwrap();
        let kept: Vec<_> = parsed.keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kept, [Some("other"), None, None]);
        let skipped: Vec<_> = parsed.skipped.iter().map(|s| (s.index, s.reason)).collect();
        assert_eq!(
            skipped,
            [(0, KeySkip::DuplicateKid), (2, KeySkip::DuplicateKid), (3, KeySkip::UseNotSig)]
        );

        let only_twins =
            [with(good_rsa(), &[("kid", json!("k"))]), with(good_p256(), &[("kid", json!("k"))])];
        let Err(JwksError::NoUsableKey(skipped)) = KeySet::parse(&jwks(&only_twins)) else { panic!() };
        assert!(skipped.iter().all(|s| s.reason == KeySkip::DuplicateKid && s.kid.as_deref() == Some("k")));
    }

    #[test]
    fn candidates_table() {
        let keys = [
            with(good_rsa(), &[("kid", json!("rsa-a")), ("alg", json!("RS256"))]),
            with(rsa_jwk(&rsa("rsa2048-b")), &[("kid", json!("rsa-b"))]),
            with(good_p256(), &[("kid", json!("ec-a"))]),
            p256_jwk(&p256("p256-b")),
            with(good_ed25519(), &[("kid", json!("ed"))]),
            with(good_ed25519(), &[("kid", json!("ed-eddsa")), ("alg", json!("EdDSA"))]),
            with(good_ed25519(), &[("kid", json!("ed-9864")), ("alg", json!("Ed25519"))]),
        ];
        let set = KeySet::parse(&jwks(&keys)).unwrap().keys;
        use Algorithm::*;
        type Kids<'a> = Result<Vec<Option<&'a str>>, JwtError>;
        #[rustfmt::skip]
        let cases: [(Algorithm, Option<&str>, Kids); 17] = [
            (RS256, Some("rsa-a"), Ok(vec![Some("rsa-a")])),
            (PS256, Some("rsa-a"), Err(JwtError::NoMatchingKey)), // the key's own alg binds it
            (PS256, Some("rsa-b"), Ok(vec![Some("rsa-b")])),
            (ES256, Some("rsa-b"), Err(JwtError::NoMatchingKey)),
            (RS256, Some("nope"), Err(JwtError::UnknownKid)),
            (RS256, Some(""), Err(JwtError::UnknownKid)),
            (RS256, Some("RSA-A"), Err(JwtError::UnknownKid)),
            (RS256, None, Ok(vec![Some("rsa-a"), Some("rsa-b")])),
            (PS384, None, Ok(vec![Some("rsa-b")])),
            (ES256, None, Ok(vec![Some("ec-a"), None])),
            (ES384, None, Err(JwtError::NoMatchingKey)),
            (EdDSA, None, Ok(vec![Some("ed"), Some("ed-eddsa")])),
            (EdDSA, Some("ed"), Ok(vec![Some("ed")])),
            // RFC 9864's name: the same keys, but a key's own `alg` names one of the two only.
            (Ed25519, None, Ok(vec![Some("ed"), Some("ed-9864")])),
            (Ed25519, Some("ed"), Ok(vec![Some("ed")])),
            (Ed25519, Some("ed-eddsa"), Err(JwtError::NoMatchingKey)),
            (EdDSA, Some("ed-9864"), Err(JwtError::NoMatchingKey)),
        ];
        for (alg, kid, expected) in cases {
            let got = set
                .candidates(alg, kid)
                .map(|keys| keys.iter().map(|k| k.kid.as_deref()).collect::<Vec<_>>());
            assert_eq!(got, expected, "{alg} {kid:?}");
        }
        assert!(set.contains_kid("ec-a") && !set.contains_kid("nope"));
        assert_eq!(set.iter().count(), 7);

        // An empty set (before any JWKS arrived) has no key for anything.
        let empty = KeySet::default();
        assert!(empty.is_empty());
        assert_eq!(empty.len(), 0);
        assert_eq!(empty.candidates(RS256, None).unwrap_err(), JwtError::NoMatchingKey);
        assert_eq!(empty.candidates(RS256, Some("k")).unwrap_err(), JwtError::UnknownKid);
    }

    #[test]
    fn roca_fingerprint() {
        // The published detector's bit masks for the first primes: bit r set ⇔ r is a power of 65537.
        for (p, mask) in [(3u32, 6u64), (5, 30), (7, 126), (11, 1026), (13, 5658)] {
            let ours = (0..p).filter(|r| generated_by_65537(*r, p)).fold(0u64, |m, r| m | 1 << r);
            assert_eq!(ours, mask, "p = {p}");
        }
        assert_eq!(residue(&[0x01, 0x00, 0x01], 7), 65537 % 7);
        assert_eq!(residue(&[], 7), 0);
        assert!(has_roca_fingerprint(&power_of_65537(128)));
        for name in ["rsa2048-a", "rsa2048-b", "rsa3072", "rsa1024-too-small"] {
            use rsa::traits::PublicKeyParts;
            assert!(!has_roca_fingerprint(&rsa(name).n_bytes()), "{name}");
        }
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64url_decode("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(b64url_decode("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(b64url_decode(""), Some(vec![]));
        for bad in ["AQAB=", "AQ==", "+/8", "AQ B", "AQAB\n", "AR", "A", "AQ%"] {
            assert_eq!(b64url_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reasons_are_unique_snake_case() {
        let reasons: Vec<_> = KeySkip::ALL.iter().map(|r| r.reason()).collect();
        crate::error::assert_reasons_unique_snake_case(&reasons);
    }

    #[test]
    fn skipped_key_display_escapes_the_kid() {
        let skip = SkippedKey { index: 3, kid: Some("a\"\nb".into()), reason: KeySkip::UseNotSig };
        assert_eq!(skip.to_string(), r#"key 3 (kid "a\"\nb"): use_not_sig"#);
    }
}

//! Test keys and tokens: the fixture keys, their public JWKs, and JWS signing of exact JSON texts.
//!
//! Signing takes the header and payload as *text*, so a test can craft anything a parser must
//! refuse (duplicate members, odd types, `crit`, ...). `Token` builds ordinary tokens on the real
//! clock. Also used by `examples/mint.rs` through `#[path]`: one implementation only, and every
//! function that handles user input returns `Result` instead of panicking.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value, json};
use std::ops::Deref;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A private signing key of one of the kinds a JWS verifier here knows.
pub enum Key {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl Key {
    /// Reads a PKCS#8 PEM private key of any supported kind.
    pub fn from_pem(pem: &str) -> Result<Key, String> {
        if let Ok(k) = rsa::PrivateKey::from_pkcs8_pem(pem) {
            return Ok(Key::Rsa(Box::new(k)));
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(Key::P256(k));
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(Key::P384(k));
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(Key::Ed25519(k));
        }
        Err("not a PKCS#8 PEM RSA, P-256, P-384 or Ed25519 private key".into())
    }

    /// Reads a key file (see `from_pem`); the error names the file.
    pub fn from_file(path: &str) -> Result<Key, String> {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        Key::from_pem(&pem).map_err(|e| format!("{path}: {e}"))
    }

    /// The algorithm a key of this kind signs with when none is asked for.
    pub fn default_alg(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "RS256",
            Key::P256(_) => "ES256",
            Key::P384(_) => "ES384",
            Key::Ed25519(_) => "EdDSA",
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "RSA",
            Key::P256(_) => "P-256",
            Key::P384(_) => "P-384",
            Key::Ed25519(_) => "Ed25519",
        }
    }

    /// The public JWK: base64url without padding, `n` without leading zero octets. `alg` is set
    /// only when given, since a JWK `alg` binds the key to that one algorithm in verifiers.
    pub fn jwk(&self, kid: &str, alg: Option<&str>) -> Value {
        let mut jwk = self.public_jwk();
        jwk["kid"] = json!(kid);
        if let Some(alg) = alg {
            jwk["alg"] = json!(alg);
        }
        jwk
    }

    /// The public JWK with its key members only (as a DPoP proof carries it).
    pub fn public_jwk(&self) -> Value {
        match self {
            Key::Rsa(k) => json!({"kty": "RSA", "n": b64(&k.n_bytes()), "e": b64(&k.e_bytes())}),
            Key::P256(k) => {
                let p = k.verifying_key().to_sec1_point(false);
                ec_jwk("P-256", p.x().map(|x| x.as_slice()), p.y().map(|y| y.as_slice()))
            }
            Key::P384(k) => {
                let p = k.verifying_key().to_sec1_point(false);
                ec_jwk("P-384", p.x().map(|x| x.as_slice()), p.y().map(|y| y.as_slice()))
            }
            Key::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&k.verifying_key().to_bytes())})
            }
        }
    }

    /// The RFC 7638 thumbprint of the public key (base64url SHA-256 of its required members in
    /// lexicographic order): what a DPoP-bound token names in `cnf.jkt`.
    pub fn thumbprint(&self) -> String {
        let jwk = self.public_jwk();
        let member = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
        let canonical = match self {
            Key::Rsa(_) => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, member("e"), member("n")),
            Key::P256(_) | Key::P384(_) => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                member("crv"),
                member("x"),
                member("y")
            ),
            Key::Ed25519(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, member("x")),
        };
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    /// The raw JWS signature of `msg` with `alg` (RS*: PKCS#1 v1.5; PS*: PSS with salt = hash
    /// length; ES*: raw R||S; EdDSA and Ed25519). Refuses an algorithm this kind of key cannot
    /// sign with.
    pub fn sign_bytes(&self, alg: &str, msg: &[u8]) -> Result<Vec<u8>, String> {
        let rsa = |e: rsa::Error| format!("RSA signing failed: {e}");
        match (alg, self) {
            ("RS256", Key::Rsa(k)) => k.pkcs1v15_sign::<Sha256>(msg).map_err(rsa),
            ("RS384", Key::Rsa(k)) => k.pkcs1v15_sign::<Sha384>(msg).map_err(rsa),
            ("RS512", Key::Rsa(k)) => k.pkcs1v15_sign::<Sha512>(msg).map_err(rsa),
            ("PS256", Key::Rsa(k)) => k.pss_sign::<Sha256>(msg).map_err(rsa),
            ("PS384", Key::Rsa(k)) => k.pss_sign::<Sha384>(msg).map_err(rsa),
            ("PS512", Key::Rsa(k)) => k.pss_sign::<Sha512>(msg).map_err(rsa),
            ("ES256", Key::P256(k)) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_bytes().to_vec())
            }
            ("ES384", Key::P384(k)) => {
                let sig: p384::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_bytes().to_vec())
            }
            ("EdDSA" | "Ed25519", Key::Ed25519(k)) => Ok(k.sign(msg).to_bytes().to_vec()),
            _ => Err(format!("cannot sign {alg} with a {} key", self.kind())),
        }
    }
}

/// An EC JWK from the coordinates of an uncompressed point (always present for one).
fn ec_jwk(crv: &str, x: Option<&[u8]>, y: Option<&[u8]>) -> Value {
    let coord = |c: Option<&[u8]>| b64(c.unwrap_or_default());
    json!({"kty": "EC", "crv": crv, "x": coord(x), "y": coord(y)})
}

/// The test-only fixture keys in `tests/fixtures` (see its README), loaded once on first use.
/// Dereferences to its `Key`, so `TestKey::RsaA.jwk(..)` and `sign(.., &TestKey::RsaA, ..)` work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestKey {
    RsaA,
    RsaB,
    Rsa3072,
    Rsa1024TooSmall,
    P256A,
    P256B,
    P384,
    Ed25519,
}

impl TestKey {
    pub const ALL: [TestKey; 8] = [
        TestKey::RsaA,
        TestKey::RsaB,
        TestKey::Rsa3072,
        TestKey::Rsa1024TooSmall,
        TestKey::P256A,
        TestKey::P256B,
        TestKey::P384,
        TestKey::Ed25519,
    ];

    /// The fixture's path (absolute, so it works from any working directory).
    pub fn path(self) -> String {
        let file = match self {
            TestKey::RsaA => "test-only-rsa2048-a.pem",
            TestKey::RsaB => "test-only-rsa2048-b.pem",
            TestKey::Rsa3072 => "test-only-rsa3072.pem",
            TestKey::Rsa1024TooSmall => "test-only-rsa1024-too-small.pem",
            TestKey::P256A => "test-only-p256-a.pem",
            TestKey::P256B => "test-only-p256-b.pem",
            TestKey::P384 => "test-only-p384.pem",
            TestKey::Ed25519 => "test-only-ed25519.pem",
        };
        format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))
    }

    /// The loaded key, read from its file once per process; panics when the fixture is missing.
    pub fn key(self) -> &'static Key {
        static KEYS: [OnceLock<Key>; TestKey::ALL.len()] = [const { OnceLock::new() }; TestKey::ALL.len()];
        KEYS[self as usize]
            .get_or_init(|| Key::from_file(&self.path()).unwrap_or_else(|e| panic!("test fixture: {e}")))
    }
}

impl Deref for TestKey {
    type Target = Key;

    fn deref(&self) -> &Key {
        self.key()
    }
}

/// The demo's keys and kids (`make run`, `examples/devserver.rs`, `envoy/demo-jwks.json`).
pub const DEMO_KEYS: [(TestKey, &str); 4] = [
    (TestKey::RsaA, "demo-rsa"),
    (TestKey::P256A, "demo-ec"),
    (TestKey::P384, "demo-ec384"),
    (TestKey::Ed25519, "demo-ed"),
];

/// The JWKS of `DEMO_KEYS`, the same as `envoy/demo-jwks.json` (an error, not a panic, when a
/// fixture cannot be read: the demo tools use this).
pub fn demo_jwks() -> Result<String, String> {
    let jwks: Result<Vec<Value>, String> =
        DEMO_KEYS.iter().map(|(key, kid)| Ok(Key::from_file(&key.path())?.jwk(kid, None))).collect();
    Ok(jwks_of(jwks?))
}

/// `{"keys": [...]}` with each fixture's public JWK under its kid (no `alg`, so an RSA key serves
/// both RS* and PS*).
pub fn jwks(keys: &[(TestKey, &str)]) -> String {
    jwks_of(keys.iter().map(|(k, kid)| k.jwk(kid, None)))
}

/// `{"keys": [...]}` around any JWK values (for hand-made or broken keys).
pub fn jwks_of(jwks: impl IntoIterator<Item = Value>) -> String {
    json!({"keys": jwks.into_iter().collect::<Vec<_>>()}).to_string()
}

/// A compact JWS over exactly these header and payload texts, signed with `alg` (which need not
/// be the header's `alg`: tests of algorithm confusion sign with one and announce another).
pub fn try_sign(header_json: &str, payload_json: &str, key: &Key, alg: &str) -> Result<String, String> {
    let input = format!("{}.{}", b64(header_json.as_bytes()), b64(payload_json.as_bytes()));
    let sig = key.sign_bytes(alg, input.as_bytes())?;
    Ok(format!("{input}.{}", b64(&sig)))
}

/// `try_sign` for tests: panics when the key cannot sign with `alg`.
pub fn sign(header_json: &str, payload_json: &str, key: &Key, alg: &str) -> String {
    try_sign(header_json, payload_json, key, alg).unwrap_or_else(|e| panic!("{e}"))
}

/// An `alg: none` style token: the two parts and an empty signature.
pub fn unsigned(header_json: &str, payload_json: &str) -> String {
    format!("{}.{}.", b64(header_json.as_bytes()), b64(payload_json.as_bytes()))
}

/// The same token with one bit of its signature flipped (or one byte added to an empty one), so
/// it is well-formed and its signature is wrong.
pub fn tamper(token: &str) -> String {
    let (signed, sig) = token.rsplit_once('.').unwrap_or((token, ""));
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
    match bytes.first_mut() {
        Some(b) => *b ^= 0x01,
        None => bytes.push(0),
    }
    format!("{signed}.{}", b64(&bytes))
}

/// The same token with another payload text and the original signature.
pub fn swap_payload(token: &str, payload_json: &str) -> String {
    let mut parts = token.splitn(3, '.');
    let header = parts.next().unwrap_or_default();
    let sig = parts.nth(1).unwrap_or_default();
    format!("{header}.{}.{sig}", b64(payload_json.as_bytes()))
}

/// A DPoP proof (RFC 9449 §4.2) by `key` (its usual algorithm, its public JWK in the header) for
/// a `method` request to `htu`, presented with `access_token` (`ath`; `None` for a token
/// request), made now with a `jti` no other proof of this process has. Tests change one member
/// at a time; `sign()` makes it.
pub fn dpop_proof<'k>(key: &'k Key, method: &str, htu: &str, access_token: Option<&str>) -> Token<'k> {
    let proof = Token::with_key(key.default_alg(), key)
        .header("typ", json!("dpop+jwt"))
        .header("jwk", key.public_jwk())
        .claim("jti", json!(fresh_jti()))
        .claim("htm", json!(method))
        .claim("htu", json!(htu));
    match access_token {
        Some(token) => proof.claim("ath", json!(access_token_hash(token))),
        None => proof,
    }
}

/// `ath`: base64url SHA-256 of the access token (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    b64(&Sha256::digest(token.as_bytes()))
}

/// A `jti` unique in this process (and, with the process id and the clock, across runs).
fn fresh_jti() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{}-{nanos}-{n}", std::process::id())
}

/// base64url without padding (RFC 7515 §2).
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch, from the real clock (Envoy checks `exp` against the same clock).
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// A builder for ordinary tokens: header `{"alg", "typ": "JWT"}` and claims `{"iat": now}` to
/// start with; each setter replaces one member.
pub struct Token<'k> {
    alg: String,
    key: &'k Key,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl Token<'static> {
    /// A token signed by a fixture key.
    pub fn new(alg: &str, key: TestKey) -> Token<'static> {
        Token::with_key(alg, key.key())
    }
}

impl<'k> Token<'k> {
    /// A token signed by any key (for keys read from files).
    pub fn with_key(alg: &str, key: &'k Key) -> Token<'k> {
        let mut header = Map::new();
        header.insert("alg".into(), json!(alg));
        header.insert("typ".into(), json!("JWT"));
        let mut claims = Map::new();
        claims.insert("iat".into(), json!(now()));
        Token { alg: alg.into(), key, header, claims }
    }

    pub fn kid(self, kid: &str) -> Self {
        self.header("kid", json!(kid))
    }

    /// Sets a header member (any JSON value, `null` included).
    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header.insert(name.into(), value);
        self
    }

    pub fn remove_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    pub fn iss(self, iss: &str) -> Self {
        self.claim("iss", json!(iss))
    }

    pub fn sub(self, sub: &str) -> Self {
        self.claim("sub", json!(sub))
    }

    /// A single audience, as a string.
    pub fn aud(self, aud: &str) -> Self {
        self.claim("aud", json!(aud))
    }

    /// Several audiences, as an array.
    pub fn auds(self, auds: &[&str]) -> Self {
        self.claim("aud", json!(auds))
    }

    /// `exp` this many seconds from now (negative: already expired).
    pub fn exp_in(self, secs: i64) -> Self {
        self.claim("exp", json!(now() + secs))
    }

    /// `nbf` this many seconds from now.
    pub fn nbf_in(self, secs: i64) -> Self {
        self.claim("nbf", json!(now() + secs))
    }

    /// Sets a claim (any JSON value, `null` included).
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.into(), value);
        self
    }

    pub fn remove_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    pub fn header_json(&self) -> String {
        Value::Object(self.header.clone()).to_string()
    }

    pub fn payload_json(&self) -> String {
        Value::Object(self.claims.clone()).to_string()
    }

    pub fn try_sign(&self) -> Result<String, String> {
        try_sign(&self.header_json(), &self.payload_json(), self.key, &self.alg)
    }

    /// Signs; panics when the key cannot sign with the algorithm (a bug in the test).
    pub fn sign(&self) -> String {
        self.try_sign().unwrap_or_else(|e| panic!("{e}"))
    }
}

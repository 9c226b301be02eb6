//! The JWS algorithms this verifier knows (RFC 7518 §3, RFC 8037, RFC 9864), and small sets of
//! them.
//! HMAC is deliberately absent: a JWKS is public, so a shared-secret algorithm would let anyone
//! who can read the key set mint tokens.

use std::fmt;

/// An asymmetric JWS signature algorithm. Names are case-sensitive (RFC 7515 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    /// RFC 9864's fully-specified name for EdDSA with Ed25519, which replaces the polymorphic
    /// `EdDSA` (libraries such as panva's `jose` and `dpop` sign with it). The same key type and
    /// verification as `EdDSA`; a distinct name, so a key whose `alg` says one serves only that.
    Ed25519,
}

/// What kind of key an algorithm needs (RFC 7518 §6, RFC 8037 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Algorithm {
    pub const ALL: [Algorithm; 10] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::Ed25519,
    ];

    /// Exact, case-sensitive lookup; `None` for `none`, HS*, ES512 and anything unknown.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::Ed25519 => "Ed25519",
        }
    }

    pub fn key_kind(self) -> KeyKind {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyKind::Rsa,
            Algorithm::ES256 => KeyKind::P256,
            Algorithm::ES384 => KeyKind::P384,
            Algorithm::EdDSA | Algorithm::Ed25519 => KeyKind::Ed25519,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of algorithms (a provider's allow-list), as a bit mask: copying and lookup are free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    pub const EMPTY: AlgorithmSet = AlgorithmSet(0);

    /// Every algorithm above: the default allow-list.
    pub fn all() -> AlgorithmSet {
        Algorithm::ALL.into_iter().collect()
    }

    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    pub fn insert(&mut self, alg: Algorithm) {
        self.0 |= alg.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl Default for AlgorithmSet {
    fn default() -> Self {
        AlgorithmSet::all()
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        let mut set = AlgorithmSet::EMPTY;
        for alg in iter {
            set.insert(alg);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
            assert_eq!(Algorithm::from_name(&alg.name().to_lowercase()), None);
        }
        for refused in ["none", "None", "HS256", "HS384", "HS512", "ES512", "ES256K", "", "RS256 "] {
            assert_eq!(Algorithm::from_name(refused), None, "{refused}");
        }
    }

    #[test]
    fn set_membership() {
        let set: AlgorithmSet = [Algorithm::RS256, Algorithm::ES256].into_iter().collect();
        assert!(set.contains(Algorithm::RS256) && set.contains(Algorithm::ES256));
        assert!(!set.contains(Algorithm::PS256));
        assert_eq!(set.iter().count(), 2);
        assert_eq!(AlgorithmSet::all().iter().count(), Algorithm::ALL.len());
        assert!(AlgorithmSet::EMPTY.is_empty());
    }
}

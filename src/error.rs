//! Why a token was refused. Every failure has its own variant and a short, stable reason string
//! (like jwt_verify_lib's status codes): the string appears in 401 bodies, logs and metric names, so
//! renaming one is a breaking change.

use std::fmt;

/// Declares an enum of failure reasons from one table of `Variant => "stable_reason"` lines:
/// the enum, `reason()` and `ALL` (every variant) can then never drift apart.
macro_rules! reasons {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $reason:literal, )*
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every variant, in declaration order (for exhaustive tests and metrics).
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// Short, stable reason (snake_case): safe for a 401 body, a log line or a metric name.
            pub fn reason(&self) -> &'static str {
                match self {
                    $($name::$variant => $reason,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.reason())
            }
        }
    };
}

/// Checks a reason table: distinct strings, each snake_case (they end up in metric names).
#[cfg(test)]
pub(crate) fn assert_reasons_unique_snake_case(reasons: &[&'static str]) {
    let distinct: std::collections::HashSet<_> = reasons.iter().collect();
    assert_eq!(distinct.len(), reasons.len());
    for r in reasons {
        assert!(r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()), "{r}");
    }
}
pub(crate) use reasons;

reasons! {
    /// A token check that failed. `reason()` is stable, and is also what `Display` shows.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum JwtError {
        // Rule 1: form.
        /// The token is longer than `max_token_bytes`; checked before any decoding.
        TooLarge => "jwt_too_large",
        /// JWS JSON serialization (`{"payload":...}`) instead of the compact form.
        JsonSerialization => "jws_json_serialization_unsupported",
        /// Five segments: an encrypted JWT (JWE), which this verifier does not decrypt.
        Jwe => "jwe_unsupported",
        /// Not exactly three non-empty `.`-separated segments.
        BadFormat => "jwt_bad_format",
        /// A segment is not canonical unpadded base64url.
        HeaderBadBase64 => "jwt_header_bad_base64",
        PayloadBadBase64 => "jwt_payload_bad_base64",
        SignatureBadBase64 => "jwt_signature_bad_base64",

        // Rule 2: header.
        /// The header is not a UTF-8 JSON object (or nests too deep).
        HeaderParse => "jwt_header_parse_error",
        /// The header names a member twice.
        HeaderDuplicateMember => "jwt_header_duplicate_member",
        /// The header has no `alg`.
        HeaderMissingAlg => "jwt_header_missing_alg",
        /// `alg` is not a string.
        HeaderBadAlg => "jwt_header_bad_alg",
        /// `alg` is a string but not in the provider's allow-list (`none`, HS*, unknown names...).
        AlgNotAllowed => "jwt_alg_not_allowed",
        /// `kid` is present but not a string.
        HeaderBadKid => "jwt_header_bad_kid",
        /// `crit` is present but malformed (not a non-empty array of names present in the header).
        HeaderBadCrit => "jwt_header_bad_crit",
        /// `crit` names an extension; this verifier understands none.
        CritNotSupported => "jwt_crit_unsupported",
        /// `cty` says the payload is itself a JWT (nested JWT).
        NestedJwt => "jwt_nested_unsupported",

        // Rule 3: claims.
        /// The payload is not a UTF-8 JSON object (or nests too deep).
        PayloadParse => "jwt_payload_parse_error",
        /// The payload names a member twice.
        PayloadDuplicateMember => "jwt_payload_duplicate_member",
        /// A registered claim has the wrong JSON type.
        BadIss => "jwt_iss_bad_type",
        BadSub => "jwt_sub_bad_type",
        BadAud => "jwt_aud_bad_type",
        BadExp => "jwt_exp_bad_type",
        BadNbf => "jwt_nbf_bad_type",
        BadIat => "jwt_iat_bad_type",
        /// `exp` is in the past (beyond the clock skew).
        Expired => "jwt_expired",
        /// `nbf` is in the future (beyond the clock skew).
        NotYetValid => "jwt_not_yet_valid",
        /// `exp` is required (`require_expiration` or `max_lifetime`) and absent.
        MissingExp => "jwt_missing_exp",
        /// `iat` is required (`max_lifetime`) and absent.
        MissingIat => "jwt_missing_iat",
        /// `exp - iat` exceeds `max_lifetime`.
        LifetimeTooLong => "jwt_lifetime_too_long",

        // Rule 4: issuer and audience.
        /// `iss` differs from the provider's issuer (or is absent while one is required).
        IssuerNotAllowed => "jwt_issuer_not_allowed",
        /// Audiences are required and the token has no `aud`.
        MissingAudience => "jwt_missing_audience",
        /// No token audience equals an allowed one.
        AudienceNotAllowed => "jwt_audience_not_allowed",
        /// The provider's `subjects` matcher refuses the token's `sub` (or it has none).
        SubjectNotAllowed => "jwt_subject_not_allowed",
        /// A `required_claims` entry is absent or has none of its values.
        ClaimMismatch => "jwt_required_claim_mismatch",
        /// A `required_scopes` entry is not granted by `scope`/`scp`.
        InsufficientScope => "jwt_insufficient_scope",

        // Rules 5 and 7: keys and signature.
        /// The token names a `kid` that is not in the key set.
        UnknownKid => "jwt_unknown_kid",
        /// No key in the set fits the token's `alg` (and `kid`, if any).
        NoMatchingKey => "jwt_no_matching_key",
        /// The signature does not verify with any candidate key.
        BadSignature => "jwt_bad_signature",
    }
}

impl JwtError {
    /// The coarse class of the failure, for metric names (a handful per provider rather than one
    /// per reason).
    pub fn category(self) -> &'static str {
        use JwtError::*;
        match self {
            AlgNotAllowed => "alg_not_allowed",
            Expired => "expired",
            NotYetValid => "not_yet_valid",
            MissingExp | MissingIat | LifetimeTooLong => "lifetime",
            IssuerNotAllowed => "issuer",
            MissingAudience | AudienceNotAllowed => "audience",
            SubjectNotAllowed => "subject",
            ClaimMismatch | InsufficientScope => "insufficient_scope",
            UnknownKid => "unknown_kid",
            NoMatchingKey | BadSignature => "bad_signature",
            TooLarge
            | JsonSerialization
            | Jwe
            | BadFormat
            | HeaderBadBase64
            | PayloadBadBase64
            | SignatureBadBase64
            | HeaderParse
            | HeaderDuplicateMember
            | HeaderMissingAlg
            | HeaderBadAlg
            | HeaderBadKid
            | HeaderBadCrit
            | CritNotSupported
            | NestedJwt
            | PayloadParse
            | PayloadDuplicateMember
            | BadIss
            | BadSub
            | BadAud
            | BadExp
            | BadNbf
            | BadIat => "malformed",
        }
    }
}

impl std::error::Error for JwtError {}

reasons! {
    /// Why a request's sender constraint was not met. `reason()` is stable (401 bodies,
    /// `error_description`, logs, metrics).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum BindingError {
        // The credentials as presented.
        /// A `Bearer` and a `DPoP` credential in one request (RFC 9449 §7.2): 400.
        BothSchemes => "dpop_bearer_and_dpop",
        /// `Authorization: DPoP` to a provider whose `dpop.mode` is `disabled`.
        NotAccepted => "dpop_not_accepted",
        /// A `Bearer` token to a provider whose `dpop.mode` is `required`.
        BearerNotAllowed => "dpop_bearer_not_allowed",
        /// A DPoP-bound token (`cnf.jkt`) sent as `Bearer` (§7.2).
        Downgrade => "dpop_downgrade",
        /// `Authorization: DPoP` with a token that has no `cnf.jkt`.
        TokenUnbound => "dpop_token_unbound",

        // The proof (RFC 9449 §4.3).
        /// `Authorization: DPoP` without a `DPoP` header.
        ProofMissing => "dpop_proof_missing",
        /// More than one `DPoP` header, or one holding a list.
        ProofRepeated => "dpop_proof_repeated",
        /// Longer than any real proof: refused before decoding.
        ProofTooLarge => "dpop_proof_too_large",
        /// Not one compact JWS of strict base64url.
        ProofMalformed => "dpop_proof_malformed",
        /// The protected header is not a strict JSON object, or breaks a JWS header rule
        /// (`kid` type, `crit`, nested `cty`).
        ProofHeaderInvalid => "dpop_proof_header_invalid",
        /// `typ` is absent or not exactly `dpop+jwt`.
        ProofBadTyp => "dpop_proof_bad_typ",
        /// `alg` is absent, not a string, or not in `dpop.algorithms` (never `none` or HMAC).
        ProofAlgNotAllowed => "dpop_proof_alg_not_allowed",
        /// `jwk` is absent, not an object, not a usable public key, or not of the `alg`'s type.
        ProofBadJwk => "dpop_proof_bad_jwk",
        /// `jwk` carries private key material (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`).
        ProofPrivateKey => "dpop_proof_private_key",
        /// The payload is not a strict JSON object.
        ProofClaimsInvalid => "dpop_proof_claims_invalid",
        /// `jti` is absent, not a string, empty or too long.
        ProofBadJti => "dpop_proof_bad_jti",
        /// `htm` is absent or not a string.
        ProofBadHtm => "dpop_proof_bad_htm",
        /// `htm` is not the request's method.
        HtmMismatch => "dpop_htm_mismatch",
        /// `htu` is absent, not a string, or not an absolute http(s) URI.
        ProofBadHtu => "dpop_proof_bad_htu",
        /// `htu` names another URI than the request's (after normalisation).
        HtuMismatch => "dpop_htu_mismatch",
        /// `iat` is absent or not a number of seconds.
        ProofBadIat => "dpop_proof_bad_iat",
        /// `iat` is older than `dpop.max_age`.
        IatTooOld => "dpop_iat_too_old",
        /// `iat` is further ahead than `dpop.max_future`.
        IatInFuture => "dpop_iat_in_future",
        /// `ath` is absent or not a string.
        ProofBadAth => "dpop_proof_bad_ath",
        /// `ath` is not the hash of the access token presented with the proof.
        AthMismatch => "dpop_ath_mismatch",
        /// The signature does not verify with the proof's own `jwk`.
        ProofBadSignature => "dpop_proof_bad_signature",
        /// The proof's key is not the one the token is bound to (`cnf.jkt`).
        JktMismatch => "dpop_jkt_mismatch",
        /// This proof (`jti`, same key) was already used within its window.
        Replayed => "dpop_proof_replayed",
        /// The replay record has no room for the proof right now (its bucket is full of
        /// unexpired proofs): refused rather than forget another proof.
        ReplayFull => "dpop_replay_full",
        /// The replay record cannot vouch for the proof right now (being created or repaired,
        /// or a write race lost too often): refused rather than accepted unrecorded.
        ReplayUnavailable => "dpop_replay_unavailable",

        // Server nonces (RFC 9449 §9): answered with `use_dpop_nonce` and a fresh nonce.
        /// The provider wants nonces and the proof has none.
        NonceMissing => "dpop_nonce_missing",
        /// The proof's `nonce` is not one this Envoy issued in the current or the previous step.
        NonceInvalid => "dpop_nonce_invalid",
        /// The provider wants nonces and no nonce secret is available yet (not the client's fault).
        NonceUnavailable => "dpop_nonce_unavailable",

        // The token's `cnf` and certificate binding (RFC 8705 §3).
        /// `cnf` is not an object, or its `jkt` / `x5t#S256` is not a base64url SHA-256 digest.
        CnfMalformed => "cnf_malformed",
        /// `cnf` binds the token by a method this filter does not check (`jwk`, `kid`, ...):
        /// it must not pass as if unbound.
        CnfUnsupported => "cnf_unsupported_method",
        /// A certificate-bound token over a connection without a client certificate.
        CertificateMissing => "cnf_certificate_missing",
        /// A certificate-bound token over a connection with another client certificate.
        CertificateMismatch => "cnf_certificate_mismatch",
        /// `certificate_bound.mode` is `required` and the token has no `cnf.x5t#S256`.
        CertificateUnbound => "cnf_certificate_unbound",
    }
}

impl BindingError {
    /// Every metric category, in a stable order.
    pub const CATEGORIES: [&'static str; 6] =
        ["dpop_binding", "dpop_proof", "dpop_replayed", "dpop_replay_unavailable", "dpop_nonce", "cnf"];

    /// The coarse class, for metric names.
    pub fn category(self) -> &'static str {
        use BindingError::*;
        match self {
            BothSchemes | NotAccepted | BearerNotAllowed | Downgrade | TokenUnbound => "dpop_binding",
            Replayed => "dpop_replayed",
            ReplayFull | ReplayUnavailable => "dpop_replay_unavailable",
            NonceMissing | NonceInvalid | NonceUnavailable => "dpop_nonce",
            CnfMalformed | CnfUnsupported | CertificateMissing | CertificateMismatch | CertificateUnbound => {
                "cnf"
            }
            _ => "dpop_proof",
        }
    }
}

impl std::error::Error for BindingError {}

/// Why a request (not one token) failed authentication: what the requirement evaluation and the
/// HTTP filter answer with. Token failures are wrapped; the others happen before or around a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthnError {
    /// No token where the requirement needs one.
    Missing,
    /// A configured token header (or query parameter, or cookie) appears more than once.
    RepeatedLocation,
    /// A configured location has the scheme prefix but not exactly one token after it.
    MalformedLocation,
    /// A token was found and refused.
    Jwt(JwtError),
    /// A token verified, and its sender constraint (DPoP proof, client certificate) was not met.
    Binding(BindingError),
    /// The provider has no usable keys right now (fetch failing, or still starting): not the client's fault.
    KeysUnavailable,
    /// The route names a requirement `requirement_map` does not have (a configuration error).
    UnknownRequirement,
    /// The route's `jwt_authn_wasm` metadata is neither `{"disabled": true}` nor
    /// `{"requirement_name": "..."}` (a configuration error).
    BadRouteMetadata,
    /// The client sent a header this filter writes while routes choose the requirement: the route
    /// was matched with it, and the request will be routed again without it (see `route`).
    OutputHeaderSent,
}

impl AuthnError {
    /// Every metric category, in a stable order (the last six are [`BindingError::CATEGORIES`]).
    pub const CATEGORIES: [&'static str; 20] = [
        "missing",
        "malformed",
        "alg_not_allowed",
        "bad_signature",
        "unknown_kid",
        "expired",
        "not_yet_valid",
        "lifetime",
        "issuer",
        "audience",
        "subject",
        "insufficient_scope",
        "keys_unavailable",
        "route",
        "dpop_binding",
        "dpop_proof",
        "dpop_replayed",
        "dpop_replay_unavailable",
        "dpop_nonce",
        "cnf",
    ];

    /// The coarse class, for metric names (see [`JwtError::category`]).
    pub fn category(self) -> &'static str {
        match self {
            AuthnError::Missing => "missing",
            AuthnError::RepeatedLocation | AuthnError::MalformedLocation => "malformed",
            AuthnError::Jwt(e) => e.category(),
            AuthnError::Binding(e) => e.category(),
            AuthnError::KeysUnavailable => "keys_unavailable",
            AuthnError::UnknownRequirement | AuthnError::BadRouteMetadata | AuthnError::OutputHeaderSent => {
                "route"
            }
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            AuthnError::Missing => "jwt_missing",
            AuthnError::RepeatedLocation => "jwt_location_repeated",
            AuthnError::MalformedLocation => "jwt_location_malformed",
            AuthnError::Jwt(e) => e.reason(),
            AuthnError::Binding(e) => e.reason(),
            AuthnError::KeysUnavailable => "jwks_unavailable",
            AuthnError::UnknownRequirement => "route_unknown_requirement",
            AuthnError::BadRouteMetadata => "route_metadata_invalid",
            AuthnError::OutputHeaderSent => "output_header_from_client",
        }
    }
}

impl fmt::Display for AuthnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl From<JwtError> for AuthnError {
    fn from(e: JwtError) -> Self {
        AuthnError::Jwt(e)
    }
}

impl From<BindingError> for AuthnError {
    fn from(e: BindingError) -> Self {
        AuthnError::Binding(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_is_listed() {
        let binding = BindingError::ALL.iter().copied().map(AuthnError::Binding);
        for e in JwtError::ALL.iter().copied().map(AuthnError::Jwt).chain(binding).chain([
            AuthnError::Missing,
            AuthnError::RepeatedLocation,
            AuthnError::MalformedLocation,
            AuthnError::KeysUnavailable,
        ]) {
            assert!(AuthnError::CATEGORIES.contains(&e.category()), "{e}");
        }
        assert_eq!(AuthnError::CATEGORIES[14..], BindingError::CATEGORIES);
    }

    #[test]
    fn reasons_are_unique_snake_case() {
        let reasons: Vec<_> = JwtError::ALL.iter().map(|e| e.reason()).collect();
        assert_reasons_unique_snake_case(&reasons);
    }
}

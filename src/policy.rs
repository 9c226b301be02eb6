//! What one provider accepts: the plain-data input of the verifier, built from the config.

use crate::alg::AlgorithmSet;

/// Default cap on a token's length, checked before any decoding. A bound keeps a hostile header
/// from costing base64 and JSON work in proportion to its size (Envoy lets 60 KiB of headers
/// through by default); 16 KiB passes what real IdPs issue, such as Keycloak access tokens that
/// carry many group claims (~9 KB), which 8 KiB refused while jwt_authn accepts them.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Default tolerance for `exp`/`nbf`, as jwt_authn's `clock_skew_seconds`.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// When set, `iss` must equal it exactly.
    pub issuer: Option<String>,
    /// When non-empty, at least one token audience must equal one of these exactly.
    pub audiences: Vec<String>,
    /// The `alg` values accepted; `none` and HMAC can never be in it.
    pub algorithms: AlgorithmSet,
    pub clock_skew_seconds: u64,
    /// Refuse tokens without `exp`.
    pub require_expiration: bool,
    /// When set, `exp` and `iat` are required and `exp - iat` must not exceed it.
    pub max_lifetime_seconds: Option<u64>,
    pub max_token_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            issuer: None,
            audiences: Vec::new(),
            algorithms: AlgorithmSet::all(),
            clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
            require_expiration: false,
            max_lifetime_seconds: None,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

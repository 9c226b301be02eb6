//! Whether a verified token's sender constraint is met by the request that presents it: the
//! scheme it came with, the DPoP proof's key, the server nonce, the client certificate. Plain
//! data in, the bound identity or a [`BindingError`] out.
//!
//! The rules, in order (the first failure decides the reason):
//! 1. No binding configured: behaviour as without this feature (`cnf` is not read); only a
//!    `DPoP` credential is refused, since nothing checks its proof.
//! 2. With DPoP on, a request carrying both a Bearer and a DPoP credential is malformed (400,
//!    RFC 9449 §7.2).
//! 3. `cnf` is read strictly (`cnf`: malformed or unknown methods refuse the token).
//! 4. DPoP (RFC 9449 §7.1, §7.2), by `dpop.mode`:
//!    - `disabled`: a `Bearer` token passes whatever its `cnf.jkt`; `DPoP` is not accepted;
//!    - a `Bearer` token with `cnf.jkt` is a downgrade; under `required` no `Bearer` token passes;
//!    - a `DPoP` token needs a valid proof, a `cnf.jkt`, and that `cnf.jkt` must be the proof
//!      key's thumbprint (constant time); then the nonce, when the provider wants nonces.
//! 5. Certificate binding (RFC 8705 §3), by `certificate_bound.mode`: a token with `cnf.x5t#S256`
//!    (any scheme) needs a client certificate with that SHA-256; under `required`, every token
//!    needs one. `disabled`: `x5t#S256` is not looked at.
//!
//! What remains for the caller once this accepts: record the proof in the replay record
//! (`replay`), last, and offer [`Bound::offer_nonce`].

use super::BindingError::{self, *};
use super::cnf::Confirmation;
use super::nonce::Nonces;
use super::proof::VerifiedProof;
use super::thumbprint::Thumbprint;
use crate::claims::Claims;
use crate::config::{BindingMode, DpopConfig, TokenBinding};

/// How the access token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer`, or any other configured location (query, cookie, header).
    Bearer,
    /// `Authorization: DPoP`.
    Dpop,
}

/// The request as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub scheme: Scheme,
    /// The request also carries a credential of the other scheme.
    pub both_schemes: bool,
    /// The verified token's claims.
    pub claims: &'a Claims,
    /// For a `DPoP` token, what `proof::verify_proof` said; `None` when it was not asked (a
    /// `Bearer` token).
    pub proof: Option<&'a Result<VerifiedProof, BindingError>>,
    /// Envoy's `connection.sha256_peer_certificate_digest` (hex); `None` or empty without a
    /// client certificate.
    pub peer_certificate: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
}

/// What the request proved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bound {
    /// The DPoP key the token is bound to and the proof was signed with.
    pub jkt: Option<Thumbprint>,
    /// The certificate the token is bound to and the connection presented.
    pub x5t_s256: Option<Thumbprint>,
    /// A new nonce to offer (`DPoP-Nonce`): the proof's was the previous step's.
    pub offer_nonce: Option<String>,
}

/// The decision (rules in the module doc). `nonces`: the provider's nonces when its `dpop` has a
/// `nonce` block and the shell holds the shared secret.
pub fn decide(
    binding: &TokenBinding,
    presented: &Presented<'_>,
    nonces: Option<&Nonces>,
) -> Result<Bound, BindingError> {
    if !binding.enabled() {
        return match presented.scheme {
            Scheme::Bearer => Ok(Bound::default()),
            Scheme::Dpop => Err(NotAccepted),
        };
    }
    if binding.dpop.mode != BindingMode::Disabled && presented.both_schemes {
        return Err(BothSchemes);
    }
    let cnf = Confirmation::of(presented.claims)?;
    let (jkt, offer_nonce) = check_dpop(&binding.dpop, presented, &cnf, nonces)?;
    let x5t_s256 = check_certificate(binding.certificate, presented, &cnf)?;
    Ok(Bound { jkt, x5t_s256, offer_nonce })
}

/// Rule 4: the key the token is bound to and proven with, and a nonce to offer.
fn check_dpop(
    config: &DpopConfig,
    presented: &Presented<'_>,
    cnf: &Confirmation,
    nonces: Option<&Nonces>,
) -> Result<(Option<Thumbprint>, Option<String>), BindingError> {
    use BindingMode::*;
    match (config.mode, presented.scheme) {
        (Disabled, Scheme::Bearer) => Ok((None, None)),
        (Disabled, Scheme::Dpop) => Err(NotAccepted),
        (_, Scheme::Bearer) if cnf.jkt.is_some() => Err(Downgrade),
        (Required, Scheme::Bearer) => Err(BearerNotAllowed),
        (Allowed, Scheme::Bearer) => Ok((None, None)),
        (Allowed | Required, Scheme::Dpop) => {
            let proof = presented.proof.ok_or(ProofMissing)?.as_ref().map_err(|e| *e)?;
            let jkt = cnf.jkt.ok_or(TokenUnbound)?;
            if !jkt.matches(&proof.jkt) {
                return Err(JktMismatch);
            }
            let offer = match (&config.nonce, nonces) {
                (None, _) => None,
                (Some(_), None) => return Err(NonceUnavailable),
                (Some(_), Some(nonces)) => nonces.check(proof.nonce.as_deref(), presented.now)?,
            };
            Ok((Some(jkt), offer))
        }
    }
}

/// Rule 5: the certificate the token is bound to and the connection presented.
fn check_certificate(
    mode: BindingMode,
    presented: &Presented<'_>,
    cnf: &Confirmation,
) -> Result<Option<Thumbprint>, BindingError> {
    let bound_to = match (mode, cnf.x5t_s256) {
        (BindingMode::Disabled, _) | (BindingMode::Allowed, None) => return Ok(None),
        (BindingMode::Required, None) => return Err(CertificateUnbound),
        (_, Some(bound_to)) => bound_to,
    };
    let peer = presented.peer_certificate.filter(|hex| !hex.is_empty()).ok_or(CertificateMissing)?;
    // A digest Envoy gave in another form than 64 hex digits matches nothing.
    let peer = Thumbprint::from_hex(peer).ok_or(CertificateMismatch)?;
    if bound_to.matches(&peer) { Ok(Some(bound_to)) } else { Err(CertificateMismatch) }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

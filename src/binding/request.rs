//! The binding checks of one request, as the decision (`authn`) runs them: each verified token of
//! a provider with a binding on is checked against the request that presents it, the proofs that
//! passed wait to be recorded until the whole request is allowed, and a refusal is answered with
//! the challenges of the provider that accepts DPoP.
//!
//! - Every DPoP request's proof is checked, also when its access token is a cache or
//!   shared-record hit: a proof is new on every request, only the token is reused.
//! - The replay record is written last ([`Bindings::record`], once the requirement allowed the
//!   request): a request held for keys and decided again, or refused for another provider's
//!   token, has not used its proof up.
//! - The connection's client certificate is read at most once per request, and only for a
//!   provider with certificate binding on: other requests make no host call for it.

use super::BindingError;
use super::decide::{self, Presented, Scheme};
use super::memo::ProofMemo;
use super::nonce::Nonces;
use super::proof::{self, ProofRequest, VerifiedProof};
use crate::claims::Claims;
use crate::config::{BindingMode, ProviderId, TokenBinding};
use crate::crypto::Crypto;

/// What the checks need from the proxy: shared data and the connection.
pub trait BindingHost {
    /// The provider's server nonces: `None` when it wants none or the shared secret is not at
    /// hand (then its DPoP requests are refused with `dpop_nonce_unavailable`).
    fn nonces(&self, provider: ProviderId) -> Option<&Nonces>;
    /// Envoy's `connection.sha256_peer_certificate_digest` (hex), `None` without a client
    /// certificate.
    fn peer_certificate(&self) -> Option<String>;
    /// Records `proof` in the process-wide replay record (`replay::ReplayRecord::record`, with a
    /// clock read afresh at each call).
    fn record(&self, provider: ProviderId, proof: &VerifiedProof) -> Result<(), BindingError>;
    /// This VM's memo of proof keys and token hashes.
    fn memo(&self) -> &ProofMemo;
}

/// One token as the checks see it.
#[derive(Debug, Clone, Copy)]
pub struct Presentation<'a> {
    /// The access token as it came (for the proof's `ath`).
    pub token: &'a str,
    pub scheme: Scheme,
    /// Its verified claims (for `cnf`).
    pub claims: &'a Claims,
}

/// The request as the checks read it. Header names are lower case; pseudo-headers included.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub headers: &'a [(&'a str, &'a str)],
    /// Unix seconds.
    pub now: i64,
}

impl<'a> RequestParts<'a> {
    fn header(&self, name: &str) -> &'a str {
        self.headers.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v)
    }

    /// Every `DPoP` header line, one value each, as received.
    fn proofs(&self) -> Vec<&'a str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("dpop")).map(|(_, v)| *v).collect()
    }
}

/// What one request's binding checks gathered.
#[derive(Debug, Default)]
pub struct Bindings {
    /// Proofs that passed, to record once the request is allowed.
    proofs: Vec<(ProviderId, VerifiedProof)>,
    /// A new nonce to offer with the answer (`DPoP-Nonce`).
    offer_nonce: Option<String>,
    /// The connection's client certificate, once read.
    peer: Option<Option<String>>,
    /// The first provider asked that accepts DPoP: its challenges answer a refusal.
    challenger: Option<ProviderId>,
}

impl Bindings {
    /// Notes that the decision asked provider `id` (nothing for a provider without DPoP).
    pub fn asked(&mut self, id: ProviderId, binding: &TokenBinding) {
        if self.challenger.is_none() && binding.dpop.mode != BindingMode::Disabled {
            self.challenger = Some(id);
        }
    }

    /// The provider whose challenges answer a refusal of this request, if one accepts DPoP.
    pub fn challenger(&self) -> Option<ProviderId> {
        self.challenger
    }

    /// The nonce to offer with a successful answer, if a proof's nonce was the previous step's.
    pub fn offer_nonce(&self) -> Option<&str> {
        self.offer_nonce.as_deref()
    }

    /// Checks a verified token of provider `id` against the request (`decide`'s rules): its
    /// proof, when it came as `DPoP`, and its client certificate. A proof that passed is kept
    /// for [`Bindings::record`].
    pub fn check(
        &mut self,
        host: &dyn BindingHost,
        crypto: &dyn Crypto,
        id: ProviderId,
        binding: &TokenBinding,
        token: &Presentation<'_>,
        request: &RequestParts<'_>,
    ) -> Result<(), BindingError> {
        let proof = (token.scheme == Scheme::Dpop)
            .then(|| verify(crypto, host.memo(), binding, token.token, request));
        let peer = match binding.certificate {
            BindingMode::Disabled => None,
            _ => self.peer.get_or_insert_with(|| host.peer_certificate()).as_deref(),
        };
        let presented = Presented {
            scheme: token.scheme,
            // `extract` refuses a request with both (`dpop_bearer_and_dpop`) before any token.
            both_schemes: false,
            claims: token.claims,
            proof: proof.as_ref(),
            peer_certificate: peer,
            now: request.now,
        };
        let bound = decide::decide(binding, &presented, host.nonces(id))?;
        // A provider asked twice (`provider_and_audiences`) checks the one proof twice: it is
        // recorded once.
        if let Some(Ok(proof)) = proof
            && !self.proofs.iter().any(|(i, p)| *i == id && *p == proof)
        {
            self.proofs.push((id, proof));
        }
        if bound.offer_nonce.is_some() {
            self.offer_nonce = bound.offer_nonce;
        }
        Ok(())
    }

    /// Records every proof kept, now that the request is allowed; the first refusal (a replay,
    /// or a record that cannot vouch for the proof) with its provider. Recorded proofs stay
    /// recorded: they were presented, and a proof is good for one request only.
    pub fn record(&mut self, host: &dyn BindingHost) -> Result<(), (ProviderId, BindingError)> {
        for (id, proof) in self.proofs.drain(..) {
            host.record(id, &proof).map_err(|e| (id, e))?;
        }
        Ok(())
    }
}

/// The proof of a `DPoP` request made for `token` (`proof::verify_proof`).
fn verify(
    crypto: &dyn Crypto,
    memo: &ProofMemo,
    binding: &TokenBinding,
    token: &str,
    request: &RequestParts<'_>,
) -> Result<VerifiedProof, BindingError> {
    let target = proof::target(
        &binding.dpop,
        request.header(":scheme"),
        request.header(":authority"),
        request.header(":path"),
    );
    let proofs = request.proofs();
    let proof_request = ProofRequest {
        headers: &proofs,
        method: request.header(":method"),
        target: target.as_ref(),
        access_token: token,
        now: request.now,
    };
    proof::verify_proof(crypto, memo, &proof_request, &binding.dpop)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;

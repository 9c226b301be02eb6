//! The binding decision as a table, and the nonce rules in it (the whole check of one request, as
//! `authn` runs it, is in `request_tests`).

use super::*;
use crate::binding::memo::ProofMemo;
use crate::binding::nonce::{KEY_BYTES, Nonces};
use crate::binding::proof::{ProofRequest, verify_proof};
use crate::binding::replay::{ReplayRecord, SEED_BYTES, SETTLE_MS};
use crate::binding::testing::mint::TestKey;
use crate::binding::testing::{HTU, NOW, TOKEN, proof};
use crate::binding::thumbprint::jwk_thumbprint;
use crate::claims::NumericDate;
use crate::config::NonceConfig;
use crate::crypto::RustCrypto;
use crate::jwks::Jwk;
use crate::shared_record::MemStore;
use crate::uri::HttpUri;
use serde_json::{Value, json};

const CERT_HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const OTHER_CERT_HEX: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

fn thumbprint_of(key: TestKey) -> Thumbprint {
    jwk_thumbprint(&Jwk::from_object(key.jwk("k", None).as_object().unwrap()).unwrap().key)
}

fn verified(key: TestKey, nonce: Option<&str>) -> Result<VerifiedProof, BindingError> {
    Ok(VerifiedProof {
        jkt: thumbprint_of(key),
        jti: "jti".into(),
        iat: NumericDate::from_secs(NOW),
        nonce: nonce.map(str::to_owned),
    })
}

fn binding(dpop: BindingMode, certificate: BindingMode) -> TokenBinding {
    TokenBinding { dpop: DpopConfig { mode: dpop, ..DpopConfig::default() }, certificate }
}

/// Claims with this `cnf` (`Value::Null`: none).
fn claims(cnf: Value) -> Claims {
    let payload = if cnf.is_null() { json!({"sub": "alice"}) } else { json!({"sub": "alice", "cnf": cnf}) };
    Claims::parse(payload.to_string().as_bytes()).unwrap()
}

/// One row: the settings, how the token came, its `cnf`, the proof's outcome and the peer
/// certificate; the expected outcome as (DPoP-bound, certificate-bound) or the refusal.
struct Row {
    name: &'static str,
    binding: TokenBinding,
    scheme: Scheme,
    both: bool,
    cnf: Value,
    proof: Option<Result<VerifiedProof, BindingError>>,
    peer: Option<&'static str>,
    expected: Result<(bool, bool), BindingError>,
}

#[test]
fn decision_table() {
    use BindingMode::{Allowed, Disabled, Required};
    let jkt = json!({"jkt": thumbprint_of(TestKey::P256A).to_b64()});
    let x5t = json!({"x5t#S256": Thumbprint::from_hex(CERT_HEX).unwrap().to_b64()});
    let both_cnf = json!({"jkt": jkt["jkt"], "x5t#S256": x5t["x5t#S256"]});
    let good = || Some(verified(TestKey::P256A, None));
    let row = |name, binding, scheme, cnf: &Value, proof, peer, expected| Row {
        name,
        binding,
        scheme,
        both: false,
        cnf: cnf.clone(),
        proof,
        peer,
        expected,
    };
    let none = Value::Null;
    let (b, d) = (Scheme::Bearer, Scheme::Dpop);
    #[rustfmt::skip]
    let mut rows = vec![
        // No binding configured: as without this feature.
        row("off: a bound token as Bearer", binding(Disabled, Disabled), b, &both_cnf, None, None, Ok((false, false))),
        row("off: malformed cnf is not read", binding(Disabled, Disabled), b, &json!("x"), None, None, Ok((false, false))),
        row("off: DPoP not accepted", binding(Disabled, Disabled), d, &jkt, good(), None, Err(NotAccepted)),
        // DPoP allowed.
        row("allowed: unbound Bearer", binding(Allowed, Disabled), b, &none, None, None, Ok((false, false))),
        row("allowed: downgrade", binding(Allowed, Disabled), b, &jkt, None, None, Err(Downgrade)),
        row("allowed: DPoP without a proof", binding(Allowed, Disabled), d, &jkt, None, None, Err(ProofMissing)),
        row("allowed: DPoP with a bad proof", binding(Allowed, Disabled), d, &jkt, Some(Err(AthMismatch)), None, Err(AthMismatch)),
        row("allowed: DPoP, unbound token", binding(Allowed, Disabled), d, &none, good(), None, Err(TokenUnbound)),
        row("allowed: DPoP, proof by another key", binding(Allowed, Disabled), d, &jkt, Some(verified(TestKey::P256B, None)), None, Err(JktMismatch)),
        row("allowed: DPoP bound and proven", binding(Allowed, Disabled), d, &jkt, good(), None, Ok((true, false))),
        row("allowed: malformed cnf", binding(Allowed, Disabled), d, &json!({"jkt": 1}), good(), None, Err(CnfMalformed)),
        row("allowed: cnf by another method", binding(Allowed, Disabled), b, &json!({"jwk": {}}), None, None, Err(CnfUnsupported)),
        // DPoP required.
        row("required: unbound Bearer", binding(Required, Disabled), b, &none, None, None, Err(BearerNotAllowed)),
        row("required: downgrade", binding(Required, Disabled), b, &jkt, None, None, Err(Downgrade)),
        row("required: DPoP bound and proven", binding(Required, Disabled), d, &jkt, good(), None, Ok((true, false))),
        row("required: DPoP, proof by another key", binding(Required, Disabled), d, &jkt, Some(verified(TestKey::Ed25519, None)), None, Err(JktMismatch)),
        // Certificate binding.
        row("cert off: bound token, no certificate", binding(Disabled, Disabled), b, &x5t, None, None, Ok((false, false))),
        row("cert allowed: its certificate", binding(Disabled, Allowed), b, &x5t, None, Some(CERT_HEX), Ok((false, true))),
        row("cert allowed: upper-case hex", binding(Disabled, Allowed), b, &x5t, None, Some("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"), Ok((false, true))),
        row("cert allowed: no certificate", binding(Disabled, Allowed), b, &x5t, None, None, Err(CertificateMissing)),
        row("cert allowed: empty digest", binding(Disabled, Allowed), b, &x5t, None, Some(""), Err(CertificateMissing)),
        row("cert allowed: another certificate", binding(Disabled, Allowed), b, &x5t, None, Some(OTHER_CERT_HEX), Err(CertificateMismatch)),
        row("cert allowed: a digest that is not hex", binding(Disabled, Allowed), b, &x5t, None, Some("not hex"), Err(CertificateMismatch)),
        row("cert allowed: unbound token", binding(Disabled, Allowed), b, &none, None, None, Ok((false, false))),
        row("cert required: unbound token", binding(Disabled, Required), b, &none, None, Some(CERT_HEX), Err(CertificateUnbound)),
        row("cert required: DPoP-only token", binding(Disabled, Required), b, &jkt, None, Some(CERT_HEX), Err(CertificateUnbound)),
        row("cert on, DPoP off: DPoP not accepted", binding(Disabled, Allowed), d, &x5t, good(), Some(CERT_HEX), Err(NotAccepted)),
        // Both bindings.
        row("both: proven both ways", binding(Allowed, Allowed), d, &both_cnf, good(), Some(CERT_HEX), Ok((true, true))),
        row("both: another certificate", binding(Allowed, Allowed), d, &both_cnf, good(), Some(OTHER_CERT_HEX), Err(CertificateMismatch)),
        row("both: as Bearer", binding(Allowed, Required), b, &both_cnf, None, Some(CERT_HEX), Err(Downgrade)),
    ];
    rows.push(Row {
        both: true,
        ..row(
            "both schemes in one request",
            binding(Allowed, Disabled),
            d,
            &jkt,
            good(),
            None,
            Err(BothSchemes),
        )
    });
    rows.push(Row {
        both: true,
        ..row("both schemes, DPoP off", binding(Disabled, Disabled), b, &none, None, None, Ok((false, false)))
    });
    for r in rows {
        let claims = claims(r.cnf);
        let presented = Presented {
            scheme: r.scheme,
            both_schemes: r.both,
            claims: &claims,
            proof: r.proof.as_ref(),
            peer_certificate: r.peer,
            now: NOW,
        };
        let got = decide(&r.binding, &presented, None).map(|b| (b.jkt.is_some(), b.x5t_s256.is_some()));
        assert_eq!(got, r.expected, "{}", r.name);
    }
}

#[test]
fn nonces() {
    const STEP: NonceConfig = NonceConfig { step_seconds: 60 };
    let mut binding = binding(BindingMode::Allowed, BindingMode::Disabled);
    binding.dpop.nonce = Some(STEP);
    let nonces = Nonces::from_shared(&[5; KEY_BYTES], &STEP).unwrap();
    let claims = claims(json!({"jkt": thumbprint_of(TestKey::P256A).to_b64()}));
    let run = |proof_nonce: Option<&str>, nonces: Option<&Nonces>, now: i64| {
        let proof = verified(TestKey::P256A, proof_nonce);
        let presented = Presented {
            scheme: Scheme::Dpop,
            both_schemes: false,
            claims: &claims,
            proof: Some(&proof),
            peer_certificate: None,
            now,
        };
        decide(&binding, &presented, nonces).map(|b| b.offer_nonce)
    };
    let current = nonces.current(NOW);
    assert_eq!(run(Some(&current), Some(&nonces), NOW), Ok(None));
    assert_eq!(run(Some(&current), Some(&nonces), NOW + 60), Ok(Some(nonces.current(NOW + 60))));
    assert_eq!(run(Some(&current), Some(&nonces), NOW + 120), Err(NonceInvalid));
    assert_eq!(run(None, Some(&nonces), NOW), Err(NonceMissing));
    assert_eq!(run(Some("made-up"), Some(&nonces), NOW), Err(NonceInvalid));
    assert_eq!(run(Some(&current), None, NOW), Err(NonceUnavailable), "no secret yet: never skip the check");
}

/// Native timing of one DPoP request's whole check (proof with its signature, decision, replay
/// record over an in-memory store), not a check: run by hand with
/// `cargo test --release --lib dpop_check_timing -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run by hand with --release"]
fn dpop_check_timing() {
    use std::time::{Duration, Instant};
    let binding = binding(BindingMode::Required, BindingMode::Disabled);
    let target = HttpUri::parse(HTU);
    let memo = ProofMemo::default();
    for key in [TestKey::P256A, TestKey::Ed25519, TestKey::RsaA] {
        let claims = claims(json!({"jkt": thumbprint_of(key).to_b64()}));
        let proofs: Vec<String> =
            (0..2_000).map(|i| proof(key).claim("jti", json!(format!("j{i}"))).sign()).collect();
        let store = MemStore::default();
        let record = ReplayRecord::new(&store, &[1; SEED_BYTES], [("corp", &binding.dpop)]);
        let now_ms = NOW as u64 * 1000;
        record.prepare(0, &|| now_ms - SETTLE_MS);
        let (mut proof_time, mut rest_time) = (Duration::ZERO, Duration::ZERO);
        for p in &proofs {
            let start = Instant::now();
            let request = ProofRequest {
                headers: &[p],
                method: "GET",
                target: target.as_ref(),
                access_token: TOKEN,
                now: NOW,
            };
            let outcome = verify_proof(&RustCrypto, &memo, &request, &binding.dpop);
            let middle = Instant::now();
            let presented = Presented {
                scheme: Scheme::Dpop,
                both_schemes: false,
                claims: &claims,
                proof: Some(&outcome),
                peer_certificate: None,
                now: NOW,
            };
            decide(&binding, &presented, None).unwrap();
            record.record(0, outcome.as_ref().unwrap(), &|| now_ms).unwrap();
            rest_time += middle.elapsed();
            proof_time += middle - start;
        }
        // The same proofs without the signature arithmetic: what DPoP costs beyond one signature.
        let start = Instant::now();
        for p in &proofs {
            let request = ProofRequest {
                headers: &[p],
                method: "GET",
                target: target.as_ref(),
                access_token: TOKEN,
                now: NOW,
            };
            verify_proof(&SignatureNotChecked, &memo, &request, &binding.dpop).unwrap();
        }
        let unsigned_time = start.elapsed();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / proofs.len() as f64;
        println!(
            "{key:?}: proof {:.1} µs ({:.1} µs of it not the signature), decision + replay record {:.1} µs",
            per(proof_time),
            per(unsigned_time),
            per(rest_time)
        );
    }
}

/// A backend that accepts every signature: only for timing the rest of the proof check.
struct SignatureNotChecked;

impl crate::crypto::Crypto for SignatureNotChecked {
    fn verify(
        &self,
        _: crate::alg::Algorithm,
        _: &Jwk,
        _: &[u8],
        _: &[u8],
    ) -> Result<(), crate::error::JwtError> {
        Ok(())
    }
}

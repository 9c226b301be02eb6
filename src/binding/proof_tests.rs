//! The proof checks one by one: RFC 9449's own example, every key kind, the negative cases of the
//! FAPI 2.0 DPoP conformance tests (one each) and the ones that must pass.

use super::*;
use crate::binding::memo::ProofMemo;
use crate::binding::testing::mint::{self, TestKey};
use crate::binding::testing::{HTU, NOW, TOKEN, proof};
use crate::binding::thumbprint::access_token_hash;
use crate::config::BindingMode;
use crate::crypto::RustCrypto;
use serde_json::json;

fn config() -> DpopConfig {
    DpopConfig { mode: BindingMode::Allowed, ..DpopConfig::default() }
}

/// The proof checked as the only `DPoP` header of `GET HTU` with `TOKEN` at `NOW`.
fn check(proof: &str) -> Result<VerifiedProof, BindingError> {
    check_headers(&[proof], &config())
}

fn check_headers(headers: &[&str], config: &DpopConfig) -> Result<VerifiedProof, BindingError> {
    let target = HttpUri::parse(HTU);
    let request =
        ProofRequest { headers, method: "GET", target: target.as_ref(), access_token: TOKEN, now: NOW };
    // Twice with one memo: the second time its header and token hash are kept ones, and the
    // verdict must not change (`memo`'s soundness, on every case here).
    let memo = ProofMemo::default();
    let first = verify_proof(&RustCrypto, &memo, &request, config);
    assert_eq!(verify_proof(&RustCrypto, &memo, &request, config), first, "{headers:?}");
    first
}

fn jkt(key: TestKey) -> Thumbprint {
    jwk_thumbprint(&Jwk::from_object(key.jwk("k", None).as_object().unwrap()).unwrap().key)
}

#[test]
fn rfc_9449_figure_13() {
    let proof = concat!(
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0Vj",
        "NoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5",
        "VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUI",
        "iwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI",
        "2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqz",
        "hrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA",
    );
    let target = HttpUri::parse("https://resource.example.org/protectedresource");
    let headers = [proof];
    let request = |now, token| ProofRequest {
        headers: &headers,
        method: "GET",
        target: target.as_ref(),
        access_token: token,
        now,
    };
    let token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    // One memo, as a VM's: the refusals below come with the proof's header and key kept.
    let memo = ProofMemo::default();
    let verified = verify_proof(&RustCrypto, &memo, &request(1_562_262_618, token), &config()).unwrap();
    assert_eq!(verified.jkt.to_b64(), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    assert_eq!(verified.jti, "e1j3V_bKic8-LAEB");
    assert_eq!(verified.iat, NumericDate::from_secs(1_562_262_618));
    assert_eq!(verified.nonce, None);
    // The same proof an hour later, or with another token, or at another URI, is refused.
    assert_eq!(verify_proof(&RustCrypto, &memo, &request(1_562_266_218, token), &config()), Err(IatTooOld));
    assert_eq!(verify_proof(&RustCrypto, &memo, &request(1_562_262_618, TOKEN), &config()), Err(AthMismatch));
    assert_eq!(check(proof), Err(HtuMismatch));
}

#[test]
fn every_key_kind_and_algorithm() {
    for (key, alg) in [
        (TestKey::P256A, "ES256"),
        (TestKey::P384, "ES384"),
        (TestKey::Ed25519, "EdDSA"),
        (TestKey::RsaA, "RS256"),
        (TestKey::RsaB, "PS256"),
        (TestKey::Rsa3072, "PS512"),
    ] {
        let token = proof(key).header("alg", json!(alg));
        let signed = mint::sign(&token.header_json(), &token.payload_json(), &key, alg);
        let verified = check(&signed).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert!(verified.jkt.matches(&jkt(key)), "{alg}");
        assert_eq!(verified.jti, "5b8f7d1c-3a2e-4f60-9c1d-7e2a4b6c8d0f");
        assert_eq!(verified.iat, NumericDate::from_secs(NOW));
    }
    let other = check(&proof(TestKey::P256B).sign()).unwrap();
    assert!(!other.jkt.matches(&jkt(TestKey::P256A)), "another key, another thumbprint");
}

/// One proof per FAPI 2.0 DPoP negative case (and a few more), each refused for its reason.
#[test]
fn refused_proofs() {
    let p = || proof(TestKey::P256A);
    let private = |member: &str| {
        let mut jwk = TestKey::P256A.jwk("k", None);
        jwk[member] = json!("AQAB");
        p().header("jwk", jwk).sign()
    };
    let mut for_encryption = TestKey::P256A.jwk("k", None);
    for_encryption["use"] = json!("enc");
    let sha256 = |text: &str| access_token_hash(text).to_b64();
    #[rustfmt::skip]
    let cases: Vec<(&str, String, BindingError)> = vec![
        ("not a JWT", "not-a-jwt".into(), ProofMalformed),
        ("empty", String::new(), ProofMalformed),
        ("JWS JSON", r#"{"payload":"e30"}"#.into(), ProofMalformed),
        ("JWE", "a.b.c.d.e".into(), ProofMalformed),
        ("padded", format!("{}=", p().sign()), ProofMalformed),
        ("too large", format!("{}.{}.{}", "a".repeat(4000), "b".repeat(4000), "c".repeat(200)), ProofTooLarge),
        ("no typ", p().remove_header("typ").sign(), ProofBadTyp),
        ("typ JWT", p().header("typ", json!("JWT")).sign(), ProofBadTyp),
        ("typ case", p().header("typ", json!("DPoP+JWT")).sign(), ProofBadTyp),
        ("typ media type", p().header("typ", json!("application/dpop+jwt")).sign(), ProofBadTyp),
        ("typ not a string", p().header("typ", json!(["dpop+jwt"])).sign(), ProofBadTyp),
        ("no alg", p().remove_header("alg").sign(), ProofAlgNotAllowed),
        ("alg none", p().header("alg", json!("none")).sign(), ProofAlgNotAllowed),
        ("alg none, unsigned", mint::unsigned(&p().header("alg", json!("none")).header_json(), &p().payload_json()), ProofMalformed),
        ("alg HS256", p().header("alg", json!("HS256")).sign(), ProofAlgNotAllowed),
        ("alg es256", p().header("alg", json!("es256")).sign(), ProofAlgNotAllowed),
        ("alg a number", p().header("alg", json!(256)).sign(), ProofAlgNotAllowed),
        ("no jwk", p().remove_header("jwk").sign(), ProofBadJwk),
        ("jwk a string", p().header("jwk", json!("key")).sign(), ProofBadJwk),
        ("jwk off the curve", p().header("jwk", json!({"kty": "EC", "crv": "P-256", "x": "AQ", "y": "AQ"})).sign(), ProofBadJwk),
        ("jwk RSA-1024", p().header("jwk", TestKey::Rsa1024TooSmall.jwk("k", None)).sign(), ProofBadJwk),
        ("jwk of another type than alg", p().header("jwk", TestKey::RsaA.jwk("k", None)).sign(), ProofBadJwk),
        ("jwk for another alg", p().header("jwk", TestKey::P256A.jwk("k", Some("ES384"))).sign(), ProofBadJwk),
        ("jwk for encryption", p().header("jwk", for_encryption).sign(), ProofBadJwk),
        ("private d", private("d"), ProofPrivateKey),
        ("private p", private("p"), ProofPrivateKey),
        ("private q", private("q"), ProofPrivateKey),
        ("private dp", private("dp"), ProofPrivateKey),
        ("private dq", private("dq"), ProofPrivateKey),
        ("private qi", private("qi"), ProofPrivateKey),
        ("private oth", private("oth"), ProofPrivateKey),
        ("symmetric k", p().header("jwk", json!({"kty": "oct", "k": "c2VjcmV0"})).sign(), ProofPrivateKey),
        ("k on an EC key", private("k"), ProofPrivateKey),
        ("duplicate header member", mint::sign(r#"{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256"}"#, &p().payload_json(), &TestKey::P256A, "ES256"), ProofHeaderInvalid),
        ("crit", p().header("crit", json!(["x"])).header("x", json!(1)).sign(), ProofHeaderInvalid),
        ("kid not a string", p().header("kid", json!(1)).sign(), ProofHeaderInvalid),
        ("claims not an object", mint::sign(&p().header_json(), "[]", &TestKey::P256A, "ES256"), ProofClaimsInvalid),
        ("duplicate claim", mint::sign(&p().header_json(), r#"{"jti":"a","jti":"b"}"#, &TestKey::P256A, "ES256"), ProofClaimsInvalid),
        ("no jti", p().remove_claim("jti").sign(), ProofBadJti),
        ("jti a number", p().claim("jti", json!(7)).sign(), ProofBadJti),
        ("jti empty", p().claim("jti", json!("")).sign(), ProofBadJti),
        ("jti too long", p().claim("jti", json!("j".repeat(MAX_JTI_BYTES + 1))).sign(), ProofBadJti),
        ("no htm", p().remove_claim("htm").sign(), ProofBadHtm),
        ("htm null", p().claim("htm", json!(null)).sign(), ProofBadHtm),
        ("wrong htm", p().claim("htm", json!("POST")).sign(), HtmMismatch),
        ("htm case", p().claim("htm", json!("get")).sign(), HtmMismatch),
        ("no htu", p().remove_claim("htu").sign(), ProofBadHtu),
        ("htu relative", p().claim("htu", json!("/v1/items")).sign(), ProofBadHtu),
        ("htu ftp", p().claim("htu", json!("ftp://api.example/v1/items")).sign(), ProofBadHtu),
        ("other htu path", p().claim("htu", json!("https://api.example/v1/other")).sign(), HtuMismatch),
        ("other htu host", p().claim("htu", json!("https://evil.example/v1/items")).sign(), HtuMismatch),
        ("other htu port", p().claim("htu", json!("https://api.example:8443/v1/items")).sign(), HtuMismatch),
        ("other htu scheme", p().claim("htu", json!("http://api.example/v1/items")).sign(), HtuMismatch),
        ("htu path case", p().claim("htu", json!("https://api.example/V1/items")).sign(), HtuMismatch),
        ("htu trailing slash", p().claim("htu", json!("https://api.example/v1/items/")).sign(), HtuMismatch),
        ("no iat", p().remove_claim("iat").sign(), ProofBadIat),
        ("iat a string", p().claim("iat", json!(NOW.to_string())).sign(), ProofBadIat),
        ("iat beyond i64", p().claim("iat", json!(1e300)).sign(), ProofBadIat),
        ("iat an hour ago", p().claim("iat", json!(NOW - 3600)).sign(), IatTooOld),
        ("iat an hour ahead", p().claim("iat", json!(NOW + 3600)).sign(), IatInFuture),
        ("iat 61 s ago", p().claim("iat", json!(NOW - 61)).sign(), IatTooOld),
        ("iat 60.5 s ago", p().claim("iat", json!(NOW as f64 - 60.5)).sign(), IatTooOld),
        ("iat 11 s ahead", p().claim("iat", json!(NOW + 11)).sign(), IatInFuture),
        ("iat 10.5 s ahead", p().claim("iat", json!(NOW as f64 + 10.5)).sign(), IatInFuture),
        ("no ath", p().remove_claim("ath").sign(), ProofBadAth),
        ("ath a number", p().claim("ath", json!(1)).sign(), ProofBadAth),
        ("wrong ath", p().claim("ath", json!(sha256("another.access.token"))).sign(), AthMismatch),
        ("ath of the token with Bearer", p().claim("ath", json!(sha256(&format!("Bearer {TOKEN}")))).sign(), AthMismatch),
        ("ath not a digest", p().claim("ath", json!("abc")).sign(), AthMismatch),
        ("nonce a number", p().claim("nonce", json!(1)).sign(), NonceInvalid),
        ("bad signature", mint::tamper(&p().sign()), ProofBadSignature),
        ("signed by another key", mint::sign(&p().header_json(), &p().payload_json(), &TestKey::P256B, "ES256"), ProofBadSignature),
        ("header swapped to another key", mint::sign(&p().header("jwk", TestKey::P256B.jwk("k", None)).header_json(), &p().payload_json(), &TestKey::P256A, "ES256"), ProofBadSignature),
    ];
    for (name, proof, expected) in cases {
        assert_eq!(check(&proof), Err(expected), "{name}");
    }
}

#[test]
fn exactly_one_dpop_header() {
    let (good, other) = (proof(TestKey::P256A).sign(), proof(TestKey::P256B).sign());
    let (good, other) = (good.as_str(), other.as_str());
    let config = config();
    assert!(check_headers(&[good], &config).is_ok());
    #[rustfmt::skip]
    let cases: Vec<(Vec<&str>, BindingError)> = vec![
        (vec![], ProofMissing),
        (vec![good, good], ProofRepeated),
        (vec![good, other], ProofRepeated),
        (vec![good, ""], ProofRepeated),
    ];
    for (headers, expected) in cases {
        assert_eq!(check_headers(&headers, &config), Err(expected), "{} headers", headers.len());
    }
    for list in
        [format!("{good}, {other}"), format!("{good},{other}"), format!("{good} {other}"), format!("{good},")]
    {
        assert_eq!(check_headers(&[&list], &config), Err(ProofRepeated), "{list}");
    }
}

#[test]
fn accepted_variations() {
    let p = || proof(TestKey::P256A);
    #[rustfmt::skip]
    let cases: Vec<(&str, String)> = vec![
        ("htu with a query", p().claim("htu", json!(format!("{HTU}?limit=5&x=%zz"))).sign()),
        ("htu with a fragment", p().claim("htu", json!(format!("{HTU}#top"))).sign()),
        ("htu normalised", p().claim("htu", json!("HTTPS://API.example:443/v1/./%69tems")).sign()),
        ("extra header parameters", p().header("kid", json!("k1")).header("x-extra", json!({"a": [1]})).header("cty", json!("text")).sign()),
        ("extra claims", p().claim("sub", json!("x")).claim("exp", json!("not a date")).claim("extra", json!([1, {"b": null}])).sign()),
        ("iat 10 s ago", p().claim("iat", json!(NOW - 10)).sign()),
        ("iat 10 s ahead", p().claim("iat", json!(NOW + 10)).sign()),
        ("iat 60 s ago", p().claim("iat", json!(NOW - 60)).sign()),
        ("iat with a fraction", p().claim("iat", json!(NOW as f64 + 0.25)).sign()),
        ("jti of the longest", p().claim("jti", json!("j".repeat(MAX_JTI_BYTES))).sign()),
        ("jwk with its alg", p().header("jwk", TestKey::P256A.jwk("k", Some("ES256"))).sign()),
    ];
    for (name, proof) in cases {
        let verified = check(&proof).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(verified.jkt.matches(&jkt(TestKey::P256A)), "{name}");
    }
    let with_nonce = check(&p().claim("nonce", json!("n-1")).sign()).unwrap();
    assert_eq!(with_nonce.nonce.as_deref(), Some("n-1"));
}

#[test]
fn algorithm_allow_list_and_time_window_come_from_the_config() {
    let strict = DpopConfig {
        algorithms: [crate::alg::Algorithm::EdDSA].into_iter().collect(),
        max_age_seconds: 5,
        max_future_seconds: 0,
        ..config()
    };
    let es = proof(TestKey::P256A).sign();
    assert_eq!(check_headers(&[&es], &strict), Err(ProofAlgNotAllowed));
    let ed = |iat: i64| proof(TestKey::Ed25519).claim("iat", json!(iat)).sign();
    assert!(check_headers(&[&ed(NOW)], &strict).is_ok());
    assert!(check_headers(&[&ed(NOW - 5)], &strict).is_ok());
    assert_eq!(check_headers(&[&ed(NOW - 6)], &strict), Err(IatTooOld));
    assert_eq!(check_headers(&[&ed(NOW + 1)], &strict), Err(IatInFuture));
}

#[test]
fn the_target_uri() {
    let own = config();
    let public = DpopConfig { public_url: Origin::parse("https://api.example"), ..config() };
    let t =
        |c: &DpopConfig, scheme, authority, path| target(c, scheme, authority, path).map(|u| u.to_string());
    assert_eq!(t(&own, "https", "API.example:443", "/v1/items?x=1").as_deref(), Some(HTU));
    assert_eq!(
        t(&own, "http", "10.0.0.7:8080", "/v1/items").as_deref(),
        Some("http://10.0.0.7:8080/v1/items")
    );
    // Behind a load balancer: the configured origin replaces the request's.
    assert_eq!(t(&public, "http", "10.0.0.7:8080", "/v1/items").as_deref(), Some(HTU));
    assert_eq!(t(&own, "https", "a@api.example", "/"), None);
    assert_eq!(t(&own, "https", "api.example", "*"), None);
    // A request whose URI cannot be formed matches no proof.
    let request = ProofRequest { headers: &[], method: "GET", target: None, access_token: TOKEN, now: NOW };
    let good = proof(TestKey::P256A).sign();
    let headers = [good.as_str()];
    assert_eq!(
        verify_proof(
            &RustCrypto,
            &ProofMemo::default(),
            &ProofRequest { headers: &headers, ..request },
            &own
        ),
        Err(HtuMismatch)
    );
}

/// What the memo keeps of a client's proofs (its header, key and token hash) never passes a proof
/// that the full checks refuse: with the header of a good proof kept, proofs that share that
/// header but fail elsewhere are refused as without a memo, and the header passes nothing under
/// an allow-list it was not checked against.
#[test]
fn a_kept_header_passes_nothing_the_checks_refuse() {
    let memo = ProofMemo::default();
    let target = HttpUri::parse(HTU);
    let run = |proof: &str, token: &str, config: &DpopConfig| {
        let headers = [proof];
        let request = ProofRequest {
            headers: &headers,
            method: "GET",
            target: target.as_ref(),
            access_token: token,
            now: NOW,
        };
        let kept = verify_proof(&RustCrypto, &memo, &request, config);
        assert_eq!(kept, verify_proof(&RustCrypto, &ProofMemo::default(), &request, config), "{proof}");
        kept
    };
    let good = proof(TestKey::P256A).sign();
    assert!(run(&good, TOKEN, &config()).is_ok());
    let header = good.split('.').next().unwrap();
    assert!(memo.key(config().algorithms, header).is_some(), "the good proof's header is kept");
    // The same header (same key, same alg) on proofs that fail later checks.
    let later: Vec<(String, BindingError)> = vec![
        (mint::tamper(&good), ProofBadSignature),
        (proof(TestKey::P256A).claim("htm", json!("POST")).sign(), HtmMismatch),
        (proof(TestKey::P256A).claim("iat", json!(NOW - 3600)).sign(), IatTooOld),
        (
            proof(TestKey::P256A).claim("ath", json!(access_token_hash("another").to_b64())).sign(),
            AthMismatch,
        ),
        (proof(TestKey::P256A).remove_claim("jti").sign(), ProofBadJti),
        // Signed by another key under the kept header (which names P256A's key).
        (
            mint::sign(
                &proof(TestKey::P256A).header_json(),
                &proof(TestKey::P256A).payload_json(),
                &TestKey::P256B,
                "ES256",
            ),
            ProofBadSignature,
        ),
    ];
    for (proof, refusal) in &later {
        assert!(proof.starts_with(&format!("{header}.")), "shares the kept header");
        assert_eq!(run(proof, TOKEN, &config()), Err(*refusal));
    }
    // The kept token hash is the hash of that token only.
    assert_eq!(run(&good, "another.token.here", &config()), Err(AthMismatch));
    // Under an allow-list without ES256 the kept header is checked again, and refused.
    let rsa_only =
        DpopConfig { algorithms: [crate::alg::Algorithm::RS256].into_iter().collect(), ..config() };
    assert_eq!(run(&good, TOKEN, &rsa_only), Err(ProofAlgNotAllowed));
}

//! Host crypto against pure Rust, vector by vector, inside a real Envoy 1.40: Wycheproof's ECDSA
//! P-256 P1363 vectors (as ES256), RSA PKCS#1 v1.5 2048/4096 SHA-256 (as RS256), and the JWS
//! files (`json_web_signature_test.json`, `json_web_key_test.json`). None of these can travel as
//! a JWT through the filter (messages are not JWS signing inputs, payloads not claim sets), so
//! they go through the test-only probe module (`tests/host-probe`, built by `make probe`), which
//! runs the filter's own `HostCrypto`. For every vector:
//! - the probe's verdict (host) equals the verdict computed here with `RustCrypto`;
//! - both equal Wycheproof's, the strict answer for "acceptable";
//! - the route is the one the policy gives: `policy` when `check_shape` refuses, else the host
//!   for RS*/ES* and Rust for PS*/EdDSA, with no host failure and no key set aside.
//!
//! One Envoy (one worker) serves every vector, one small request each.

mod support;
#[path = "common/wycheproof.rs"]
mod wycheproof;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_authn_wasm::alg::Algorithm;
use jwt_authn_wasm::crypto::{Crypto, RustCrypto, check_shape};
use jwt_authn_wasm::hostcrypto;
use jwt_authn_wasm::jwks::KeySet;
use jwt_authn_wasm::token;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;
use support::config::{EnvoyConfig, Filter};
use support::envoy::Envoy;
use wycheproof::Expected;

/// One signature to judge, with everything the probe needs.
struct Vector {
    label: String,
    alg: Algorithm,
    jwks: Vec<u8>,
    kid: Option<String>,
    input: Vec<u8>,
    signature: Vec<u8>,
    expected: Expected,
}

/// What the probe answers, and what this side computes for the same vector.
#[derive(Debug, PartialEq, Eq)]
struct Judgement {
    verdict: String,
    routes: String,
}

impl Vector {
    /// The filter's signature step with `RustCrypto`, and the routes the policy prescribes.
    fn judge_natively(&self) -> Judgement {
        let keys = match KeySet::parse(&self.jwks) {
            Ok(parsed) => parsed.keys,
            Err(e) => return Judgement { verdict: format!("jwks refused: {e}"), routes: String::new() },
        };
        let candidates = match keys.candidates(self.alg, self.kid.as_deref()) {
            Ok(candidates) => candidates,
            Err(e) => return Judgement { verdict: e.reason().to_owned(), routes: String::new() },
        };
        let verified =
            candidates.iter().any(|k| RustCrypto.verify(self.alg, k, &self.input, &self.signature).is_ok());
        let routes: Vec<&str> = candidates
            .iter()
            .map(|k| match check_shape(self.alg, &k.key, &self.signature) {
                Err(_) => "policy",
                Ok(()) if hostcrypto::hash_name(self.alg).is_some() => "host",
                Ok(()) => "rust",
            })
            .collect();
        let verdict = if verified { "ok" } else { "jwt_bad_signature" };
        Judgement { verdict: verdict.to_owned(), routes: routes.join(",") }
    }

    fn judge_on_host(&self, envoy: &Envoy) -> Judgement {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let (jwks, input, sig) = (b64(&self.jwks), b64(&self.input), b64(&self.signature));
        let kid = self.kid.as_deref().map(|k| b64(k.as_bytes()));
        let mut headers =
            vec![("x-alg", self.alg.name()), ("x-jwks", &jwks), ("x-input", &input), ("x-sig", &sig)];
        if let Some(kid) = &kid {
            headers.push(("x-kid", kid));
        }
        let r = support::http::request(envoy.port(), "GET", "/", &headers)
            .unwrap_or_else(|e| panic!("{}: {e}", self.label));
        assert_eq!(r.status, 200, "{}: {}", self.label, r.body);
        assert_eq!(r.header("x-host-failures"), Some("0"), "{}: host calls failed", self.label);
        assert_eq!(r.header("x-set-aside"), Some("0"), "{}: the host refused a key", self.label);
        let header = |name| r.header(name).unwrap_or_default().to_owned();
        Judgement { verdict: header("x-verdict"), routes: header("x-routes") }
    }
}

/// Per file: vectors by (route, verdict), and the cases refused before any signature.
#[derive(Default)]
struct Counts(BTreeMap<String, BTreeMap<String, usize>>);

impl Counts {
    fn add(&mut self, file: &str, what: String) {
        *self.0.entry(file.to_owned()).or_default().entry(what).or_default() += 1;
    }
}

fn jwks_of(jwk: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap()
}

/// The group's `publicKeyJwk`; some P-256 groups have none, so it is built from the point.
fn ec_jwk(group: &Value) -> Value {
    if group["publicKeyJwk"].is_object() {
        return group["publicKeyJwk"].clone();
    }
    let point = wycheproof::hex(group["publicKey"]["uncompressed"].as_str().unwrap());
    let (x, y) = point[1..].split_at(32);
    json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
}

/// A signature file: every group's key as a one-key set, every test as a vector.
fn signature_vectors(file: &str, alg: Algorithm, jwk_of: fn(&Value) -> Value) -> Option<Vec<Vector>> {
    let vectors = wycheproof::load(file)?;
    let mut out = Vec::new();
    for group in wycheproof::groups(&vectors) {
        let jwks = jwks_of(&jwk_of(group));
        for test in group["tests"].as_array().unwrap() {
            out.push(Vector {
                label: format!("{file} tc {}", test["tcId"]),
                alg,
                jwks: jwks.clone(),
                kid: None,
                input: wycheproof::hex(test["msg"].as_str().unwrap()),
                signature: wycheproof::hex(test["sig"].as_str().unwrap()),
                expected: Expected::of(test),
            });
        }
    }
    Some(out)
}

/// A JWS file: the groups with a public RSA/EC/OKP set (the HMAC groups never reach a signature
/// backend). Each token is split here without the filter's form checks (which are stricter than
/// Wycheproof in places, e.g. an empty payload, and are tested elsewhere), so that every signature
/// Wycheproof judges reaches the backends. A token that is not three base64url segments with a
/// JSON header reaches no backend: it is counted, and must be one Wycheproof refuses. An `alg` this
/// verifier does not support (ES512) is out of scope: counted only.
fn jws_vectors(file: &str, counts: &mut Counts) -> Option<Vec<Vector>> {
    let vectors = wycheproof::load(file)?;
    let mut out = Vec::new();
    for group in wycheproof::groups(&vectors) {
        let public = &group["public"];
        if !public.is_object() || public.to_string().contains(r#""kty":"oct""#) {
            continue;
        }
        // json_web_key_test.json has sets, json_web_signature_test.json single keys.
        let jwks =
            if public["keys"].is_array() { serde_json::to_vec(public).unwrap() } else { jwks_of(public) };
        for test in group["tests"].as_array().unwrap() {
            let label = format!("{file} tc {} ({})", test["tcId"], test["comment"]);
            let expected = Expected::of(test);
            let mut vector = Vector {
                label,
                alg: Algorithm::RS256,
                jwks: jwks.clone(),
                kid: None,
                input: Vec::new(),
                signature: Vec::new(),
                expected,
            };
            match vector.take_jws(test["jws"].as_str().unwrap_or_default()) {
                Ok(()) => out.push(vector),
                Err(Unverifiable::Unsupported(name)) => {
                    counts.add(file, format!("out of scope: alg {name:?} is not supported"));
                }
                Err(Unverifiable::Malformed(why)) => {
                    assert!(!expected.must_accept(), "{}: {why}", vector.label);
                    counts.add(file, format!("no signature to verify: {why}"));
                }
            }
        }
    }
    Some(out)
}

enum Unverifiable {
    Malformed(&'static str),
    Unsupported(String),
}

impl Vector {
    /// Takes `alg`, `kid`, signing input and signature from a compact JWS.
    fn take_jws(&mut self, compact: &str) -> Result<(), Unverifiable> {
        use Unverifiable::Malformed;
        let [header, payload, signature] = compact.split('.').collect::<Vec<_>>()[..] else {
            return Err(Malformed("not three segments"));
        };
        let decode = |s: &str| token::b64url_decode(s).ok_or(Malformed("bad base64url"));
        let header_json: Value =
            serde_json::from_slice(&decode(header)?).map_err(|_| Malformed("header is not JSON"))?;
        decode(payload)?;
        let name = header_json["alg"].as_str().unwrap_or_default();
        self.alg = Algorithm::from_name(name).ok_or(Unverifiable::Unsupported(name.to_owned()))?;
        self.kid = header_json.get("kid").and_then(Value::as_str).map(str::to_owned);
        self.input = format!("{header}.{payload}").into_bytes();
        self.signature = decode(signature)?;
        Ok(())
    }
}

#[test]
fn host_and_rust_agree_on_every_vector() {
    let Some(probe) = support::require_host_probe() else { return };
    let Some(_) = support::require_envoy() else { return };
    let mut counts = Counts::default();
    let mut vectors = Vec::new();
    let sources = [
        signature_vectors("ecdsa_secp256r1_sha256_p1363_test.json", Algorithm::ES256, ec_jwk),
        signature_vectors("rsa_signature_2048_sha256_test.json", Algorithm::RS256, |g| g["keyJwk"].clone()),
        signature_vectors("rsa_signature_4096_sha256_test.json", Algorithm::RS256, |g| g["keyJwk"].clone()),
        jws_vectors("json_web_signature_test.json", &mut counts),
        jws_vectors("json_web_key_test.json", &mut counts),
    ];
    for source in sources {
        match source {
            Some(more) => vectors.extend(more),
            None => return, // wycheproof::load said why
        }
    }

    let yaml = EnvoyConfig::new(json!({}), 9, 9).wasm_path(&probe).yaml(Filter::Wasm);
    let envoy = Envoy::start(&yaml, 1);
    let started = Instant::now();
    for v in &vectors {
        let native = v.judge_natively();
        let host = v.judge_on_host(&envoy);
        assert_eq!(host, native, "{}", v.label);
        let file = v.label.split(' ').next().unwrap_or_default();
        let accepted = native.verdict == "ok";
        let signature_judged = accepted || native.verdict == "jwt_bad_signature";
        if v.expected.must_accept() && !signature_judged {
            // Refused by this filter's key policy before any signature was looked at (e.g. a key
            // whose own `alg` differs from the token's): the JWS files only, each one listed.
            assert!(file.starts_with("json_web"), "{}: {native:?}", v.label);
            counts.add(
                file,
                format!("valid for Wycheproof, refused by key policy: {} ({})", v.label, native.verdict),
            );
            continue;
        }
        assert_eq!(accepted, v.expected.must_accept(), "{} ({:?}): {native:?}", v.label, v.expected);
        counts.add(file, format!("{} via {}: {}", v.alg, native.routes, native.verdict));
    }
    let elapsed = started.elapsed();
    for (file, kinds) in &counts.0 {
        println!("{file}:");
        for (what, n) in kinds {
            println!("  {n:4}  {what}");
        }
    }
    println!("{} vectors through the host in {elapsed:?}", vectors.len());
    let via_host: usize =
        counts.0.values().flatten().filter(|(k, _)| k.contains("via host")).map(|(_, n)| n).sum();
    assert!(via_host > 500, "only {via_host} vectors reached the host");
}

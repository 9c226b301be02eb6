//! Host crypto against pure Rust, vector by vector, inside a real Envoy 1.40: every Wycheproof
//! signature group the host handles (`common/signatures.rs`: RS256/384/512 from 2048 to 8192
//! bits, ES256, ES384, and the RSA and P-256/P-384 groups no algorithm of the filter has), and
//! the JWS files (`json_web_signature_test.json`, `json_web_key_test.json`,
//! `json_web_crypto_test.json`). None of these can
//! travel as a JWT through the filter (messages are not JWS signing inputs, payloads not claim
//! sets), so they go through the test-only probe module (`tests/host-probe`, built by `make
//! probe`), which runs the filter's own `HostCrypto`. For every vector:
//! - the probe's verdict (host) equals the verdict computed here with `RustCrypto`;
//! - both equal Wycheproof's, the strict answer for "acceptable", or (a group no algorithm of the
//!   filter has) both refuse;
//! - the route is the one the policy gives: `policy` when `check_shape` refuses, else the host
//!   for RS*/ES* and Rust for PS*/EdDSA, with no host failure and no key set aside.
//!
//! One Envoy (one worker) serves every vector, one small request each.

#[path = "common/signatures.rs"]
mod signatures;
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
use signatures::{Plan, Rule, SUITES};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;
use support::config::{EnvoyConfig, Filter};
use support::envoy::Envoy;
use wycheproof::{Expected, Tally};

/// One signature to judge, with everything the probe needs.
struct Vector {
    label: String,
    alg: Algorithm,
    jwks: Vec<u8>,
    kid: Option<String>,
    input: Vec<u8>,
    signature: Vec<u8>,
    expected: Expected,
    /// Set when no algorithm of the filter has the group's parameters: refused, by this rule.
    refused_by: Option<Rule>,
}

/// What the probe answers, and what this side computes for the same vector.
#[derive(Debug, PartialEq, Eq)]
struct Judgement {
    verdict: String,
    routes: String,
}

impl Vector {
    /// The filter's signature step with `RustCrypto` on the parsed `jwks`, and the routes the
    /// policy prescribes.
    fn judge_natively(&self, keys: &Result<KeySet, String>) -> Judgement {
        let keys = match keys {
            Ok(keys) => keys,
            Err(why) => return Judgement { verdict: why.clone(), routes: String::new() },
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

/// Per file: the verdicts (per vector, i.e. per case and algorithm tried), and the vectors by
/// (algorithm, route, verdict), including those refused before any signature.
#[derive(Default)]
struct Counts(BTreeMap<String, (Tally, BTreeMap<String, usize>)>);

impl Counts {
    fn add(&mut self, file: &str, what: String) {
        *self.file(file).1.entry(what).or_default() += 1;
    }

    fn file(&mut self, file: &str) -> &mut (Tally, BTreeMap<String, usize>) {
        self.0.entry(file.to_owned()).or_default()
    }
}

fn jwks_of(jwk: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap()
}

/// Every case of the signature suites, under each algorithm it is tried under, that the host
/// handles (RS*, ES256, ES384): the other groups never leave Rust.
fn signature_vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    for file in SUITES {
        for group in signatures::groups(file) {
            let jwks = group.jwks();
            let refused_by = match group.plan {
                Plan::Alg(_) => None,
                Plan::Refused(rule) => Some(rule),
            };
            for case in &group.cases {
                for alg in group.algs(case).into_iter().filter(|a| hostcrypto::hash_name(*a).is_some()) {
                    out.push(Vector {
                        label: format!("{} as {alg}", group.label(case)),
                        alg,
                        jwks: jwks.clone(),
                        kid: None,
                        input: case.msg.clone(),
                        signature: case.sig.clone(),
                        expected: case.expected,
                        refused_by,
                    });
                }
            }
        }
    }
    out
}

/// A JWS file: the groups with a public RSA/EC/OKP set (the HMAC and JWE groups, which have none,
/// never reach a signature backend). Each token is split here without the filter's form checks (which are stricter than
/// Wycheproof in places, e.g. an empty payload, and are tested elsewhere), so that every signature
/// Wycheproof judges reaches the backends. A token that is not three base64url segments with a
/// JSON header reaches no backend: it is counted, and must be one Wycheproof refuses. An `alg` this
/// verifier does not support (ES512) is out of scope: counted only.
fn jws_vectors(file: &str, counts: &mut Counts) -> Vec<Vector> {
    let vectors = wycheproof::load(file);
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
                refused_by: None,
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
    out
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

/// Every vector's native judgement. The vectors of a group share their key set: it is parsed
/// once for them (debug builds parse big RSA keys slowly).
fn judge_all_natively(vectors: &[Vector]) -> Vec<Judgement> {
    let mut key_sets = HashMap::new();
    let mut judgements = Vec::with_capacity(vectors.len());
    for v in vectors {
        let keys = key_sets.entry(v.jwks.as_slice()).or_insert_with(|| {
            KeySet::parse(&v.jwks).map(|p| p.keys).map_err(|e| format!("jwks refused: {e}"))
        });
        judgements.push(v.judge_natively(keys));
    }
    judgements
}

#[test]
fn host_and_rust_agree_on_every_vector() {
    let Some(probe) = support::require_host_probe() else { return };
    let Some(_) = support::require_envoy() else { return };
    let mut counts = Counts::default();
    let mut vectors = signature_vectors();
    vectors.extend(jws_vectors("json_web_signature_test.json", &mut counts));
    vectors.extend(jws_vectors("json_web_key_test.json", &mut counts));
    vectors.extend(jws_vectors("json_web_crypto_test.json", &mut counts));

    let yaml = EnvoyConfig::new(json!({}), 9, 9).wasm_path(&probe).yaml(Filter::Wasm);
    let envoy = Envoy::start(&yaml, 1);
    let started = Instant::now();
    // Rust judges on two threads of its own while Envoy answers: the debug build's big-key
    // arithmetic (RSA-8192, P-384) takes several times longer than the host.
    let (natives, hosts) = std::thread::scope(|scope| {
        let halves = vectors.chunks(vectors.len().div_ceil(2));
        let natives: Vec<_> = halves.map(|half| scope.spawn(|| judge_all_natively(half))).collect();
        let hosts: Vec<Judgement> = vectors.iter().map(|v| v.judge_on_host(&envoy)).collect();
        (natives.into_iter().flat_map(|half| half.join().unwrap()).collect::<Vec<_>>(), hosts)
    });
    for ((v, native), host) in vectors.iter().zip(natives).zip(hosts) {
        assert_eq!(host, native, "{}", v.label);
        let file = v.label.split(' ').next().unwrap_or_default();
        let accepted = native.verdict == "ok";
        let signature_judged = accepted || native.verdict == "jwt_bad_signature";
        let routes = format!("{} via {}: {}", v.alg, native.routes, native.verdict);
        if let Some(rule) = v.refused_by {
            assert_eq!(native.verdict, rule.reason(), "{}: {rule}", v.label);
            counts.file(file).0.refuse_by_policy(&rule.to_string());
            counts.add(file, format!("refused by policy: {routes}"));
            continue;
        }
        if v.expected.must_accept() && !signature_judged {
            // Refused by this filter's key policy before any signature was looked at (e.g. a key
            // whose own `alg` differs from the token's): the JWS files only, each one listed.
            assert!(file.starts_with("json_web"), "{}: {native:?}", v.label);
            counts.file(file).0.refuse_by_policy(&native.verdict);
            counts.add(
                file,
                format!("valid for Wycheproof, refused by key policy: {} ({})", v.label, native.verdict),
            );
            continue;
        }
        assert_eq!(accepted, v.expected.must_accept(), "{} ({:?}): {native:?}", v.label, v.expected);
        counts.file(file).0.record(v.expected, accepted);
        counts.add(file, routes);
    }
    let elapsed = started.elapsed();
    for (file, (tally, kinds)) in &counts.0 {
        eprintln!("{file} (host backend, per vector): {tally}");
        for (what, n) in kinds {
            eprintln!("  {n:5}  {what}");
        }
    }
    eprintln!("{} vectors through the host in {elapsed:?}", vectors.len());
    let via_host: usize = counts
        .0
        .values()
        .flat_map(|(_, kinds)| kinds)
        .filter(|(k, _)| k.contains("via host"))
        .map(|(_, n)| n)
        .sum();
    assert!(via_host > 4000, "only {via_host} vectors reached the host");
}

//! TEST ONLY: runs one signature vector through the filter's host crypto backend inside Envoy.
//!
//! A request carries the vector in headers, every value base64url (no padding):
//! `x-alg` (the JWS name, plain text), `x-jwks` (a JWK Set), optional `x-kid` (UTF-8),
//! `x-input` (the signed bytes) and `x-sig` (the JWS signature). The probe does what the filter
//! does with a token's signature: parses the set, lets the backend check the keys
//! (`prepare_keys`), takes the candidates for `alg`/`kid` and accepts when one verifies. It
//! answers 200 with `x-verdict` (`ok` or the refusal's reason), `x-routes` (per candidate: `host`,
//! `rust` or `policy`, see `Route`), `x-host-failures` (host calls that failed, then done in
//! Rust) and `x-set-aside` (keys the host could not use). A bad request gets 400.
//!
//! On load it runs the same self-test as the filter and refuses to start without host support:
//! this module exists to exercise the host.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_authn_wasm::alg::Algorithm;
use jwt_authn_wasm::crypto::Crypto;
use jwt_authn_wasm::filter::crypto::{HostCrypto, Route};
use jwt_authn_wasm::jwks::{Jwk, KeySet};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(ProbeRoot { crypto: None }));
}}

struct ProbeRoot {
    crypto: Option<Rc<HostCrypto>>,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        match HostCrypto::detect() {
            Ok(crypto) => {
                self.crypto = Some(Rc::new(crypto));
                true
            }
            Err(why) => {
                let _ = proxy_wasm::hostcalls::log(LogLevel::Error, &format!("host-probe: {why}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe { crypto: self.crypto.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Probe {
    crypto: Option<Rc<HostCrypto>>,
}

impl Context for Probe {}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let answer = match (&self.crypto, self.vector()) {
            (Some(crypto), Ok(vector)) => Ok(vector.run(crypto)),
            (None, _) => Err("not configured".to_owned()),
            (_, Err(why)) => Err(why),
        };
        match answer {
            Ok(headers) => {
                let headers = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                self.send_http_response(200, headers, None);
            }
            Err(why) => self.send_http_response(400, vec![], Some(why.as_bytes())),
        }
        Action::Pause
    }
}

struct Vector {
    alg: Algorithm,
    jwks: Vec<u8>,
    kid: Option<String>,
    input: Vec<u8>,
    signature: Vec<u8>,
}

impl Probe {
    fn vector(&self) -> Result<Vector, String> {
        let header = |name: &str| self.get_http_request_header(name);
        let decoded = |name: &str| {
            let value = header(name).ok_or(format!("no {name}"))?;
            URL_SAFE_NO_PAD.decode(value).map_err(|e| format!("{name}: {e}"))
        };
        let alg = header("x-alg").ok_or("no x-alg")?;
        Ok(Vector {
            alg: Algorithm::from_name(&alg).ok_or(format!("unknown alg {alg}"))?,
            jwks: decoded("x-jwks")?,
            kid: match header("x-kid") {
                None => None,
                Some(_) => Some(String::from_utf8(decoded("x-kid")?).map_err(|_| "x-kid: not UTF-8")?),
            },
            input: decoded("x-input")?,
            signature: decoded("x-sig")?,
        })
    }
}

impl Vector {
    /// The answer headers.
    fn run(&self, crypto: &HostCrypto) -> Vec<(&'static str, String)> {
        let mut set_aside = 0;
        let (verdict, routes) = match KeySet::parse(&self.jwks) {
            Err(e) => (format!("jwks refused: {e}"), Vec::new()),
            Ok(parsed) => {
                let mut keys = parsed.keys;
                set_aside = crypto.prepare_keys(&mut keys).len();
                match keys.candidates(self.alg, self.kid.as_deref()) {
                    Err(e) => (e.reason().to_owned(), Vec::new()),
                    Ok(candidates) => self.verify(crypto, &candidates),
                }
            }
        };
        vec![
            ("x-verdict", verdict),
            ("x-routes", routes.join(",")),
            ("x-host-failures", crypto.failures().to_string()),
            ("x-set-aside", set_aside.to_string()),
        ]
    }

    /// As the filter: accepted when one candidate verifies. Also the route of each.
    fn verify(&self, crypto: &HostCrypto, candidates: &[&Jwk]) -> (String, Vec<&'static str>) {
        let mut routes = Vec::new();
        let mut verified = false;
        for key in candidates {
            let (verdict, route) = crypto.verify_traced(self.alg, key, &self.input, &self.signature);
            verified |= verdict.is_ok();
            routes.push(match route {
                Route::Policy => "policy",
                Route::Host => "host",
                Route::Rust => "rust",
            });
        }
        let verdict = if verified { "ok" } else { "jwt_bad_signature" };
        (verdict.to_owned(), routes)
    }
}

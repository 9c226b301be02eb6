//! Tier 2: the whole request decision, `authn::decide`, natively (no Envoy). Configs are JSON as
//! an operator writes them, keys are the fixture keys' JWKS, tokens are signed by `mint`, the clock
//! is fixed; each test asserts the exact `Decision` (header changes, local reply, or hold) and the
//! events the filter turns into metrics.

mod support;

use Event::{
    Allowed, CacheHit, CacheMiss, Denied, Refused, Reported, SharedHit, SignatureChecked, StaleServed,
    Verified,
};
use jwt_authn_wasm::alg::Algorithm;
use jwt_authn_wasm::authn::{
    self, Decision, Env, Event, KeyState, RETRY_AFTER_SECONDS, ReadyKeys, Reply, Request, UnknownKid, Wait,
};
use jwt_authn_wasm::cache::TokenCache;
use jwt_authn_wasm::config::{Config, CryptoMode, KeySource, ProviderId};
use jwt_authn_wasm::crypto::{Crypto, RustCrypto};
use jwt_authn_wasm::error::{AuthnError, JwtError};
use jwt_authn_wasm::forward::Mutations;
use jwt_authn_wasm::identity::Entries;
use jwt_authn_wasm::jwks::{Jwk, KeySet};
use jwt_authn_wasm::route::RouteChoice;
use jwt_authn_wasm::shared_record::{Digester, KeySetId, MemStore, SharedRecord};
use serde_json::{Value, json};
use std::cell::Cell;
use support::config::corp_jwks;
use support::mint::{self, TestKey, Token};

/// The process's digest key, as every VM of one Envoy shares it.
static DIGESTER: std::sync::LazyLock<Digester> = std::sync::LazyLock::new(|| Digester::new(&[42; 16]));

/// The fixed clock (Unix seconds): tokens are minted around it.
const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://issuer.example";
const PARTNER_ISS: &str = "https://partner.example";
const AUD: &str = "api.example";
const STATUS: &str = "x-jwt-authn-status";

// ---- Tokens and configs ----------------------------------------------------------------------

/// A token `corp` accepts: RS256 by `rsa-a`, valid for an hour around `NOW`.
fn good() -> Token<'static> {
    Token::new("RS256", TestKey::RsaA)
        .kid("rsa-a")
        .iss(ISS)
        .aud(AUD)
        .sub("alice")
        .claim("iat", json!(NOW))
        .claim("exp", json!(NOW + 3600))
}

/// A token `partner` accepts: ES256 by `ec-a`.
fn partner_token() -> Token<'static> {
    Token::new("ES256", TestKey::P256A)
        .kid("ec-a")
        .iss(PARTNER_ISS)
        .aud(AUD)
        .sub("bob")
        .claim("iat", json!(NOW))
        .claim("exp", json!(NOW + 3600))
}

fn payload_of(token: &str) -> String {
    token.split('.').nth(1).unwrap().to_owned()
}

/// `base` with the members of `extra` set.
fn merged(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// The `corp` provider (issuer `ISS`, audience `AUD`, the fixture JWKS inline) with `extra` fields.
fn corp(extra: Value) -> Value {
    let base = json!({"issuer": ISS, "audiences": [AUD], "local_jwks": {"inline_string": corp_jwks()}});
    merged(base, extra)
}

/// The `partner` provider: another issuer on the same default locations (Authorization header).
fn partner(extra: Value) -> Value {
    let base =
        json!({"issuer": PARTNER_ISS, "audiences": [AUD], "local_jwks": {"inline_string": corp_jwks()}});
    merged(base, extra)
}

/// A config whose only rule sends `/api` to `corp`.
fn corp_only(extra: Value) -> Value {
    json!({"providers": {"corp": corp(extra)}, "rules": [{"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}}]})
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Header names and values, owned.
type Headers = Vec<(String, String)>;

fn pairs(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn allow(remove: &[&str], set: &[(&str, &str)]) -> Decision {
    Decision::Allow(Mutations { remove: strings(remove), set: pairs(set), filter_state: Entries::default() })
}

fn reply(status: u32, header: (&str, &str), body: &str, reason: &'static str) -> Decision {
    let filter_state = Entries::default();
    Decision::Deny(Reply { status, headers: pairs(&[header]), body: body.to_owned(), reason, filter_state })
}

/// The realm of a request for `path` (see `get`).
fn realm(path: &str) -> String {
    format!("https://api.example.com{path}")
}

/// The 401 for a request without a token on `path`: a challenge without an error code (RFC 6750
/// §3.1).
fn missing_on(path: &str) -> Decision {
    let challenge = format!("Bearer realm=\"{}\"", realm(path));
    reply(401, ("www-authenticate", &challenge), "jwt_missing", "jwt_missing")
}

/// The reply to a refused token on `path`: the RFC 6750 challenge with the error code and the
/// reason, and the reason as the body.
fn refusal_on(path: &str, status: u32, code: &str, reason: &'static str) -> Decision {
    let challenge =
        format!("Bearer realm=\"{}\", error=\"{code}\", error_description=\"{reason}\"", realm(path));
    reply(status, ("www-authenticate", &challenge), reason, reason)
}

/// `refusal_on` for `/api`.
fn refusal(status: u32, code: &str, reason: &'static str) -> Decision {
    refusal_on("/api", status, code, reason)
}

// ---- The decision's environment --------------------------------------------------------------

/// The pure-Rust backend, counting its calls (to see cache hits skip the signature).
#[derive(Default)]
struct Counting(Cell<usize>);

impl Crypto for Counting {
    fn verify(&self, alg: Algorithm, key: &Jwk, input: &[u8], sig: &[u8]) -> Result<(), JwtError> {
        self.0.set(self.0.get() + 1);
        RustCrypto.verify(alg, key, input, sig)
    }
}

/// What a provider's keys look like to the decision.
enum Keys {
    /// The keys, what an unknown `kid` does, whether they are stale, and which set they are.
    Ready(KeySet, UnknownKid, bool, KeySetId),
    Pending,
    Unavailable,
}

/// The identity of the fixture key set (`corp_jwks`) as a VM would name it.
fn fixture_id() -> KeySetId {
    KeySetId::remote("corp", "idp/jwks.json", CryptoMode::Auto, corp_jwks().as_bytes())
}

/// A config with the state a VM keeps between requests: keys, token caches, the shared record of
/// verified tokens (each `Filter` its own store unless `sharing` another's), the crypto backend.
struct Filter {
    config: Config,
    keys: Vec<Keys>,
    caches: Vec<TokenCache>,
    store: &'static MemStore,
    shared: SharedRecord<&'static MemStore>,
    crypto: Counting,
}

impl Filter {
    /// Local keys are ready (unknown `kid`s refused, as for local keys); caches as configured.
    fn new(doc: Value) -> Filter {
        let config = Config::parse(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let keys = config
            .providers
            .iter()
            .map(|p| match &p.keys {
                KeySource::Local(set) => Keys::Ready(
                    set.clone(),
                    UnknownKid::Refuse,
                    false,
                    KeySetId::local(&p.name, CryptoMode::Auto, doc.to_string().as_bytes()),
                ),
                KeySource::Remote(_) => Keys::Pending,
            })
            .collect();
        let caches = config.providers.iter().map(|p| TokenCache::configured(&p.jwt_cache)).collect();
        // Leaked: a few bytes per test, and `sharing` lends the store to another "VM".
        let store: &'static MemStore = Box::leak(Box::default());
        let sizes = config.providers.iter().map(|p| (p.name.as_str(), p.jwt_cache.shared_cache_size));
        let shared = SharedRecord::new(store, sizes);
        Filter { config, keys, caches, store, shared, crypto: Counting::default() }
    }

    /// Another VM of the same Envoy: the same config and keys, its own caches and backend, the
    /// same shared data.
    fn sharing(other: &Filter, doc: Value) -> Filter {
        let mut f = Filter::new(doc);
        let sizes = f.config.providers.iter().map(|p| (p.name.as_str(), p.jwt_cache.shared_cache_size));
        f.shared = SharedRecord::new(other.store, sizes);
        f.store = other.store;
        f
    }

    fn id(&self, name: &str) -> ProviderId {
        self.config.providers.iter().position(|p| p.name == name).unwrap()
    }

    fn set_keys(&mut self, name: &str, keys: Keys) {
        let id = self.id(name);
        self.keys[id] = keys;
    }

    /// The fixture keys for provider `name`, with this answer for an unknown `kid`.
    fn unknown_kid(&mut self, name: &str, answer: UnknownKid) {
        let set = KeySet::parse(corp_jwks().as_bytes()).unwrap().keys;
        self.set_keys(name, Keys::Ready(set, answer, false, fixture_id()));
    }

    fn decide(&mut self, req: &Req) -> (Decision, Vec<Event>) {
        let keys = &self.keys;
        let key_state = |id: ProviderId| match keys.get(id) {
            Some(Keys::Ready(set, unknown_kid, stale, id)) => {
                KeyState::Ready(ReadyKeys { keys: set, unknown_kid: *unknown_kid, stale: *stale, id: *id })
            }
            Some(Keys::Pending) => KeyState::Pending,
            Some(Keys::Unavailable) | None => KeyState::Unavailable,
        };
        let mut events = Vec::new();
        let mut env = Env {
            keys: &key_state,
            crypto: &self.crypto,
            caches: &mut self.caches,
            digester: &DIGESTER,
            shared: &mut self.shared,
            events: &mut events,
        };
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let request = Request {
            headers: &headers,
            may_wait_for_keys: req.wait_keys,
            may_wait_for_kid: req.wait_kid,
            now_ms: u64::try_from(req.now).unwrap() * 1000,
            route: &req.route,
        };
        let decision = authn::decide(&self.config, &mut env, &request);
        (decision, events)
    }

    /// Signature verifications so far.
    fn crypto_calls(&self) -> usize {
        self.crypto.0.get()
    }
}

/// A request as the filter sees it.
#[derive(Clone)]
struct Req {
    headers: Headers,
    wait_keys: bool,
    wait_kid: bool,
    now: i64,
    route: RouteChoice,
}

/// `GET https://api.example.com<path>`, allowed to wait, at `NOW`.
fn get(path: &str) -> Req {
    let headers = pairs(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "api.example.com"),
        (":path", path),
    ]);
    Req { headers, wait_keys: true, wait_kid: true, now: NOW, route: RouteChoice::Rules }
}

impl Req {
    fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }

    fn method(mut self, method: &str) -> Req {
        self.headers[0].1 = method.to_owned();
        self
    }

    fn no_wait_keys(mut self) -> Req {
        self.wait_keys = false;
        self
    }

    fn no_wait_kid(mut self) -> Req {
        self.wait_kid = false;
        self
    }

    fn route(mut self, route: RouteChoice) -> Req {
        self.route = route;
        self
    }

    fn at(mut self, now: i64) -> Req {
        self.now = now;
        self
    }

    /// Every header the filter writes, forged by the client.
    fn spoofed(self, names: &[&str]) -> Req {
        names.iter().fold(self, |r, n| r.header(n, "forged"))
    }
}

fn jwt(e: JwtError) -> AuthnError {
    AuthnError::Jwt(e)
}

// ---- Allowed requests: what goes upstream ----------------------------------------------------

#[test]
fn claims_and_payload_go_upstream_and_the_token_is_stripped() {
    let mut f = Filter::new(corp_only(json!({
        "forward_payload_header": "x-jwt-payload",
        "claim_to_headers": [
            {"header_name": "x-sub", "claim_name": "sub"},
            {"header_name": "x-roles", "claim_name": "realm.roles"},
            {"header_name": "x-roles-json", "claim_name": "realm.roles", "format": "json"},
            {"header_name": "x-tenant", "claim_name": "org.tenant.id"},
            {"header_name": "x-groups", "claim_name": "groups"},
            {"header_name": "x-admin", "claim_name": "admin"},
            {"header_name": "x-org", "claim_name": "org", "format": "json"},
            {"header_name": "x-email", "claim_name": "email"}
        ]
    })));
    let token = good()
        .claim("realm", json!({"roles": ["admin", "ops"]}))
        .claim("org", json!({"tenant": {"id": "acme"}}))
        .claim("groups", json!([1, "two", true]))
        .claim("admin", json!(false))
        .sign();
    let outputs = [
        STATUS,
        "x-jwt-payload",
        "x-sub",
        "x-roles",
        "x-roles-json",
        "x-tenant",
        "x-groups",
        "x-admin",
        "x-org",
        "x-email",
    ];
    let (decision, events) = f.decide(&get("/api").bearer(&token).spoofed(&outputs));
    let payload = payload_of(&token);
    let remove: Vec<&str> = outputs.iter().copied().chain(["authorization"]).collect();
    let expected = allow(
        &remove,
        &[
            ("x-jwt-payload", &payload),
            ("x-sub", "alice"),
            ("x-roles", "admin,ops"),
            ("x-roles-json", r#"["admin","ops"]"#),
            ("x-tenant", "acme"),
            ("x-groups", "1,two,true"),
            ("x-admin", "false"),
            ("x-org", r#"{"tenant":{"id":"acme"}}"#),
        ],
    );
    assert_eq!(decision, expected, "x-email: claim absent, so only removed");
    assert_eq!(events, [CacheMiss(0), SignatureChecked(0), Verified(0), Allowed]);
}

#[test]
fn the_payload_header_can_be_padded() {
    let mut f = Filter::new(corp_only(
        json!({"forward_payload_header": "x-jwt-payload", "pad_forward_payload_header": true}),
    ));
    for extra in ["", "x", "xy", "xyz"] {
        let token = good().claim("pad", json!(extra)).sign();
        let mut padded = payload_of(&token);
        while !padded.len().is_multiple_of(4) {
            padded.push('=');
        }
        let (decision, _) = f.decide(&get("/api").bearer(&token));
        let expected = allow(&[STATUS, "x-jwt-payload", "authorization"], &[("x-jwt-payload", &padded)]);
        assert_eq!(decision, expected, "{extra:?}");
    }
}

#[test]
fn tokens_are_stripped_from_header_parameter_and_cookie_unless_forwarded() {
    let locations = json!({
        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}, {"name": "x-token"}],
        "from_params": ["token"],
        "from_cookies": ["session"]
    });
    let t = good().sign();
    let cases: Vec<(&str, Req, Decision)> = vec![
        ("authorization", get("/api").bearer(&t), allow(&[STATUS, "authorization"], &[])),
        ("bare header", get("/api").header("x-token", &t), allow(&[STATUS, "x-token"], &[])),
        (
            "parameter among others",
            get(&format!("/api?a=1&token={t}&b=2")),
            allow(&[STATUS], &[(":path", "/api?a=1&b=2")]),
        ),
        ("parameter alone", get(&format!("/api?token={t}")), allow(&[STATUS], &[(":path", "/api")])),
        (
            "cookie among others",
            get("/api").header("cookie", &format!("a=1; session={t}; b=2")),
            allow(&[STATUS, "cookie"], &[("cookie", "a=1; b=2")]),
        ),
        (
            "cookie alone",
            get("/api").header("cookie", &format!("session={t}")),
            allow(&[STATUS, "cookie"], &[]),
        ),
        (
            "header and cookie, both stripped",
            get("/api").bearer(&t).header("cookie", &format!("session={t}; x=y")),
            allow(&[STATUS, "authorization", "cookie"], &[("cookie", "x=y")]),
        ),
    ];
    for (name, req, expected) in &cases {
        let mut f = Filter::new(corp_only(locations.clone()));
        assert_eq!(f.decide(req).0, *expected, "{name}");
        let mut kept = Filter::new(corp_only(merged(locations.clone(), json!({"forward": true}))));
        assert_eq!(kept.decide(req).0, allow(&[STATUS], &[]), "{name}, forward: true");
    }
}

#[test]
fn client_copies_of_output_headers_are_removed_on_every_route_kind() {
    let claims = json!([{"header_name": "x-sub", "claim_name": "sub"}, {"header_name": "x-email", "claim_name": "email"}]);
    let doc = json!({
        "bypass_cors_preflight": true,
        "providers": {
            "corp": corp(json!({"forward_payload_header": "x-jwt-payload", "claim_to_headers": claims})),
            "partner": partner(json!({"claim_to_headers": [{"header_name": "x-partner", "claim_name": "sub"}]})),
            "audit": corp(json!({"mode": "report", "forward_payload_header": "x-jwt-payload"}))
        },
        "rules": [
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}},
            {"match": {"prefix": "/open"}},
            {"match": {"prefix": "/public"}, "requires": {"allow_missing": {}}},
            {"match": {"prefix": "/lenient"}, "requires": {"allow_missing_or_failed": {}}},
            {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [{"provider_name": "corp"}, {"provider_name": "partner"}]}}},
            {"match": {"prefix": "/audit"}, "requires": {"provider_name": "audit"}}
        ]
    });
    // Providers in name order: audit, corp, partner.
    let outputs = [STATUS, "x-jwt-payload", "x-sub", "x-email", "x-partner"];
    let good = good().sign();
    let expired = expired_token();
    let payload = payload_of(&good);
    let cases: Vec<(&str, Req, Headers)> = vec![
        (
            "provider, verified",
            get("/api").bearer(&good),
            pairs(&[("x-jwt-payload", &payload), ("x-sub", "alice")]),
        ),
        ("no requirement", get("/open").bearer(&good), vec![]),
        ("no rule", get("/elsewhere"), vec![]),
        ("allow_missing, no token", get("/public"), vec![]),
        ("allow_missing_or_failed, bad token", get("/lenient").bearer(&expired), vec![]),
        (
            "requires_any, partner",
            get("/any").bearer(&partner_token().sign()),
            pairs(&[("x-partner", "bob")]),
        ),
        (
            "CORS preflight",
            get("/api")
                .method("OPTIONS")
                .header("origin", "https://app")
                .header("access-control-request-method", "GET"),
            vec![],
        ),
        ("report mode, refused", get("/audit").bearer(&expired), pairs(&[(STATUS, "jwt_expired")])),
    ];
    for (name, req, set) in cases {
        let mut f = Filter::new(doc.clone());
        let Decision::Allow(m) = f.decide(&req.spoofed(&outputs)).0 else { panic!("{name}: not allowed") };
        assert_eq!(
            m.remove.get(..outputs.len()),
            Some(&strings(&outputs)[..]),
            "{name}: every output header first"
        );
        assert_eq!(m.set, set, "{name}");
    }
}

/// A `corp` token that expired long ago.
fn expired_token() -> String {
    good().claim("exp", json!(NOW - 3600)).sign()
}

// ---- Refused requests: the local reply -------------------------------------------------------

#[test]
fn failures_answer_with_their_status_challenge_and_body() {
    use JwtError::*;
    let doc = corp_only(json!({
        "algorithms": ["RS256", "ES256"],
        "required_scopes": ["read"],
        "required_claims": [{"name": "tenant", "values": ["acme", "globex"]}]
    }));
    let ok = || good().claim("scope", json!("read write")).claim("tenant", json!("acme"));
    assert_eq!(
        Filter::new(doc.clone()).decide(&get("/api").bearer(&ok().sign())).0,
        allow(&[STATUS, "authorization"], &[])
    );
    let token = |t: Token<'static>| get("/api").bearer(&t.sign());
    let miss_refused_denied = |e: AuthnError| vec![CacheMiss(0), Refused(0, e), Denied(e)];
    // Refused at or after the signature check.
    let checked_refused_denied =
        |e: AuthnError| vec![CacheMiss(0), SignatureChecked(0), Refused(0, e), Denied(e)];
    let cases: Vec<(&str, Req, Decision, Vec<Event>)> = vec![
        (
            "missing: no error code (RFC 6750 §3.1)",
            get("/api"),
            missing_on("/api"),
            vec![Denied(AuthnError::Missing)],
        ),
        (
            "expired",
            token(ok().claim("exp", json!(NOW - 61))),
            refusal(401, "invalid_token", "jwt_expired"),
            miss_refused_denied(jwt(Expired)),
        ),
        (
            "not yet valid",
            token(ok().claim("nbf", json!(NOW + 61))),
            refusal(401, "invalid_token", "jwt_not_yet_valid"),
            miss_refused_denied(jwt(NotYetValid)),
        ),
        (
            "bad signature",
            get("/api").bearer(&mint::tamper(&ok().sign())),
            refusal(401, "invalid_token", "jwt_bad_signature"),
            checked_refused_denied(jwt(BadSignature)),
        ),
        (
            "algorithm not allowed",
            token(
                Token::new("PS256", TestKey::RsaA)
                    .kid("rsa-a")
                    .iss(ISS)
                    .aud(AUD)
                    .claim("exp", json!(NOW + 60)),
            ),
            refusal(401, "invalid_token", "jwt_alg_not_allowed"),
            miss_refused_denied(jwt(AlgNotAllowed)),
        ),
        (
            "not a JWT",
            get("/api").bearer("abc"),
            refusal(401, "invalid_token", "jwt_bad_format"),
            miss_refused_denied(jwt(BadFormat)),
        ),
        (
            "two tokens in the header",
            get("/api").header("authorization", "Bearer a b"),
            refusal(401, "invalid_token", "jwt_location_malformed"),
            vec![Refused(0, AuthnError::MalformedLocation), Denied(AuthnError::MalformedLocation)],
        ),
        (
            "the header twice",
            get("/api").bearer(&ok().sign()).bearer(&ok().sign()),
            refusal(401, "invalid_token", "jwt_location_repeated"),
            vec![Refused(0, AuthnError::RepeatedLocation), Denied(AuthnError::RepeatedLocation)],
        ),
        (
            "another issuer: not this provider's token, no provider refusal",
            token(ok().iss("https://elsewhere.example")),
            refusal(401, "invalid_token", "jwt_issuer_not_allowed"),
            vec![CacheMiss(0), Denied(jwt(IssuerNotAllowed))],
        ),
        (
            "audience: 403 as jwt_authn",
            token(ok().aud("other.example")),
            refusal(403, "invalid_token", "jwt_audience_not_allowed"),
            miss_refused_denied(jwt(AudienceNotAllowed)),
        ),
        (
            "no audience: 403",
            token(ok().remove_claim("aud")),
            refusal(403, "invalid_token", "jwt_missing_audience"),
            miss_refused_denied(jwt(MissingAudience)),
        ),
        (
            "a scope missing: 403 insufficient_scope",
            token(ok().claim("scope", json!("write"))),
            refusal(403, "insufficient_scope", "jwt_insufficient_scope"),
            checked_refused_denied(jwt(InsufficientScope)),
        ),
        (
            "scp instead of scope works, a missing one does not",
            token(ok().remove_claim("scope").claim("scp", json!(["write"]))),
            refusal(403, "insufficient_scope", "jwt_insufficient_scope"),
            checked_refused_denied(jwt(InsufficientScope)),
        ),
        (
            "required claim with another value: 403 insufficient_scope",
            token(ok().claim("tenant", json!("initech"))),
            refusal(403, "insufficient_scope", "jwt_required_claim_mismatch"),
            checked_refused_denied(jwt(ClaimMismatch)),
        ),
        (
            "required claim absent",
            token(ok().remove_claim("tenant")),
            refusal(403, "insufficient_scope", "jwt_required_claim_mismatch"),
            checked_refused_denied(jwt(ClaimMismatch)),
        ),
    ];
    for (name, req, expected, expected_events) in cases {
        let mut f = Filter::new(doc.clone());
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
    let scp = good().claim("scp", json!(["read"])).claim("tenant", json!("globex")).sign();
    assert!(
        matches!(Filter::new(doc).decide(&get("/api").bearer(&scp)).0, Decision::Allow(_)),
        "scp, any-of values"
    );
}

#[test]
fn the_realm_is_the_url_without_query_and_unsafe_characters() {
    let mut f = Filter::new(
        json!({"providers": {"corp": corp(json!({}))}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "corp"}}]}),
    );
    for (path, realm_path) in [("/api?token=x#frag", "/api"), ("/a\"b\\c", "/abc"), ("/", "/")] {
        assert_eq!(f.decide(&get(path)).0, missing_on(realm_path), "{path}");
    }
}

#[test]
fn strip_failure_response_leaves_out_the_reason() {
    let doc =
        merged(corp_only(json!({"required_scopes": ["read"]})), json!({"strip_failure_response": true}));
    let realm = realm("/api");
    let bare = |code: &str| format!("Bearer realm=\"{realm}\", error=\"{code}\"");
    let cases = [
        (get("/api"), 401, format!("Bearer realm=\"{realm}\""), "jwt_missing"),
        (get("/api").bearer(&expired_token()), 401, bare("invalid_token"), "jwt_expired"),
        (get("/api").bearer(&good().aud("x").sign()), 403, bare("invalid_token"), "jwt_audience_not_allowed"),
        (get("/api").bearer(&good().sign()), 403, bare("insufficient_scope"), "jwt_insufficient_scope"),
    ];
    for (req, status, header, reason) in cases {
        let mut f = Filter::new(doc.clone());
        assert_eq!(f.decide(&req).0, reply(status, ("www-authenticate", &header), "", reason), "{reason}");
    }
}

// ---- Keys not there: 503 or hold ---------------------------------------------------------------

#[test]
fn without_usable_keys_the_answer_is_503_with_retry_after() {
    let retry = RETRY_AFTER_SECONDS.to_string();
    let unavailable = reply(503, ("retry-after", &retry), "jwks_unavailable", "jwks_unavailable");
    let e = AuthnError::KeysUnavailable;
    let cases = [
        ("unavailable", Keys::Unavailable, get("/api").bearer(&good().sign())),
        (
            "unavailable, not allowed to wait either",
            Keys::Unavailable,
            get("/api").bearer(&good().sign()).no_wait_keys(),
        ),
        ("pending, may not wait", Keys::Pending, get("/api").bearer(&good().sign()).no_wait_keys()),
    ];
    for (name, keys, req) in cases {
        let mut f = Filter::new(corp_only(json!({})));
        f.set_keys("corp", keys);
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, unavailable, "{name}");
        assert_eq!(events, [CacheMiss(0), Refused(0, e), Denied(e)], "{name}");
    }
    let mut f = Filter::new(corp_only(json!({})));
    f.set_keys("corp", Keys::Unavailable);
    let expired = f.decide(&get("/api").bearer(&expired_token())).0;
    assert_eq!(
        expired,
        refusal(401, "invalid_token", "jwt_expired"),
        "keyless checks first: the client's fault"
    );
    let missing = f.decide(&get("/api")).0;
    assert!(matches!(missing, Decision::Deny(Reply { status: 401, .. })), "{missing:?}");
}

#[test]
fn pending_keys_hold_the_request_and_count_nothing_yet() {
    let mut f = Filter::new(corp_only(json!({})));
    f.set_keys("corp", Keys::Pending);
    let (decision, events) = f.decide(&get("/api").bearer(&good().sign()));
    assert_eq!(decision, Decision::Wait(Wait { refetch: vec![], for_kid: false }));
    assert_eq!(events, [], "a held request is decided again, and counted then, once");
    let (decision, events) = f.decide(&get("/api"));
    assert!(matches!(decision, Decision::Deny(Reply { status: 401, .. })), "no token: nothing to wait for");
    assert_eq!(events, [Denied(AuthnError::Missing)]);
}

#[test]
fn an_unknown_kid_waits_for_a_refetch_or_is_refused() {
    let unknown = good().kid("rotated").sign();
    let refused = || refusal(401, "invalid_token", "jwt_unknown_kid");
    let wait = |refetch: bool| {
        Decision::Wait(Wait { refetch: if refetch { vec![0] } else { vec![] }, for_kid: true })
    };
    let cases = [
        (UnknownKid::Refetch, true, wait(true)),
        (UnknownKid::Wait, true, wait(false)),
        (UnknownKid::Refuse, true, refused()),
        (UnknownKid::Refetch, false, refused()),
        (UnknownKid::Wait, false, refused()),
    ];
    for (answer, may_wait, expected) in cases {
        let mut f = Filter::new(corp_only(json!({})));
        f.unknown_kid("corp", answer);
        let req = get("/api").bearer(&unknown);
        let (decision, events) = f.decide(&if may_wait { req } else { req.no_wait_kid() });
        let e = jwt(JwtError::UnknownKid);
        let expected_events = if matches!(expected, Decision::Wait(_)) {
            vec![]
        } else {
            vec![CacheMiss(0), Refused(0, e), Denied(e)]
        };
        assert_eq!(decision, expected, "{answer:?}, may wait: {may_wait}");
        assert_eq!(events, expected_events, "{answer:?}, may wait: {may_wait}");
    }
}

#[test]
fn a_known_kid_verifies_while_a_refetch_would_be_allowed() {
    let mut f = Filter::new(corp_only(json!({})));
    f.unknown_kid("corp", UnknownKid::Refetch);
    assert_eq!(f.decide(&get("/api").bearer(&good().sign())).0, allow(&[STATUS, "authorization"], &[]));
}

#[test]
fn stale_keys_still_verify_and_say_so() {
    let mut f = Filter::new(corp_only(json!({})));
    let set = KeySet::parse(corp_jwks().as_bytes()).unwrap().keys;
    f.set_keys("corp", Keys::Ready(set, UnknownKid::Refuse, true, fixture_id()));
    let (decision, events) = f.decide(&get("/api").bearer(&good().sign()));
    assert_eq!(decision, allow(&[STATUS, "authorization"], &[]));
    assert_eq!(events, [CacheMiss(0), SignatureChecked(0), StaleServed(0), Verified(0), Allowed]);
}

// ---- Report mode -----------------------------------------------------------------------------

#[test]
fn report_mode_lets_every_request_through_with_its_status() {
    let claims = json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]});
    let doc = merged(corp_only(claims), json!({"mode": "report"}));
    let remove = [STATUS, "x-sub"];
    let e = |e: JwtError| jwt(e);
    let cases: Vec<(&str, Req, Decision, Vec<Event>)> = vec![
        (
            "valid: claims forwarded, token stripped, status ok",
            get("/api").bearer(&good().sign()),
            allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice"), (STATUS, "ok")]),
            vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed],
        ),
        (
            "expired: through, token kept",
            get("/api").bearer(&expired_token()),
            allow(&remove, &[(STATUS, "jwt_expired")]),
            vec![CacheMiss(0), Refused(0, e(JwtError::Expired)), Denied(e(JwtError::Expired)), Reported],
        ),
        (
            "missing",
            get("/api"),
            allow(&remove, &[(STATUS, "jwt_missing")]),
            vec![Denied(AuthnError::Missing), Reported],
        ),
        (
            "bad signature, and a forged status header",
            get("/api").bearer(&mint::tamper(&good().sign())).header(STATUS, "ok"),
            allow(&remove, &[(STATUS, "jwt_bad_signature")]),
            vec![
                CacheMiss(0),
                SignatureChecked(0),
                Refused(0, e(JwtError::BadSignature)),
                Denied(e(JwtError::BadSignature)),
                Reported,
            ],
        ),
    ];
    for (name, req, expected, expected_events) in cases {
        let mut f = Filter::new(doc.clone());
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
    let mut f = Filter::new(doc);
    f.set_keys("corp", Keys::Unavailable);
    let ka = AuthnError::KeysUnavailable;
    let (decision, events) = f.decide(&get("/api").bearer(&good().sign()));
    assert_eq!(decision, allow(&remove, &[(STATUS, "jwks_unavailable")]), "even without keys");
    assert_eq!(events, [CacheMiss(0), Refused(0, ka), Denied(ka), Reported]);
}

#[test]
fn report_mode_per_provider() {
    let any = |a: &str, b: &str| json!({"requires_any": {"requirements": [{"provider_name": a}, {"provider_name": b}]}});
    let all = |a: &str, b: &str| json!({"requires_all": {"requirements": [{"provider_name": a}, {"provider_name": b}]}});
    let doc = json!({
        "providers": {"audit": partner(json!({"mode": "report"})), "corp": corp(json!({}))},
        "rules": [
            {"match": {"prefix": "/audit"}, "requires": {"provider_name": "audit"}},
            {"match": {"prefix": "/corp"}, "requires": {"provider_name": "corp"}},
            {"match": {"prefix": "/any"}, "requires": any("audit", "corp")},
            {"match": {"prefix": "/all"}, "requires": all("audit", "corp")},
            {"match": {"prefix": "/public"}, "requires": {"allow_missing": {}}}
        ]
    });
    let through = |status: &str| allow(&[STATUS], &[(STATUS, status)]);
    let corp = good().sign();
    let audit = partner_token().sign();
    let cases: Vec<(&str, Req, Decision)> = vec![
        ("report provider, missing", get("/audit"), through("jwt_missing")),
        (
            "report provider, expired",
            get("/audit").bearer(&partner_token().claim("exp", json!(NOW - 600)).sign()),
            through("jwt_expired"),
        ),
        (
            "report provider, valid",
            get("/audit").bearer(&audit),
            allow(&[STATUS, "authorization"], &[(STATUS, "ok")]),
        ),
        ("enforcing provider, missing", get("/corp"), missing_on("/corp")),
        ("any: the enforcing one allows", get("/any").bearer(&corp), allow(&[STATUS, "authorization"], &[])),
        // The first denial of requires_all decides without asking corp: the report provider's
        // failure must not let through a request that corp (enforcing) was never asked about.
        ("all: missing", get("/all"), missing_on("/all")),
        (
            "all: a corp token only",
            get("/all").bearer(&corp),
            refusal_on("/all", 401, "invalid_token", "jwt_issuer_not_allowed"),
        ),
        ("any: missing", get("/any"), missing_on("/any")),
        (
            "allow_missing over both, a bad audit token",
            get("/public").bearer(&mint::tamper(&audit)),
            refusal_on("/public", 401, "invalid_token", "jwt_bad_signature"),
        ),
        // A requirement with an enforcing provider is enforced, whichever provider answered.
        ("any: the report one allows", get("/any").bearer(&audit), allow(&[STATUS, "authorization"], &[])),
    ];
    for (name, req, expected) in cases {
        let mut f = Filter::new(doc.clone());
        assert_eq!(f.decide(&req).0, expected, "{name}");
    }
}

// ---- CORS preflight ----------------------------------------------------------------------------

#[test]
fn cors_preflights_pass_without_a_token_only_when_configured() {
    let with_flag = merged(corp_only(json!({})), json!({"bypass_cors_preflight": true}));
    let options = || get("/api").method("OPTIONS");
    let preflight =
        || options().header("origin", "https://app.example").header("access-control-request-method", "POST");
    let missing = || missing_on("/api");
    let cases: Vec<(&str, &Value, Req, Decision, Vec<Event>)> = vec![
        ("preflight", &with_flag, preflight(), allow(&[STATUS], &[]), vec![Event::CorsBypassed]),
        (
            "without Origin",
            &with_flag,
            options().header("access-control-request-method", "POST"),
            missing(),
            vec![Denied(AuthnError::Missing)],
        ),
        (
            "without the method header",
            &with_flag,
            options().header("origin", "https://app.example"),
            missing(),
            vec![Denied(AuthnError::Missing)],
        ),
        ("not OPTIONS", &with_flag, preflight().method("GET"), missing(), vec![Denied(AuthnError::Missing)]),
    ];
    let without_flag = corp_only(json!({}));
    let cases = cases.into_iter().chain([(
        "flag off",
        &without_flag,
        preflight(),
        missing(),
        vec![Denied(AuthnError::Missing)],
    )]);
    for (name, doc, req, expected, expected_events) in cases {
        let mut f = Filter::new(doc.clone());
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
    let mut f = Filter::new(with_flag);
    let (decision, events) = f.decide(&preflight().bearer(&expired_token()));
    assert_eq!(decision, allow(&[STATUS], &[]), "a preflight's token is not looked at");
    assert_eq!(events, [Event::CorsBypassed]);
}

// ---- The token cache ---------------------------------------------------------------------------

#[test]
fn a_cached_token_skips_the_signature_but_not_the_claims() {
    let mut f =
        Filter::new(corp_only(json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]})));
    let token = good().sign();
    let expected = allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice")]);
    let (first, events) = f.decide(&get("/api").bearer(&token));
    assert_eq!(
        (first, events, f.crypto_calls()),
        (expected, vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed], 1)
    );
    for _ in 0..3 {
        let (again, events) = f.decide(&get("/api").bearer(&token));
        let expected = allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice")]);
        assert_eq!((again, events, f.crypto_calls()), (expected, vec![CacheHit(0), Verified(0), Allowed], 1));
    }
    let e = jwt(JwtError::Expired);
    let (later, events) = f.decide(&get("/api").bearer(&token).at(NOW + 3600 + 61));
    assert_eq!(later, refusal(401, "invalid_token", "jwt_expired"), "time is checked on every hit");
    assert_eq!((events, f.crypto_calls()), (vec![CacheHit(0), Refused(0, e), Denied(e)], 1));
}

#[test]
fn a_cached_token_follows_the_state_of_its_keys() {
    let mut f = Filter::new(corp_only(json!({})));
    let token = good().sign();
    let set = KeySet::parse(corp_jwks().as_bytes()).unwrap().keys;
    let (first, _) = f.decide(&get("/api").bearer(&token));
    assert!(matches!(first, Decision::Allow(_)));
    // Stale keys still serve the cached token, and say so.
    f.set_keys("corp", Keys::Ready(set, UnknownKid::Refuse, true, fixture_id()));
    let (stale, events) = f.decide(&get("/api").bearer(&token));
    assert!(matches!(stale, Decision::Allow(_)));
    assert_eq!(events, vec![CacheHit(0), StaleServed(0), Verified(0), Allowed]);
    // Past max_stale the cache does not keep the token alive: 503 as for any other token.
    f.set_keys("corp", Keys::Unavailable);
    let (expired, events) = f.decide(&get("/api").bearer(&token));
    assert!(matches!(expired, Decision::Deny(Reply { status: 503, .. })), "{expired:?}");
    let e = AuthnError::KeysUnavailable;
    assert_eq!(events, vec![CacheHit(0), Refused(0, e), Denied(e)]);
    assert_eq!(f.crypto_calls(), 1);
}

#[test]
fn a_forged_token_is_verified_once() {
    let mut f = Filter::new(corp_only(json!({})));
    let forged = mint::tamper(&good().sign());
    let e = jwt(JwtError::BadSignature);
    let (first, events) = f.decide(&get("/api").bearer(&forged));
    assert_eq!(first, refusal(401, "invalid_token", "jwt_bad_signature"));
    assert_eq!(
        (events, f.crypto_calls()),
        (vec![CacheMiss(0), SignatureChecked(0), Refused(0, e), Denied(e)], 1)
    );
    let (again, events) = f.decide(&get("/api").bearer(&forged));
    assert_eq!(again, refusal(401, "invalid_token", "jwt_bad_signature"));
    assert_eq!((events, f.crypto_calls()), (vec![CacheHit(0), Refused(0, e), Denied(e)], 1));
}

#[test]
fn a_disabled_cache_verifies_every_time_and_counts_no_lookups() {
    let mut f = Filter::new(corp_only(json!({"jwt_cache_config": {"disabled": true}})));
    let token = good().sign();
    for calls in 1..=2 {
        let (decision, events) = f.decide(&get("/api").bearer(&token));
        assert_eq!(decision, allow(&[STATUS, "authorization"], &[]));
        assert_eq!((events, f.crypto_calls()), (vec![SignatureChecked(0), Verified(0), Allowed], calls));
    }
}

// ---- The shared record of verified tokens (two VMs of one Envoy) --------------------------------

#[test]
fn a_token_verified_by_one_vm_is_not_verified_again_by_another() {
    let doc = corp_only(json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]}));
    let mut a = Filter::new(doc.clone());
    let mut b = Filter::sharing(&a, doc);
    let token = good().sign();
    let expected = || allow(&[STATUS, "x-sub", "authorization"], &[("x-sub", "alice")]);
    let (first, events) = a.decide(&get("/api").bearer(&token));
    assert_eq!((first, events), (expected(), vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed]));
    let (other, events) = b.decide(&get("/api").bearer(&token));
    assert_eq!((other, events), (expected(), vec![CacheMiss(0), SharedHit(0), Verified(0), Allowed]));
    assert_eq!((a.crypto_calls(), b.crypto_calls()), (1, 0));
    // The shared hit went into b's own cache: no shared read the next time.
    let (again, events) = b.decide(&get("/api").bearer(&token));
    assert_eq!((again, events), (expected(), vec![CacheHit(0), Verified(0), Allowed]));
}

#[test]
fn a_shared_hit_skips_only_the_signature() {
    let doc = corp_only(json!({"required_scopes": ["read"]}));
    let mut a = Filter::new(doc.clone());
    let token = good().claim("scope", json!("read")).sign();
    assert!(matches!(a.decide(&get("/api").bearer(&token)).0, Decision::Allow(_)));
    // Too late for this token: its time is checked before the record is even asked.
    let mut b = Filter::sharing(&a, doc.clone());
    let (late, events) = b.decide(&get("/api").bearer(&token).at(NOW + 3600 + 61));
    let e = jwt(JwtError::Expired);
    assert_eq!(
        (late, events),
        (refusal(401, "invalid_token", "jwt_expired"), vec![CacheMiss(0), Refused(0, e), Denied(e)])
    );
    // Another VM whose rule wants another scope: the claims are checked after the shared hit.
    let stricter = corp_only(json!({"required_scopes": ["write"]}));
    let mut c = Filter::sharing(&a, stricter);
    // (Its config differs, so its local keys are another key set: give it a's.)
    c.keys = std::mem::take(&mut b.keys);
    let (refused, events) = c.decide(&get("/api").bearer(&token));
    let e = jwt(JwtError::InsufficientScope);
    assert_eq!(refused, refusal(403, "insufficient_scope", "jwt_insufficient_scope"));
    assert_eq!(events, vec![CacheMiss(0), SharedHit(0), Refused(0, e), Denied(e)]);
    assert_eq!((b.crypto_calls(), c.crypto_calls()), (0, 0));
}

#[test]
fn a_forged_signature_is_refused_while_the_genuine_token_is_recorded() {
    let doc = corp_only(json!({}));
    let mut a = Filter::new(doc.clone());
    let mut b = Filter::sharing(&a, doc);
    let genuine = good().sign();
    assert!(matches!(a.decide(&get("/api").bearer(&genuine)).0, Decision::Allow(_)));
    // The same header and payload with another signature is another token.
    let forged = mint::tamper(&genuine);
    let (decision, events) = b.decide(&get("/api").bearer(&forged));
    let e = jwt(JwtError::BadSignature);
    assert_eq!(decision, refusal(401, "invalid_token", "jwt_bad_signature"));
    assert_eq!(
        (events, b.crypto_calls()),
        (vec![CacheMiss(0), SignatureChecked(0), Refused(0, e), Denied(e)], 1)
    );
    let (genuine_on_b, events) = b.decide(&get("/api").bearer(&genuine));
    assert!(matches!(genuine_on_b, Decision::Allow(_)));
    assert_eq!(events, vec![CacheMiss(0), SharedHit(0), Verified(0), Allowed]);
}

#[test]
fn a_token_recorded_under_older_keys_is_verified_with_the_new_ones() {
    let mut a = Filter::new(corp_only(json!({})));
    a.unknown_kid("corp", UnknownKid::Refuse);
    let token = good().sign();
    assert!(matches!(a.decide(&get("/api").bearer(&token)).0, Decision::Allow(_)));
    // b has adopted the next key set, which no longer has rsa-a: the record does not vouch for
    // the token, b's keys refuse it.
    let mut b = Filter::sharing(&a, corp_only(json!({})));
    let without_rsa = mint::jwks(&[(TestKey::P256A, "ec-a")]);
    let next_id = KeySetId::remote("corp", "idp/jwks.json", CryptoMode::Auto, without_rsa.as_bytes());
    let next = KeySet::parse(without_rsa.as_bytes()).unwrap().keys;
    b.set_keys("corp", Keys::Ready(next, UnknownKid::Refuse, false, next_id));
    let (decision, events) = b.decide(&get("/api").bearer(&token));
    let e = jwt(JwtError::UnknownKid);
    assert_eq!(decision, refusal(401, "invalid_token", "jwt_unknown_kid"));
    assert_eq!(events, vec![CacheMiss(0), Refused(0, e), Denied(e)]);
    // Even the same keys under another identity (a re-published set) verify afresh.
    let mut c = Filter::sharing(&a, corp_only(json!({})));
    let same = KeySet::parse(corp_jwks().as_bytes()).unwrap().keys;
    c.set_keys("corp", Keys::Ready(same, UnknownKid::Refuse, false, next_id));
    let (decision, events) = c.decide(&get("/api").bearer(&token));
    assert!(matches!(decision, Decision::Allow(_)));
    assert_eq!(
        (events, c.crypto_calls()),
        (vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed], 1)
    );
}

#[test]
fn a_zero_shared_cache_size_shares_nothing() {
    let doc = corp_only(json!({"jwt_cache_config": {"shared_cache_size": 0}}));
    let mut a = Filter::new(doc.clone());
    let mut b = Filter::sharing(&a, doc);
    let token = good().sign();
    for f in [&mut a, &mut b] {
        let (decision, events) = f.decide(&get("/api").bearer(&token));
        assert!(matches!(decision, Decision::Allow(_)));
        assert_eq!(
            (events, f.crypto_calls()),
            (vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed], 1)
        );
    }
    assert!(a.store.names().is_empty());
}

// ---- Requirements through the decision ---------------------------------------------------------

fn two_providers(requires: Value) -> Value {
    let sub = |h: &str| json!({"claim_to_headers": [{"header_name": h, "claim_name": "sub"}]});
    json!({
        "providers": {"corp": corp(sub("x-corp-sub")), "partner": partner(sub("x-partner-sub"))},
        "rules": [{"match": {"prefix": "/"}, "requires": requires}]
    })
}

#[test]
fn requires_any_with_two_providers_sharing_the_authorization_header() {
    let doc = two_providers(
        json!({"requires_any": {"requirements": [{"provider_name": "corp"}, {"provider_name": "partner"}]}}),
    );
    let with_auth = [STATUS, "x-corp-sub", "x-partner-sub", "authorization"];
    let e = |e: JwtError| jwt(e);
    let expired_partner = partner_token().claim("exp", json!(NOW - 600)).sign();
    let cases: Vec<(&str, Req, Decision, Vec<Event>)> = vec![
        (
            "corp's token",
            get("/api").bearer(&good().sign()),
            allow(&with_auth, &[("x-corp-sub", "alice")]),
            vec![CacheMiss(0), SignatureChecked(0), Verified(0), Allowed],
        ),
        (
            "partner's token: corp sees another issuer, partner verifies and alone forwards",
            get("/api").bearer(&partner_token().sign()),
            allow(&with_auth, &[("x-partner-sub", "bob")]),
            vec![CacheMiss(0), CacheMiss(1), SignatureChecked(1), Verified(1), Allowed],
        ),
        (
            "partner's expired token: its error wins over another issuer",
            get("/api").bearer(&expired_partner),
            refusal(401, "invalid_token", "jwt_expired"),
            vec![CacheMiss(0), CacheMiss(1), Refused(1, e(JwtError::Expired)), Denied(e(JwtError::Expired))],
        ),
        (
            "nobody's issuer",
            get("/api").bearer(&good().iss("https://elsewhere.example").sign()),
            refusal(401, "invalid_token", "jwt_issuer_not_allowed"),
            vec![CacheMiss(0), CacheMiss(1), Denied(e(JwtError::IssuerNotAllowed))],
        ),
        ("missing", get("/api"), missing_on("/api"), vec![Denied(AuthnError::Missing)]),
    ];
    for (name, req, expected, expected_events) in cases {
        let mut f = Filter::new(doc.clone());
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
}

#[test]
fn allow_missing_and_allow_missing_or_failed() {
    let outputs = [STATUS, "x-corp-sub", "x-partner-sub"];
    let with_auth = [STATUS, "x-corp-sub", "x-partner-sub", "authorization"];
    let expired = expired_token();
    let forged = mint::tamper(&partner_token().sign());
    let e = |e: JwtError| jwt(e);
    let cases: Vec<(&str, Value, Req, Decision, Vec<Event>)> = vec![
        (
            "allow_missing, none",
            json!({"allow_missing": {}}),
            get("/api"),
            allow(&outputs, &[]),
            vec![Allowed],
        ),
        (
            "allow_missing, valid: claims forwarded",
            json!({"allow_missing": {}}),
            get("/api").bearer(&partner_token().sign()),
            allow(&with_auth, &[("x-partner-sub", "bob")]),
            vec![CacheMiss(0), CacheMiss(1), SignatureChecked(1), Verified(1), Allowed],
        ),
        (
            "allow_missing, expired: refused",
            json!({"allow_missing": {}}),
            get("/api").bearer(&expired),
            refusal(401, "invalid_token", "jwt_expired"),
            vec![CacheMiss(0), Refused(0, e(JwtError::Expired)), Denied(e(JwtError::Expired))],
        ),
        (
            "allow_missing_or_failed, none",
            json!({"allow_missing_or_failed": {}}),
            get("/api"),
            allow(&outputs, &[]),
            vec![Allowed],
        ),
        (
            "allow_missing_or_failed, forged: through, token kept, no claims",
            json!({"allow_missing_or_failed": {}}),
            get("/api").bearer(&forged),
            allow(&outputs, &[]),
            vec![
                CacheMiss(0),
                CacheMiss(1),
                SignatureChecked(1),
                Refused(1, e(JwtError::BadSignature)),
                Allowed,
            ],
        ),
        (
            "allow_missing_or_failed, valid: claims forwarded",
            json!({"allow_missing_or_failed": {}}),
            get("/api").bearer(&good().sign()),
            allow(&with_auth, &[("x-corp-sub", "alice")]),
            vec![CacheMiss(0), SignatureChecked(0), Verified(0), CacheMiss(1), Allowed],
        ),
        (
            "requires_any [corp, allow_missing], none",
            json!({"requires_any": {"requirements": [{"provider_name": "corp"}, {"allow_missing": {}}]}}),
            get("/api"),
            allow(&outputs, &[]),
            vec![Allowed],
        ),
        (
            "requires_any [corp, allow_missing], expired: refused",
            json!({"requires_any": {"requirements": [{"provider_name": "corp"}, {"allow_missing": {}}]}}),
            get("/api").bearer(&expired),
            refusal(401, "invalid_token", "jwt_expired"),
            vec![CacheMiss(0), Refused(0, e(JwtError::Expired)), Denied(e(JwtError::Expired))],
        ),
        (
            "requires_all [corp, partner], corp's token: partner finds another issuer",
            json!({"requires_all": {"requirements": [{"provider_name": "corp"}, {"provider_name": "partner"}]}}),
            get("/api").bearer(&good().sign()),
            refusal(401, "invalid_token", "jwt_issuer_not_allowed"),
            vec![
                CacheMiss(0),
                SignatureChecked(0),
                Verified(0),
                CacheMiss(1),
                Denied(e(JwtError::IssuerNotAllowed)),
            ],
        ),
        (
            "provider_and_audiences: the route's audience replaces the provider's",
            json!({"provider_and_audiences": {"provider_name": "corp", "audiences": ["admin.example"]}}),
            get("/api").bearer(&good().sign()),
            refusal(403, "invalid_token", "jwt_audience_not_allowed"),
            vec![
                CacheMiss(0),
                Refused(0, e(JwtError::AudienceNotAllowed)),
                Denied(e(JwtError::AudienceNotAllowed)),
            ],
        ),
    ];
    for (name, requires, req, expected, expected_events) in cases {
        let mut f = Filter::new(two_providers(requires));
        let (decision, events) = f.decide(&req);
        assert_eq!(decision, expected, "{name}");
        assert_eq!(events, expected_events, "{name}");
    }
}

// ---- Identity in filter state ----------------------------------------------------------------

fn entries(list: &[(&str, &str)]) -> Entries {
    Entries(pairs(list))
}

#[test]
fn a_verified_identity_goes_to_filter_state_and_only_then() {
    let identity = json!({
        "payload_in_metadata": "jwt_payload",
        "header_in_metadata": "jwt_header",
        "failed_status_in_metadata": "jwt_failure",
        "claim_to_filter_state": [{"claim_name": "sub", "name": "jwt_sub"}]
    });
    let doc = json!({
        "providers": {"corp": corp(identity)},
        "rules": [
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}},
            {"match": {"prefix": "/lenient"}, "requires": {"allow_missing_or_failed": {}}}
        ]
    });
    let mut f = Filter::new(doc);
    let token = good().sign();
    let segment = |i: usize| {
        String::from_utf8(jwt_authn_wasm::token::b64url_decode(token.split('.').nth(i).unwrap()).unwrap())
            .unwrap()
    };
    let Decision::Allow(m) = f.decide(&get("/api").bearer(&token)).0 else { panic!("not allowed") };
    let expected = [("jwt_payload", segment(1)), ("jwt_header", segment(0)), ("jwt_sub", "alice".into())];
    let expected = Entries(expected.iter().map(|(n, v)| (n.to_string(), v.clone())).collect());
    assert_eq!(m.filter_state, expected);
    // A refused token: only its failure, in the refusal and in a request allowed anyway.
    let expired = expired_token();
    let failure = entries(&[("jwt_failure", r#"{"code":401,"message":"jwt_expired"}"#)]);
    let Decision::Deny(r) = f.decide(&get("/api").bearer(&expired)).0 else { panic!("not refused") };
    assert_eq!(r.filter_state, failure);
    let Decision::Allow(m) = f.decide(&get("/lenient").bearer(&expired)).0 else { panic!("not allowed") };
    assert_eq!(m.filter_state, failure);
    // No token: nothing at all, allowed or not.
    let Decision::Deny(r) = f.decide(&get("/api")).0 else { panic!("not refused") };
    assert!(r.filter_state.is_empty());
    let Decision::Allow(m) = f.decide(&get("/lenient")).0 else { panic!("not allowed") };
    assert!(m.filter_state.is_empty());
}

#[test]
fn a_token_that_verified_but_failed_the_requirement_writes_no_identity() {
    let identity = json!({"claim_to_filter_state": [{"claim_name": "sub", "name": "jwt_sub"}]});
    let both =
        json!({"requires_all": {"requirements": [{"provider_name": "corp"}, {"provider_name": "partner"}]}});
    let doc = json!({
        "providers": {"corp": corp(identity.clone()), "partner": partner(identity)},
        "rules": [{"match": {"prefix": "/"}, "requires": both}]
    });
    let (decision, _) = Filter::new(doc).decide(&get("/").bearer(&good().sign()));
    let Decision::Deny(r) = decision else { panic!("not refused: {decision:?}") };
    assert!(r.filter_state.is_empty(), "corp's token verified, but the request did not pass");
}

// ---- Requirements chosen by the route --------------------------------------------------------

/// `corp` on `/api` by rule; `requirement_map` has `corp` and `partner`.
fn per_route(extra: Value) -> Value {
    merged(
        json!({
            "providers": {"corp": corp(json!({"claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]})), "partner": partner(json!({}))},
            "requirement_map": {"corp": {"provider_name": "corp"}, "partner": {"provider_name": "partner"}},
            "rules": [{"match": {"prefix": "/api"}, "requires": {"provider_name": "corp"}}]
        }),
        extra,
    )
}

#[test]
fn a_route_requirement_replaces_the_rules() {
    let mut f = Filter::new(per_route(json!({})));
    assert!(f.config.route_metadata, "on by default with a requirement_map");
    let partner = partner_token().sign();
    let by_name = |name: &str| RouteChoice::Requirement(name.into());
    assert_eq!(
        f.decide(&get("/api").bearer(&partner)).0,
        refusal(401, "invalid_token", "jwt_issuer_not_allowed")
    );
    let routed = get("/api").bearer(&partner).route(by_name("partner"));
    assert_eq!(f.decide(&routed).0, allow(&[STATUS, "x-sub", "authorization"], &[]));
    // Disabled: no token needed, even where a rule wants one; output headers still go.
    assert_eq!(f.decide(&get("/api").route(RouteChoice::Disabled)).0, allow(&[STATUS, "x-sub"], &[]));
    // Fails closed: an unknown name, metadata it cannot follow.
    let unknown = refusal(401, "invalid_token", "route_unknown_requirement");
    assert_eq!(f.decide(&get("/api").bearer(&partner).route(by_name("nope"))).0, unknown);
    let (invalid, events) = f.decide(&get("/api").route(RouteChoice::Invalid("x".into())));
    assert_eq!(invalid, refusal(401, "invalid_token", "route_metadata_invalid"));
    assert_eq!(events, [Denied(AuthnError::BadRouteMetadata)]);
}

#[test]
fn while_routes_choose_a_client_copy_of_an_output_header_is_refused() {
    // The route was matched with the forged header, and Envoy routes the request again once the
    // filter removes it: the route read is not the route taken.
    let forged = get("/api").header("x-sub", "admin").route(RouteChoice::Disabled);
    let (decision, events) = Filter::new(per_route(json!({}))).decide(&forged);
    assert_eq!(decision, refusal(400, "invalid_request", "output_header_from_client"));
    assert_eq!(events, [Denied(AuthnError::OutputHeaderSent)]);
    // Without route metadata, the copy is only removed, as always.
    let mut rules_only = Filter::new(per_route(json!({"route_metadata": false})));
    assert_eq!(rules_only.decide(&get("/open").header("x-sub", "admin")).0, allow(&[STATUS, "x-sub"], &[]));
}

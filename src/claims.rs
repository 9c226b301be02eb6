//! Claims: rules 3 (claim types and time) and 4 (issuer and audience) of the verification policy.
//!
//! `Claims::parse` refuses a payload that is not a strict JSON object, then type-checks the
//! registered claims in the order `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`. A registered claim that
//! is present with the wrong type (including `null`) is malformed, never treated as absent.
//!
//! `Claims::check` runs, stopping at the first failure:
//! 1. issuer (IssuerNotAllowed);
//! 2. time: `exp` (MissingExp when required, Expired), `nbf` (NotYetValid), then the lifetime
//!    (MissingIat, LifetimeTooLong) when `max_lifetime_seconds` is set;
//! 3. audience (MissingAudience, AudienceNotAllowed).
//!
//! Issuer first: a wrong issuer means the token is for another provider altogether (jwt_authn
//! picks the provider by `iss` before anything else), so the filter can tell "not mine" from
//! "mine and bad" when several providers read the same header; the token's times and audiences
//! mean nothing to this provider then. Time next: a few integer comparisons, and "expired" is the
//! refusal a client can act on (fetch a new token). Every path refuses; the order only decides
//! which reason is reported.

use crate::error::JwtError;
use crate::json::{self, StrictJsonError};
use crate::policy::Policy;
use serde_json::{Map, Number, Value};

/// A NumericDate (RFC 7519 §2): seconds since 1970-01-01T00:00:00Z, ignoring leap seconds.
///
/// JSON allows fractions and exponents (`1.7e9`, `1700000000.5`), so the value is kept as the whole
/// second at or before it plus whether a fraction was cut off. Each check then rounds the way that
/// is never more lenient than the exact value: `exp` down (the token expires up to a second early),
/// `nbf` up, and a lifetime as `ceil(exp) - floor(iat)` (up to two seconds longer than exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericDate {
    secs: i64,
    fractional: bool,
}

/// 2^63 as an `f64` (exact): the first float beyond the `i64` range.
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;

impl NumericDate {
    /// A whole number of seconds.
    pub const fn from_secs(secs: i64) -> NumericDate {
        NumericDate { secs, fractional: false }
    }

    /// From a JSON number; `None` when it lies outside the `i64` range of seconds. Integers are
    /// taken exactly; other numbers go through `f64`, whose rounding can push a literal just inside
    /// the range onto ±2^63, which is then refused like anything beyond it.
    pub fn from_json(number: &Number) -> Option<NumericDate> {
        if let Some(secs) = number.as_i64() {
            return Some(NumericDate::from_secs(secs));
        }
        if number.is_u64() {
            return None; // an integer above i64::MAX
        }
        let value = number.as_f64()?;
        // Open on both sides; also false for infinities (and NaN, which JSON cannot express).
        if !(-I64_LIMIT < value && value < I64_LIMIT) {
            return None;
        }
        let floor = value.floor();
        // In range and integral, so the cast is exact.
        Some(NumericDate { secs: floor as i64, fractional: floor != value })
    }

    /// The whole second at or before this date.
    pub fn floor(self) -> i64 {
        self.secs
    }

    /// The whole second at or after this date (never overflows: a fraction only exists far below
    /// i64::MAX, where `f64` still has sub-second precision).
    pub fn ceil(self) -> i64 {
        self.secs.saturating_add(i64::from(self.fractional))
    }
}

/// A JWT claim set with the registered claims type-checked (RFC 7519 §4.1) and every claim kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// A string becomes a one-element vec. An empty array is accepted and, like an absent `aud`,
    /// means no audience: it names no recipient, so it can only ever fail an audience requirement.
    pub aud: Vec<String>,
    pub exp: Option<NumericDate>,
    pub nbf: Option<NumericDate>,
    pub iat: Option<NumericDate>,
    /// Every claim, registered ones included, for claim-to-header and required claims later.
    pub all: Map<String, Value>,
}

impl Claims {
    /// Parses a decoded payload (rule 3: strict JSON object, registered claim types).
    pub fn parse(payload: &[u8]) -> Result<Claims, JwtError> {
        let all = json::parse_object(payload, json::MAX_DEPTH).map_err(|e| match e {
            StrictJsonError::DuplicateMember => JwtError::PayloadDuplicateMember,
            StrictJsonError::Invalid | StrictJsonError::TooDeep => JwtError::PayloadParse,
        })?;
        Ok(Claims {
            iss: string_claim(&all, "iss", JwtError::BadIss)?,
            sub: string_claim(&all, "sub", JwtError::BadSub)?,
            aud: audience_claim(&all)?,
            exp: date_claim(&all, "exp", JwtError::BadExp)?,
            nbf: date_claim(&all, "nbf", JwtError::BadNbf)?,
            iat: date_claim(&all, "iat", JwtError::BadIat)?,
            all,
        })
    }

    /// Time, issuer, audience and lifetime against the provider policy; `now` is Unix seconds.
    /// The order of the checks is given in the module doc.
    pub fn check(&self, policy: &Policy, now: i64) -> Result<(), JwtError> {
        self.check_for(policy, &policy.audiences, now)
    }

    /// [`Claims::check`] with `audiences` in place of the policy's: a rule's
    /// `provider_and_audiences`, without a copy of the policy per request.
    pub fn check_for(&self, policy: &Policy, audiences: &[String], now: i64) -> Result<(), JwtError> {
        self.check_issuer(policy.issuer.as_deref())?;
        self.check_time(policy, now)?;
        if let Some(max) = policy.max_lifetime_seconds {
            self.check_lifetime(max)?;
        }
        self.check_audience(audiences)
    }

    /// A claim by name, or by dotted path into nested objects (`realm.roles`); a top-level claim
    /// whose name itself has dots (`https://example.com/roles`) is found first.
    pub fn get_path(&self, name: &str) -> Option<&Value> {
        if let Some(v) = self.all.get(name) {
            return Some(v);
        }
        let mut parts = name.split('.');
        let first = self.all.get(parts.next()?)?;
        parts.try_fold(first, |v, key| v.as_object()?.get(key))
    }

    /// The scopes the token grants: the space-delimited `scope` claim (RFC 8693 §4.2) and the
    /// `scp` claim (an array of strings, or space-delimited) that some issuers use instead.
    pub fn scopes(&self) -> Vec<&str> {
        fn words(v: &Value) -> Vec<&str> {
            match v {
                Value::String(s) => s.split(' ').filter(|w| !w.is_empty()).collect(),
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            }
        }
        ["scope", "scp"].iter().filter_map(|k| self.all.get(*k)).flat_map(words).collect()
    }

    /// Audience rule alone: Ok when `allowed` is empty,
    /// else some token audience must equal an allowed one byte for byte (no case folding, no URL
    /// normalisation).
    pub fn check_audience(&self, allowed: &[String]) -> Result<(), JwtError> {
        if allowed.is_empty() {
            Ok(())
        } else if self.aud.is_empty() {
            Err(JwtError::MissingAudience)
        } else if self.aud.iter().any(|aud| allowed.contains(aud)) {
            Ok(())
        } else {
            Err(JwtError::AudienceNotAllowed)
        }
    }

    /// RFC 7519 §4.1.4/§4.1.5 with the skew on the lenient side: expired when
    /// `now >= exp + skew`, not yet valid when `now + skew < nbf`. Saturating, so extreme dates
    /// and skews cannot overflow. A future `iat` is not an error.
    fn check_time(&self, policy: &Policy, now: i64) -> Result<(), JwtError> {
        let skew = i64::try_from(policy.clock_skew_seconds).unwrap_or(i64::MAX);
        match self.exp {
            Some(exp) if now >= exp.floor().saturating_add(skew) => return Err(JwtError::Expired),
            None if policy.require_expiration || policy.max_lifetime_seconds.is_some() => {
                return Err(JwtError::MissingExp);
            }
            _ => {}
        }
        if self.nbf.is_some_and(|nbf| now.saturating_add(skew) < nbf.ceil()) {
            return Err(JwtError::NotYetValid);
        }
        Ok(())
    }

    /// `exp - iat` must not exceed `max`; both claims are required.
    fn check_lifetime(&self, max: u64) -> Result<(), JwtError> {
        let exp = self.exp.ok_or(JwtError::MissingExp)?;
        let iat = self.iat.ok_or(JwtError::MissingIat)?;
        // i128 holds any difference of two i64s and any u64 exactly.
        let lifetime = i128::from(exp.ceil()) - i128::from(iat.floor());
        if lifetime > i128::from(max) { Err(JwtError::LifetimeTooLong) } else { Ok(()) }
    }

    /// When an issuer is configured, `iss` must be present and equal to it exactly.
    fn check_issuer(&self, issuer: Option<&str>) -> Result<(), JwtError> {
        match issuer {
            Some(wanted) if self.iss.as_deref() != Some(wanted) => Err(JwtError::IssuerNotAllowed),
            _ => Ok(()),
        }
    }
}

/// A registered claim that must be a string when present.
fn string_claim(all: &Map<String, Value>, name: &str, bad: JwtError) -> Result<Option<String>, JwtError> {
    match all.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad),
    }
}

/// `aud`: a string or an array of strings (RFC 7519 §4.1.3).
fn audience_claim(all: &Map<String, Value>) -> Result<Vec<String>, JwtError> {
    match all.get("aud") {
        None => Ok(Vec::new()),
        Some(Value::String(aud)) => Ok(vec![aud.clone()]),
        Some(Value::Array(items)) => {
            items.iter().map(|item| item.as_str().map(str::to_owned).ok_or(JwtError::BadAud)).collect()
        }
        Some(_) => Err(JwtError::BadAud),
    }
}

/// A registered claim that must be a NumericDate within the `i64` range when present.
fn date_claim(all: &Map<String, Value>, name: &str, bad: JwtError) -> Result<Option<NumericDate>, JwtError> {
    match all.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => NumericDate::from_json(n).map(Some).ok_or(bad),
        Some(_) => Err(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    /// The outcome of a check: `Ok(())` or the reason.
    type Outcome = Result<(), JwtError>;
    /// Expected `iss`, `sub` and `aud` after parsing.
    type Strings<'a> = (Option<&'a str>, Option<&'a str>, &'a [&'a str]);

    fn claims(json: &str) -> Claims {
        Claims::parse(json.as_bytes()).unwrap()
    }

    fn policy(skew: u64) -> Policy {
        Policy { clock_skew_seconds: skew, ..Policy::default() }
    }

    #[test]
    fn parses_registered_claims_and_keeps_all() {
        let c = claims(
            r#"{"iss":"https://issuer.example","sub":"alice","aud":["a","b"],"exp":2000000000,
                "nbf":1.5,"iat":1.7e9,"scope":"read write","nested":{"x":[1,2]}}"#,
        );
        assert_eq!(c.iss.as_deref(), Some("https://issuer.example"));
        assert_eq!(c.sub.as_deref(), Some("alice"));
        assert_eq!(c.aud, ["a", "b"]);
        assert_eq!(c.exp, Some(NumericDate::from_secs(2_000_000_000)));
        assert_eq!(c.nbf.map(|d| (d.floor(), d.ceil())), Some((1, 2)));
        assert_eq!(c.iat, Some(NumericDate::from_secs(1_700_000_000)));
        assert_eq!(c.all.len(), 8);
        assert_eq!(c.all["scope"], "read write");

        let empty = claims("{}");
        assert!(empty.iss.is_none() && empty.sub.is_none());
        assert!(empty.exp.is_none() && empty.nbf.is_none() && empty.iat.is_none());
        assert!(empty.aud.is_empty() && empty.all.is_empty());
    }

    #[test]
    fn payload_json_errors() {
        let deep = format!("{{\"x\":{}1{}}}", "[".repeat(20), "]".repeat(20));
        let cases: &[(&[u8], JwtError)] = &[
            (b"", JwtError::PayloadParse),
            (b"[]", JwtError::PayloadParse),
            (b"\"claims\"", JwtError::PayloadParse),
            (b"1", JwtError::PayloadParse),
            (b"{\"sub\":\"\xff\"}", JwtError::PayloadParse),
            (b"\xef\xbb\xbf{}", JwtError::PayloadParse),
            (b"{\"sub\":\"a\"", JwtError::PayloadParse),
            (b"{}{}", JwtError::PayloadParse),
            (deep.as_bytes(), JwtError::PayloadParse),
            // serde_json refuses a number literal that overflows f64 at parse time.
            (br#"{"exp":1e400}"#, JwtError::PayloadParse),
            (br#"{"sub":"a","sub":"b"}"#, JwtError::PayloadDuplicateMember),
            (br#"{"exp":1,"\u0065xp":2}"#, JwtError::PayloadDuplicateMember),
            (br#"{"x":{"y":1,"y":1}}"#, JwtError::PayloadDuplicateMember),
            (br#"{"x":[{"y":1,"y":1}]}"#, JwtError::PayloadDuplicateMember),
        ];
        for (payload, expected) in cases {
            assert_eq!(Claims::parse(payload), Err(*expected), "{:?}", String::from_utf8_lossy(payload));
        }
    }

    #[test]
    fn string_and_audience_claim_types() {
        let cases: &[(&str, Result<Strings<'_>, JwtError>)] = &[
            (r#"{"iss":"i","sub":"s","aud":"a"}"#, Ok((Some("i"), Some("s"), &["a"]))),
            (r#"{"iss":"","sub":""}"#, Ok((Some(""), Some(""), &[]))),
            (r#"{"aud":["a","b","a"]}"#, Ok((None, None, &["a", "b", "a"]))),
            (r#"{"aud":[]}"#, Ok((None, None, &[]))),
            (r#"{"iss":1}"#, Err(JwtError::BadIss)),
            (r#"{"iss":null}"#, Err(JwtError::BadIss)),
            (r#"{"iss":["i"]}"#, Err(JwtError::BadIss)),
            (r#"{"iss":{}}"#, Err(JwtError::BadIss)),
            (r#"{"sub":1}"#, Err(JwtError::BadSub)),
            (r#"{"sub":false}"#, Err(JwtError::BadSub)),
            (r#"{"aud":1}"#, Err(JwtError::BadAud)),
            (r#"{"aud":null}"#, Err(JwtError::BadAud)),
            (r#"{"aud":{"a":1}}"#, Err(JwtError::BadAud)),
            (r#"{"aud":["a",1]}"#, Err(JwtError::BadAud)),
            (r#"{"aud":["a",null]}"#, Err(JwtError::BadAud)),
            (r#"{"aud":[["a"]]}"#, Err(JwtError::BadAud)),
            // Type checks run in the order iss, sub, aud, exp, nbf, iat.
            (r#"{"iat":"x","nbf":"x","exp":"x","aud":1,"sub":1,"iss":1}"#, Err(JwtError::BadIss)),
            (r#"{"iat":"x","nbf":"x","exp":"x","aud":1,"sub":1}"#, Err(JwtError::BadSub)),
            (r#"{"iat":"x","nbf":"x","exp":"x","aud":1}"#, Err(JwtError::BadAud)),
            (r#"{"iat":"x","nbf":"x","exp":"x"}"#, Err(JwtError::BadExp)),
            (r#"{"iat":"x","nbf":"x"}"#, Err(JwtError::BadNbf)),
        ];
        for (json, expected) in cases {
            let got = Claims::parse(json.as_bytes());
            let got = got.as_ref().map_err(|e| *e).map(|c| {
                let aud: Vec<&str> = c.aud.iter().map(String::as_str).collect();
                (c.iss.as_deref(), c.sub.as_deref(), aud)
            });
            assert_eq!(got, expected.map(|(iss, sub, aud)| (iss, sub, aud.to_vec())), "{json}");
        }
    }

    #[test]
    fn date_claim_values_and_types() {
        const MAX: i64 = i64::MAX;
        const MIN: i64 = i64::MIN;
        // (literal, Some((floor, ceil)) or None when malformed)
        let cases: &[(&str, Option<(i64, i64)>)] = &[
            ("0", Some((0, 0))),
            ("-0", Some((0, 0))),
            ("-0.0", Some((0, 0))),
            ("1700000000", Some((1_700_000_000, 1_700_000_000))),
            ("1.7e9", Some((1_700_000_000, 1_700_000_000))),
            ("17E8", Some((1_700_000_000, 1_700_000_000))),
            ("1700000000.0", Some((1_700_000_000, 1_700_000_000))),
            ("1700000000.25", Some((1_700_000_000, 1_700_000_001))),
            ("1.5", Some((1, 2))),
            ("0.001", Some((0, 1))),
            ("-1", Some((-1, -1))),
            ("-1.5", Some((-2, -1))),
            ("9223372036854775807", Some((MAX, MAX))),
            ("-9223372036854775808", Some((MIN, MIN))),
            ("9.2e18", Some((9_200_000_000_000_000_000, 9_200_000_000_000_000_000))),
            // Beyond the i64 range, directly or after f64 rounding onto ±2^63.
            ("9223372036854775808", None),
            ("18446744073709551615", None),
            ("18446744073709551616", None),
            ("-9223372036854775809", None),
            ("9223372036854775807.0", None),
            ("-9223372036854775808.0", None),
            ("1e19", None),
            ("-1e19", None),
            ("1e300", None),
            ("-1e300", None),
            // Not numbers.
            ("\"1700000000\"", None),
            ("null", None),
            ("true", None),
            ("[1]", None),
            ("{}", None),
        ];
        let claim_errors = [("exp", JwtError::BadExp), ("nbf", JwtError::BadNbf), ("iat", JwtError::BadIat)];
        for (literal, expected) in cases {
            for (name, bad) in claim_errors {
                let date = Claims::parse(format!("{{\"{name}\":{literal}}}").as_bytes()).map(|c| {
                    let date = match name {
                        "exp" => c.exp,
                        "nbf" => c.nbf,
                        _ => c.iat,
                    };
                    date.map(|d| (d.floor(), d.ceil()))
                });
                assert_eq!(date, expected.map(Some).ok_or(bad), "{name}: {literal}");
            }
        }
    }

    #[test]
    fn exp_and_nbf_at_the_skew_boundaries() {
        let exp = r#"{"exp":1000}"#;
        let nbf = r#"{"nbf":1000}"#;
        // (claims, skew, now, expected)
        let cases: &[(&str, u64, i64, Outcome)] = &[
            // Expired when now >= exp + skew (stricter than jwt_verify_lib's now > exp).
            (exp, 60, 1059, Ok(())),
            (exp, 60, 1060, Err(JwtError::Expired)),
            (exp, 0, 999, Ok(())),
            (exp, 0, 1000, Err(JwtError::Expired)),
            (exp, 0, i64::MIN, Ok(())),
            // A fractional exp is floored: expires up to a second early, never late.
            (r#"{"exp":1000.9}"#, 0, 999, Ok(())),
            (r#"{"exp":1000.9}"#, 0, 1000, Err(JwtError::Expired)),
            (r#"{"exp":0}"#, 60, NOW, Err(JwtError::Expired)),
            (r#"{"exp":-1}"#, 0, 0, Err(JwtError::Expired)),
            (r#"{"exp":-9223372036854775808}"#, 60, NOW, Err(JwtError::Expired)),
            // A skew beyond i64 counts as i64::MAX: MIN + MAX = -1, exact, no overflow.
            (r#"{"exp":-9223372036854775808}"#, u64::MAX, -2, Ok(())),
            (r#"{"exp":-9223372036854775808}"#, u64::MAX, -1, Err(JwtError::Expired)),
            (r#"{"exp":9223372036854775807}"#, 60, NOW, Ok(())),
            (r#"{"exp":9223372036854775807}"#, u64::MAX, i64::MAX - 1, Ok(())),
            (r#"{"exp":9223372036854775807}"#, 0, i64::MAX, Err(JwtError::Expired)),
            (r#"{"exp":1e18}"#, 60, NOW, Ok(())),
            // Not yet valid when now + skew < nbf.
            (nbf, 60, 940, Ok(())),
            (nbf, 60, 939, Err(JwtError::NotYetValid)),
            (nbf, 0, 1000, Ok(())),
            (nbf, 0, 999, Err(JwtError::NotYetValid)),
            (nbf, 0, i64::MAX, Ok(())),
            // A fractional nbf is rounded up: valid from the next whole second.
            (r#"{"nbf":1000.1}"#, 0, 1000, Err(JwtError::NotYetValid)),
            (r#"{"nbf":1000.1}"#, 0, 1001, Ok(())),
            (r#"{"nbf":9223372036854775807}"#, 60, NOW, Err(JwtError::NotYetValid)),
            (r#"{"nbf":9223372036854775807}"#, 60, i64::MAX, Ok(())),
            (r#"{"nbf":9223372036854775807}"#, u64::MAX, 1, Ok(())),
            (r#"{"nbf":-9223372036854775808}"#, 0, i64::MIN, Ok(())),
            // Both set: a window.
            (r#"{"nbf":1000,"exp":2000}"#, 0, 1500, Ok(())),
            (r#"{"nbf":1000,"exp":2000}"#, 0, 999, Err(JwtError::NotYetValid)),
            (r#"{"nbf":1000,"exp":2000}"#, 0, 2000, Err(JwtError::Expired)),
            // An iat in the future is not an error; no time claims at all is fine by default.
            (r#"{"iat":9223372036854775807}"#, 0, NOW, Ok(())),
            (r#"{"iat":2000,"exp":3000}"#, 0, 1000, Ok(())),
            ("{}", 60, NOW, Ok(())),
        ];
        for (json, skew, now, expected) in cases {
            let got = claims(json).check(&policy(*skew), *now);
            assert_eq!(got, *expected, "{json} skew={skew} now={now}");
        }
    }

    #[test]
    fn required_exp_and_max_lifetime() {
        let strict = |require_expiration, max_lifetime_seconds| Policy {
            require_expiration,
            max_lifetime_seconds,
            ..Policy::default()
        };
        let hour = Some(3600);
        const EXTREMES: &str = r#"{"iat":-9223372036854775808,"exp":9223372036854775807}"#;
        // (claims, require_expiration, max_lifetime, expected) at NOW = 1_700_000_000
        let cases: &[(&str, bool, Option<u64>, Outcome)] = &[
            ("{}", false, None, Ok(())),
            ("{}", true, None, Err(JwtError::MissingExp)),
            (r#"{"iat":1700000000}"#, true, None, Err(JwtError::MissingExp)),
            (r#"{"exp":1700000100}"#, true, None, Ok(())),
            // max_lifetime requires both exp and iat.
            ("{}", false, hour, Err(JwtError::MissingExp)),
            (r#"{"iat":1700000000}"#, false, hour, Err(JwtError::MissingExp)),
            (r#"{"exp":1700000100}"#, false, hour, Err(JwtError::MissingIat)),
            (r#"{"iat":1699999000,"exp":1700002600}"#, false, hour, Ok(())),
            (r#"{"iat":1699999000,"exp":1700002601}"#, false, hour, Err(JwtError::LifetimeTooLong)),
            (r#"{"iat":1699998999,"exp":1700002600}"#, true, hour, Err(JwtError::LifetimeTooLong)),
            (r#"{"iat":1700000000,"exp":1700000000.5}"#, false, Some(0), Err(JwtError::LifetimeTooLong)),
            // Fractions count the longest possible lifetime: ceil(exp) - floor(iat).
            (r#"{"iat":1699999000.5,"exp":1700002600}"#, false, hour, Ok(())),
            (r#"{"iat":1699999000,"exp":1700002600.5}"#, false, hour, Err(JwtError::LifetimeTooLong)),
            (r#"{"iat":1699999000.5,"exp":1700002600.5}"#, false, hour, Err(JwtError::LifetimeTooLong)),
            // iat after exp (or in the future) is not a lifetime violation.
            (r#"{"iat":1800000000,"exp":1700000100}"#, false, hour, Ok(())),
            // Extremes do not overflow.
            (EXTREMES, false, hour, Err(JwtError::LifetimeTooLong)),
            (EXTREMES, false, Some(u64::MAX), Ok(())),
            // An expired token is reported as expired, not by its missing iat.
            (r#"{"exp":1000}"#, false, hour, Err(JwtError::Expired)),
            (r#"{"exp":1000,"iat":0}"#, true, Some(1), Err(JwtError::Expired)),
            (r#"{"nbf":1800000000}"#, true, None, Err(JwtError::MissingExp)),
        ];
        for (json, require, max, expected) in cases {
            let got = claims(json).check(&strict(*require, *max), NOW);
            assert_eq!(got, *expected, "{json} {require} {max:?}");
        }
    }

    #[test]
    fn issuer_is_compared_exactly() {
        let wanted = Policy { issuer: Some("https://issuer.example".into()), ..Policy::default() };
        let cases: &[(&str, Outcome)] = &[
            (r#"{"iss":"https://issuer.example"}"#, Ok(())),
            ("{}", Err(JwtError::IssuerNotAllowed)),
            (r#"{"iss":""}"#, Err(JwtError::IssuerNotAllowed)),
            (r#"{"iss":"https://issuer.example/"}"#, Err(JwtError::IssuerNotAllowed)),
            (r#"{"iss":"HTTPS://issuer.example"}"#, Err(JwtError::IssuerNotAllowed)),
            (r#"{"iss":"http://issuer.example"}"#, Err(JwtError::IssuerNotAllowed)),
            (r#"{"iss":"https://issuer.example "}"#, Err(JwtError::IssuerNotAllowed)),
            (r#"{"iss":"https://evil.example"}"#, Err(JwtError::IssuerNotAllowed)),
        ];
        for (json, expected) in cases {
            assert_eq!(claims(json).check(&wanted, NOW), *expected, "{json}");
            // Without a configured issuer any (or no) iss is fine.
            assert_eq!(claims(json).check(&Policy::default(), NOW), Ok(()), "{json}");
        }
    }

    #[test]
    fn audience_is_compared_byte_for_byte() {
        let allowed = vec!["api".to_owned(), "https://svc.example/".to_owned()];
        let cases: &[(&str, Outcome)] = &[
            (r#"{"aud":"api"}"#, Ok(())),
            (r#"{"aud":["other","api"]}"#, Ok(())),
            (r#"{"aud":["https://svc.example/"]}"#, Ok(())),
            ("{}", Err(JwtError::MissingAudience)),
            (r#"{"aud":[]}"#, Err(JwtError::MissingAudience)),
            (r#"{"aud":"API"}"#, Err(JwtError::AudienceNotAllowed)),
            (r#"{"aud":"api/"}"#, Err(JwtError::AudienceNotAllowed)),
            (r#"{"aud":" api"}"#, Err(JwtError::AudienceNotAllowed)),
            (r#"{"aud":"https://svc.example"}"#, Err(JwtError::AudienceNotAllowed)),
            (r#"{"aud":"http://svc.example/"}"#, Err(JwtError::AudienceNotAllowed)),
            (r#"{"aud":"svc.example"}"#, Err(JwtError::AudienceNotAllowed)),
            (r#"{"aud":["other",""]}"#, Err(JwtError::AudienceNotAllowed)),
        ];
        let with_audiences = Policy { audiences: allowed.clone(), ..Policy::default() };
        for (json, expected) in cases {
            let c = claims(json);
            assert_eq!(c.check_audience(&allowed), *expected, "{json}");
            assert_eq!(c.check(&with_audiences, NOW), *expected, "{json}");
            // No allowed audiences: no requirement at all.
            assert_eq!(c.check_audience(&[]), Ok(()), "{json}");
        }
    }

    #[test]
    fn claims_by_path_and_scopes() {
        let c = claims(
            r#"{"realm":{"roles":["a","b"],"deep":{"x":1}},"https://example.com/roles":["r"],"a.b":2,"a":{"b":3},
                "scope":"read  write","scp":["admin"]}"#,
        );
        assert_eq!(c.get_path("realm.roles"), Some(&serde_json::json!(["a", "b"])));
        assert_eq!(c.get_path("realm.deep.x"), Some(&serde_json::json!(1)));
        assert_eq!(c.get_path("https://example.com/roles"), Some(&serde_json::json!(["r"])));
        assert_eq!(c.get_path("a.b"), Some(&serde_json::json!(2)), "the top-level name wins");
        for absent in ["realm.none", "realm.roles.0", "nope", "", "realm.", ".realm"] {
            assert_eq!(c.get_path(absent), None, "{absent}");
        }
        assert_eq!(c.scopes(), ["read", "write", "admin"]);
        assert_eq!(claims(r#"{"scp":"x y","scope":7}"#).scopes(), ["x", "y"]);
    }

    #[test]
    fn check_order_is_issuer_then_time_then_audience() {
        let policy = Policy {
            issuer: Some("good".into()),
            audiences: vec!["api".into()],
            max_lifetime_seconds: Some(60),
            ..policy(0)
        };
        let cases: &[(&str, Outcome)] = &[
            (r#"{"iss":"good","aud":"api","iat":17e8,"exp":1700000030}"#, Ok(())),
            (r#"{"iss":"bad","aud":"bad","iat":0,"exp":1000,"nbf":18e8}"#, Err(JwtError::IssuerNotAllowed)),
            (r#"{"aud":"bad","iat":0,"exp":1000}"#, Err(JwtError::IssuerNotAllowed)),
            (r#"{"iss":"good","aud":"bad","iat":0,"exp":1000,"nbf":18e8}"#, Err(JwtError::Expired)),
            (r#"{"iss":"good","aud":"bad","iat":0,"exp":18e8,"nbf":18e8}"#, Err(JwtError::NotYetValid)),
            (r#"{"iss":"good","aud":"bad","exp":18e8}"#, Err(JwtError::MissingIat)),
            (r#"{"iss":"good","aud":"bad","iat":0,"exp":18e8}"#, Err(JwtError::LifetimeTooLong)),
            (r#"{"iss":"good","aud":"bad","iat":17e8,"exp":1700000030}"#, Err(JwtError::AudienceNotAllowed)),
            (r#"{"iss":"good","iat":17e8,"exp":1700000030}"#, Err(JwtError::MissingAudience)),
        ];
        for (json, expected) in cases {
            assert_eq!(claims(json).check(&policy, NOW), *expected, "{json}");
        }
    }
}

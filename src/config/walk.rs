//! Reading the configuration document: strict JSON in, then one [`Obj`] per proto message that
//! knows its dotted path (for error messages) and which members were read, so that whatever is left
//! is either classified by a message's decision table ([`Unused`]) or refused as an unknown field.
//! Also the typed readers every message shares: strings, durations, ranges, header names,
//! algorithm allow-lists.

use super::{Result, error};
use crate::alg::{Algorithm, AlgorithmSet};
use crate::json::{self, StrictJsonError};
use serde_json::{Map, Value};
use std::time::Duration;

// Nesting allowed in the configuration document: requirement trees add three levels per step.
const CONFIG_MAX_DEPTH: usize = 64;
// google.protobuf.Duration's own range.
const MAX_DURATION_SECONDS: u64 = 315_576_000_000;

// ---- The decision table, as data -------------------------------------------------------------

/// What a jwt_authn field this filter does not implement does when it is set.
pub(super) enum Decision {
    Warn(&'static str),
    Reject(&'static str),
}
use Decision::{Reject, Warn};

/// A message's decision table: its fields this filter does not read, and what setting them does.
pub(super) type Unused = [(&'static str, Decision)];

// ---- Reading JSON objects with paths ----------------------------------------------------------

pub(super) fn parse_document(json: &[u8]) -> Result<Map<String, Value>> {
    json::parse_object(json, CONFIG_MAX_DEPTH).map_err(|e| match e {
        StrictJsonError::DuplicateMember => {
            error("", "an object names the same member twice (duplicates are refused)")
        }
        StrictJsonError::TooDeep => error("", format!("nested deeper than {CONFIG_MAX_DEPTH} levels")),
        StrictJsonError::Invalid => match serde_json::from_slice::<serde::de::IgnoredAny>(json) {
            Err(e) => error("", format!("not valid JSON: {e}")),
            Ok(_) => error("", "expected a JSON object"),
        },
    })
}

/// A JSON object being read: knows its path for errors and which members were read, so that
/// leftovers are classified by the decision table or refused as unknown.
pub(super) struct Obj<'a> {
    map: &'a Map<String, Value>,
    pub(super) path: String,
    read: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    pub(super) fn new(value: &'a Value, path: String) -> Result<Obj<'a>> {
        match value {
            Value::Object(map) => Ok(Obj { map, path, read: Vec::new() }),
            _ => Err(error(path, "expected an object")),
        }
    }

    pub(super) fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The member, unless absent or null (proto JSON: null means unset).
    pub(super) fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn obj(&mut self, key: &'static str) -> Result<Option<Obj<'a>>> {
        let path = self.at(key);
        self.get(key).map(|v| Obj::new(v, path)).transpose()
    }

    pub(super) fn str(&mut self, key: &'static str) -> Result<Option<&'a str>> {
        let path = self.at(key);
        self.get(key).map(|v| as_str(v, &path)).transpose()
    }

    /// A string where proto3's empty string means unset.
    pub(super) fn non_empty_str(&mut self, key: &'static str) -> Result<Option<&'a str>> {
        Ok(self.str(key)?.filter(|s| !s.is_empty()))
    }

    pub(super) fn bool(&mut self, key: &'static str) -> Result<bool> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(error(self.at(key), "expected true or false")),
        }
    }

    pub(super) fn u32(&mut self, key: &'static str) -> Result<Option<u32>> {
        let path = self.at(key);
        self.get(key)
            .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
            .map(|n| n.ok_or_else(|| error(path, "expected an integer from 0 to 4294967295")))
            .transpose()
    }

    pub(super) fn duration(&mut self, key: &'static str) -> Result<Option<Duration>> {
        let path = self.at(key);
        self.get(key)
            .map(|v| v.as_str().and_then(parse_duration))
            .map(|d| d.ok_or_else(|| error(path, "expected a duration like \"5s\"")))
            .transpose()
    }

    /// A list (absent: empty) and the path of each item.
    pub(super) fn list(&mut self, key: &'static str) -> Result<Vec<(String, &'a Value)>> {
        let path = self.at(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                Ok(items.iter().enumerate().map(|(i, v)| (format!("{path}[{i}]"), v)).collect())
            }
            Some(_) => Err(error(path, "expected a list")),
        }
    }

    pub(super) fn str_list(&mut self, key: &'static str) -> Result<Vec<String>> {
        self.list(key)?
            .into_iter()
            .map(|(path, v)| non_empty(as_str(v, &path)?, &path).map(str::to_owned))
            .collect()
    }

    /// [`Obj::finish`] for messages whose every field this filter reads.
    pub(super) fn finish_all_known(self) -> Result<()> {
        self.finish(&[], &mut Vec::new())
    }

    /// Refuses members not read, unless one of the message's decision tables accepts them.
    pub(super) fn finish(self, tables: &[&Unused], warnings: &mut Vec<String>) -> Result<()> {
        for (key, value) in self.map {
            if self.read.contains(&key.as_str()) {
                continue;
            }
            let path = self.at(key);
            match tables.iter().flat_map(|t| t.iter()).find(|(field, _)| field == key) {
                None => return Err(error(path, "unknown field (misspelt?)")),
                Some(_) if is_unset(value) => {}
                Some((_, Warn(why))) => warnings.push(format!("`{path}` is ignored: {why}")),
                Some((_, Reject(why))) => return Err(error(path, format!("not supported: {why}"))),
            }
        }
        Ok(())
    }
}

/// Members of a JSON map field sorted by name (the order does not depend on serde_json features).
pub(super) fn sorted_members<'a>(
    top: &mut Obj<'a>,
    key: &'static str,
) -> Result<Vec<(&'a String, &'a Value)>> {
    let mut members: Vec<_> = match top.obj(key)? {
        Some(map) => map.map.iter().collect(),
        None => Vec::new(),
    };
    members.sort_by(|a, b| a.0.cmp(b.0));
    Ok(members)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        // A present message has a meaning even when empty (`grpc: {}` narrows a rule to gRPC).
        Value::Object(_) => false,
    }
}

// ---- Typed values ----------------------------------------------------------------------------

pub(super) fn as_str<'a>(value: &'a Value, path: &str) -> Result<&'a str> {
    value.as_str().ok_or_else(|| error(path, "expected a string"))
}

pub(super) fn non_empty<'a>(s: &'a str, path: &str) -> Result<&'a str> {
    if s.is_empty() { Err(error(path, "must not be empty")) } else { Ok(s) }
}

/// google.protobuf.Duration in proto JSON: decimal seconds with up to 9 fraction digits and a
/// final `s`. No sign, no exponent, no other unit.
fn parse_duration(text: &str) -> Option<Duration> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) {
        return None;
    }
    let seconds: u64 = whole.parse().ok().filter(|s| *s <= MAX_DURATION_SECONDS)?;
    let nanos = match fraction {
        None => 0,
        Some(f) if digits(f) && f.len() <= 9 => {
            let scale = 10u32.pow(9 - u32::try_from(f.len()).ok()?);
            f.parse::<u32>().ok()? * scale
        }
        Some(_) => return None,
    };
    Some(Duration::new(seconds, nanos))
}

pub(super) fn in_range(
    d: Duration,
    path: &str,
    min: Duration,
    max: Duration,
    what: &str,
) -> Result<Duration> {
    if d < min || d >= max { Err(error(path, what)) } else { Ok(d) }
}

/// `algorithms` of a provider (the token's) or of its `dpop` block (the proof's).
pub(super) fn parse_algorithms(o: &mut Obj) -> Result<AlgorithmSet> {
    if o.get("algorithms").is_none() {
        return Ok(AlgorithmSet::all());
    }
    let items = o.list("algorithms")?;
    if items.is_empty() {
        return Err(error(o.at("algorithms"), "list at least one algorithm, or omit the field to allow all"));
    }
    items
        .into_iter()
        .map(|(path, v)| {
            let name = as_str(v, &path)?;
            Algorithm::from_name(name).ok_or_else(|| error(path, refused_algorithm(name)))
        })
        .collect()
}

fn refused_algorithm(name: &str) -> String {
    if name.eq_ignore_ascii_case("none") {
        "`none` is never accepted: unsigned tokens would pass".to_owned()
    } else if name.to_ascii_uppercase().starts_with("HS") {
        format!("`{name}` is never accepted: HMAC keys would have to be public in the JWKS")
    } else {
        let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!("unknown algorithm `{name}` (known: {})", known.join(", "))
    }
}

pub(crate) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An HTTP header name (RFC 9110 token, so no pseudo-header), lower-cased.
pub(super) fn header_name(s: &str, path: &str) -> Result<String> {
    if s.is_empty() || !s.bytes().all(is_tchar) {
        return Err(error(path, "expected an HTTP header name"));
    }
    Ok(s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, expected) in [
            ("600s", Duration::from_secs(600)),
            ("0s", Duration::ZERO),
            ("1.5s", Duration::from_millis(1500)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("1.000000000s", Duration::from_secs(1)),
            ("0.05s", Duration::from_millis(50)),
            ("315576000000s", Duration::from_secs(MAX_DURATION_SECONDS)),
        ] {
            assert_eq!(parse_duration(text), Some(expected), "{text}");
        }
        for text in [
            "10",
            "10m",
            "-1s",
            "s",
            "",
            "+1s",
            ".5s",
            "1.s",
            "1.0000000001s",
            " 1s",
            "1s ",
            "1e3s",
            "1,5s",
            "0x10s",
            "1.5.5s",
            "315576000001s",
            "99999999999999999999s",
            "1S",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }
}

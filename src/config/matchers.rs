//! Envoy's `type.matcher.v3` messages this filter reads: `StringMatcher` (provider `subjects`) and
//! `RegexMatcher` (its `safe_regex`, and the rules' path regex).

use super::walk::Decision::{Reject, Warn};
use super::walk::{Obj, Unused, non_empty};
use super::{Result, error};

/// `type.matcher.v3.StringMatcher`, as used by `subjects`.
#[derive(Debug, Clone)]
pub struct StringMatcher {
    pub pattern: StringPattern,
    /// ASCII case folding, as Envoy; never applies to `safe_regex`.
    pub ignore_case: bool,
}

#[derive(Debug, Clone)]
pub enum StringPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Full match, compiled anchored.
    Regex(regex_lite::Regex),
}

impl StringMatcher {
    /// Whether a token's `sub` is allowed. A token without `sub` never is: stricter than
    /// jwt_authn, which matches the empty string in that case.
    pub fn allows(&self, sub: Option<&str>) -> bool {
        let Some(sub) = sub else { return false };
        let fold = |s: &str| if self.ignore_case { s.to_ascii_lowercase() } else { s.to_owned() };
        match &self.pattern {
            StringPattern::Regex(re) => re.is_match(sub),
            // Patterns are stored lower-cased when ignore_case is set.
            StringPattern::Exact(p) => fold(sub) == *p,
            StringPattern::Prefix(p) => fold(sub).starts_with(p.as_str()),
            StringPattern::Suffix(p) => fold(sub).ends_with(p.as_str()),
            StringPattern::Contains(p) => fold(sub).contains(p.as_str()),
        }
    }
}

const GOOGLE_RE2_UNUSED: &Unused = &[("max_program_size", Warn("deprecated in Envoy"))];
const STRING_MATCHER_UNUSED: &Unused =
    &[("custom", Reject("string matcher extensions are not available in wasm"))];

pub(super) fn parse_string_matcher(mut o: Obj, warnings: &mut Vec<String>) -> Result<StringMatcher> {
    let ignore_case = o.bool("ignore_case")?;
    let fold = |s: &str| if ignore_case { s.to_ascii_lowercase() } else { s.to_owned() };
    let exact = o.str("exact")?.map(|s| StringPattern::Exact(fold(s)));
    let affix = |o: &mut Obj, key: &'static str, make: fn(String) -> StringPattern| {
        let path = o.at(key);
        o.str(key)?.map(|s| Ok(make(fold(non_empty(s, &path)?)))).transpose()
    };
    let prefix = affix(&mut o, "prefix", StringPattern::Prefix)?;
    let suffix = affix(&mut o, "suffix", StringPattern::Suffix)?;
    let contains = affix(&mut o, "contains", StringPattern::Contains)?;
    let regex = match o.obj("safe_regex")? {
        Some(r) => Some(StringPattern::Regex(parse_regex(r, warnings)?)),
        None => None,
    };
    let path = o.path.clone();
    o.finish(&[STRING_MATCHER_UNUSED], warnings)?;
    let mut set = [exact, prefix, suffix, contains, regex].into_iter().flatten();
    match (set.next(), set.next()) {
        (Some(pattern), None) => Ok(StringMatcher { pattern, ignore_case }),
        _ => Err(error(path, "set exactly one of exact, prefix, suffix, contains, safe_regex")),
    }
}

/// `type.matcher.v3.RegexMatcher`, compiled for a full match (RE2 `FullMatch`, as Envoy).
pub(super) fn parse_regex(mut o: Obj, warnings: &mut Vec<String>) -> Result<regex_lite::Regex> {
    if let Some(re2) = o.obj("google_re2")? {
        re2.finish(&[GOOGLE_RE2_UNUSED], warnings)?;
    }
    let path = o.at("regex");
    let pattern = non_empty(o.str("regex")?.unwrap_or(""), &path)?;
    o.finish_all_known()?;
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| error(path, format!("invalid regex: {e}")))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{P, RULE, assert_refused, parse, with};
    use serde_json::{Value, json};

    #[test]
    fn matcher_errors_name_the_field() {
        #[rustfmt::skip]
        assert_refused(&[
            (with(RULE, "match", json!({"safe_regex": {"google_re2": {}, "regex": "(unclosed"}})), "rules[0].match.safe_regex.regex", "invalid regex"),
            (with(P, "subjects", json!({"custom": {}})), "providers.p.subjects.custom", "not supported"),
            (with(P, "subjects", json!({"prefix": "a", "suffix": "b"})), "providers.p.subjects", "exactly one"),
            (with(P, "subjects", json!({"prefix": ""})), "providers.p.subjects.prefix", "empty"),
        ]);
    }

    #[test]
    fn subjects() {
        let matcher = |spec: Value| {
            parse(&with("/providers/p", "subjects", spec)).unwrap().providers[0].subjects.clone().unwrap()
        };
        let spiffe = matcher(json!({"prefix": "spiffe://example.com/"}));
        assert!(spiffe.allows(Some("spiffe://example.com/svc")));
        assert!(!spiffe.allows(Some("spiffe://evil.com/svc")) && !spiffe.allows(None));
        let exact = matcher(json!({"exact": "Alice", "ignore_case": true}));
        assert!(exact.allows(Some("alice")) && exact.allows(Some("ALICE")) && !exact.allows(Some("alice2")));
        assert!(matcher(json!({"suffix": "@corp"})).allows(Some("bob@corp")));
        assert!(matcher(json!({"contains": "ob@"})).allows(Some("bob@corp")));
        let regex = matcher(json!({"safe_regex": {"regex": "user-[0-9]+"}, "ignore_case": true}));
        assert!(
            regex.allows(Some("user-42"))
                && !regex.allows(Some("USER-42"))
                && !regex.allows(Some("user-42x"))
        );
        // The empty exact subject is allowed as a pattern, but an absent `sub` still never matches.
        let empty = matcher(json!({"exact": ""}));
        assert!(empty.allows(Some("")) && !empty.allows(None));
    }
}

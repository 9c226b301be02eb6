//! `RequirementRule`: which requests need which requirement, matched on the path by `RouteMatch`.
//! Every other `RouteMatch` condition is refused, since a rule without it would match more.

use super::matchers::parse_regex;
use super::requirements::{Requirement, RequirementMap, parse_requirement};
use super::walk::Decision::Reject;
use super::walk::{Obj, Unused};
use super::{Provider, Result, error};
use serde_json::Value;

/// One `rules` entry.
#[derive(Debug, Clone)]
pub struct Rule {
    pub matcher: PathMatcher,
    /// RouteMatch `case_sensitive` (default true); ignored by `safe_regex`, as in Envoy.
    pub case_sensitive: bool,
    /// `None`: requests matching this rule need no JWT (a rule without `requires`, or `{}`).
    pub requires: Option<Requirement>,
    /// Its requests are only reported, never refused ([`Requirement::only_reports`]).
    pub reports: bool,
}

/// RouteMatch path specifier. All kinds match the path without its query and fragment, as
/// Envoy's `PathMatcher` does.
#[derive(Debug, Clone)]
pub enum PathMatcher {
    Prefix(String),
    Path(String),
    /// Full match, compiled anchored.
    Regex(regex_lite::Regex),
    /// The prefix followed by nothing or by `/`.
    PathSeparatedPrefix(String),
}

impl Rule {
    /// Whether `path` (`:path`, query allowed) falls under this rule.
    pub fn matches(&self, path: &str) -> bool {
        let path = path_only(path);
        let starts = |prefix: &str| match path.get(..prefix.len()) {
            Some(head) if self.case_sensitive => head == prefix,
            Some(head) => head.eq_ignore_ascii_case(prefix),
            None => false,
        };
        match &self.matcher {
            PathMatcher::Prefix(prefix) => starts(prefix),
            PathMatcher::Path(exact) => path.len() == exact.len() && starts(exact),
            PathMatcher::Regex(re) => re.is_match(path),
            PathMatcher::PathSeparatedPrefix(prefix) => {
                starts(prefix) && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
            }
        }
    }
}

/// `:path` without query and fragment.
pub(crate) fn path_only(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

const NARROWING: &str = "rules match on the path only; without this condition the rule would \
     apply to more requests than intended";
const ROUTE_MATCH_UNUSED: &Unused = &[
    ("headers", Reject(NARROWING)),
    ("query_parameters", Reject(NARROWING)),
    ("runtime_fraction", Reject(NARROWING)),
    ("grpc", Reject(NARROWING)),
    ("tls_context", Reject(NARROWING)),
    ("dynamic_metadata", Reject(NARROWING)),
    ("filter_state", Reject(NARROWING)),
    ("connect_matcher", Reject("CONNECT requests are not matched by this filter")),
    ("path_match_policy", Reject("path match extensions are not available in wasm")),
];

/// `names`: the providers' names, what requirements refer to them by.
pub(super) fn parse_rules(
    top: &mut Obj,
    providers: &[Provider],
    names: &[&str],
    map: &RequirementMap,
    warnings: &mut Vec<String>,
) -> Result<Vec<Rule>> {
    top.list("rules")?
        .into_iter()
        .map(|(path, value)| parse_rule(Obj::new(value, path)?, providers, names, map, warnings))
        .collect()
}

fn parse_rule(
    mut o: Obj,
    providers: &[Provider],
    names: &[&str],
    map: &RequirementMap,
    warnings: &mut Vec<String>,
) -> Result<Rule> {
    let route_match = o.obj("match")?.ok_or_else(|| error(o.at("match"), "required"))?;
    let (matcher, case_sensitive) = parse_route_match(route_match, warnings)?;
    let requires_path = o.at("requires");
    let requires = o.get("requires").map(|v| parse_requirement(v, requires_path, names)).transpose()?;
    let name_path = o.at("requirement_name");
    let requires = match (requires, o.str("requirement_name")?) {
        (Some(requirement), None) => requirement,
        (None, Some(name)) => lookup_requirement(name, &name_path, map)?,
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(error(&o.path, "set only one of requires and requirement_name"));
        }
    };
    o.finish_all_known()?;
    let reports = requires.as_ref().is_some_and(|r| r.only_reports(providers));
    Ok(Rule { matcher, case_sensitive, requires, reports })
}

fn lookup_requirement(name: &str, path: &str, map: &RequirementMap) -> Result<Option<Requirement>> {
    match map.iter().find(|(n, _)| n == name) {
        Some((_, requirement)) => Ok(requirement.clone()),
        None => {
            let known: Vec<&str> = map.iter().map(|(n, _)| n.as_str()).collect();
            Err(error(
                path,
                format!("unknown requirement_name `{name}` (requirement_map has: {})", known.join(", ")),
            ))
        }
    }
}

fn parse_route_match(mut o: Obj, warnings: &mut Vec<String>) -> Result<(PathMatcher, bool)> {
    let path = o.path.clone();
    let case_sensitive = match o.get("case_sensitive") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(error(o.at("case_sensitive"), "expected true or false")),
    };
    let mut found = Vec::new();
    if let Some(prefix) = o.str("prefix")? {
        found.push(PathMatcher::Prefix(prefix.to_owned()));
    }
    if let Some(exact) = o.str("path")? {
        found.push(PathMatcher::Path(exact.to_owned()));
    }
    if let Some(regex) = o.obj("safe_regex")? {
        found.push(PathMatcher::Regex(parse_regex(regex, warnings)?));
    }
    if let Some(prefix) = o.str("path_separated_prefix")? {
        // Envoy's validation: `^[^?#]+[^?#/]$`.
        if prefix.is_empty() || prefix.contains(['?', '#']) || prefix.ends_with('/') {
            return Err(error(o.at("path_separated_prefix"), "expected a path without ?, # or a final /"));
        }
        found.push(PathMatcher::PathSeparatedPrefix(prefix.to_owned()));
    }
    o.finish(&[ROUTE_MATCH_UNUSED], warnings)?;
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (Some(matcher), None) => Ok((matcher, case_sensitive)),
        _ => Err(error(path, "set exactly one of prefix, path, safe_regex, path_separated_prefix")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::fixtures::{EXAMPLE, RULE, assert_refused, base, parse, with};
    use serde_json::{Value, json};

    #[test]
    fn rule_errors_name_the_field() {
        #[rustfmt::skip]
        assert_refused(&[
            (with(RULE, "match", Value::Null), "rules[0].match", "required"),
            (with(RULE, "match", json!({"case_sensitive": false})), "rules[0].match", "exactly one of prefix"),
            (with(RULE, "match", json!({"prefix": "/", "path": "/a"})), "rules[0].match", "exactly one"),
            (with(RULE, "match", json!({"path_separated_prefix": "/a/"})), "rules[0].match.path_separated_prefix", "final /"),
            (with(RULE, "require", json!({})), "rules[0].require", "unknown field"),
            (with(RULE, "match", json!({"prefix": "/", "headers": [{"name": "x"}]})), "rules[0].match.headers", "not supported"),
            (with(RULE, "match", json!({"prefix": "/", "query_parameters": [{"name": "x"}]})), "rules[0].match.query_parameters", "not supported"),
            (with(RULE, "match", json!({"prefix": "/", "grpc": {}})), "rules[0].match.grpc", "not supported"),
            (with(RULE, "match", json!({"connect_matcher": {}})), "rules[0].match.connect_matcher", "CONNECT"),
            (with(RULE, "requirement_name", json!("m")), "rules[0]", "only one of requires and requirement_name"),
        ]);
        let mut doc = base();
        doc["rules"][0] = json!({"match": {"prefix": "/"}, "requirement_name": "nope"});
        doc["requirement_map"] = json!({"m": {"provider_name": "p"}});
        let e = parse(&doc).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("rules[0].requirement_name", "unknown requirement_name `nope` (requirement_map has: m)")
        );
    }

    fn rules(specs: Value) -> Config {
        let mut doc = base();
        doc["rules"] = specs;
        parse(&doc).unwrap()
    }

    #[test]
    fn rule_matching() {
        let example = Config::parse(EXAMPLE.as_bytes()).unwrap();
        let index = |config: &Config, path: &str| {
            config.rule_for(path).map(|r| config.rules.iter().position(|x| std::ptr::eq(x, r)).unwrap())
        };
        for (path, expected) in [
            ("/healthz", 0),
            ("/healthz/live?x=1", 0),
            ("/public", 1),
            ("/public?access_token=x", 1),
            ("/public/x", 3),
            ("/publicx", 3),
            ("/api/v1/users", 2),
            ("/api/v12/users?q=/x", 2),
            ("/api/v1", 3),
            ("/api/vx/users", 3),
            ("/x/api/v1/y", 3),
        ] {
            assert_eq!(index(&example, path), Some(expected), "{path}");
        }

        let config = rules(json!([
            {"match": {"path_separated_prefix": "/sep"}},
            {"match": {"path": "/Exact", "case_sensitive": false}},
            {"match": {"prefix": "/CASE", "case_sensitive": false}},
            {"match": {"prefix": "/q?x"}},
            {"match": {"safe_regex": {"regex": "/r|/s"}}},
            {"match": {"path": "/p"}},
        ]));
        for (path, expected) in [
            ("/sep", Some(0)),
            ("/sep/x", Some(0)),
            ("/sep?x", Some(0)),
            ("/sepx", None),
            ("/exact", Some(1)),
            ("/EXACT?x", Some(1)),
            ("/exact/", None),
            ("/case/x", Some(2)),
            ("/q?x=1", None), // matchers never see the query
            ("/r", Some(4)),
            ("/s?x", Some(4)),
            ("/rr", None), // anchored: a full match
            ("/x/r", None),
            ("/p", Some(5)),
            ("/p?x=1", Some(5)),
            ("/p#frag", Some(5)),
            ("/P", None),
            ("/p/", None),
        ] {
            assert_eq!(index(&config, path), expected, "{path}");
        }
    }
}

//! `JwtRequirement`: which providers a request must satisfy, as a tree of `requires_any` /
//! `requires_all`, and the named requirements of `requirement_map` that rules refer to.

use super::walk::{Obj, non_empty, sorted_members};
use super::{Mode, Provider, ProviderId, Result, error};
use serde_json::Value;

/// jwt_authn `JwtRequirement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `provider_name`, or `provider_and_audiences` (whose non-empty audiences replace the
    /// provider's; an empty list keeps them, as jwt_authn).
    Provider {
        id: ProviderId,
        audiences: Option<Vec<String>>,
    },
    Any(Vec<Requirement>),
    All(Vec<Requirement>),
    AllowMissing,
    AllowMissingOrFailed,
}

impl Requirement {
    /// `allow_missing` and `allow_missing_or_failed`: inside `requires_any` they are flags that ask
    /// no provider, unless they are all there is (see `requirement`).
    pub fn is_flag(&self) -> bool {
        matches!(self, Requirement::AllowMissing | Requirement::AllowMissingOrFailed)
    }

    /// Whether a request under this requirement is only reported: every provider it may ask is in
    /// report mode. Decided from the requirement, not from the providers a request happened to
    /// ask: `requires_all` stops at the first denial, and a report provider's denial must not let
    /// through a request that an enforcing provider later in the list was never asked about.
    pub fn only_reports(&self, providers: &[Provider]) -> bool {
        let all_report = || !providers.is_empty() && providers.iter().all(|p| p.mode == Mode::Report);
        match self {
            Requirement::Provider { id, .. } => providers.get(*id).is_some_and(|p| p.mode == Mode::Report),
            Requirement::All(children) => children.iter().all(|c| c.only_reports(providers)),
            Requirement::Any(children) => {
                let mut regular = children.iter().filter(|c| !c.is_flag()).peekable();
                match regular.peek() {
                    Some(_) => regular.all(|c| c.only_reports(providers)),
                    None => all_report(),
                }
            }
            Requirement::AllowMissing | Requirement::AllowMissingOrFailed => all_report(),
        }
    }
}

/// `requirement_map`, sorted by name; `None` values are empty requirements (no JWT needed).
pub(super) type RequirementMap = Vec<(String, Option<Requirement>)>;

/// A `requirement_map` entry, as the request path looks it up (a route's `requirement_name`).
#[derive(Debug, Clone)]
pub struct NamedRequirement {
    pub name: String,
    /// `None`: no JWT needed.
    pub requires: Option<Requirement>,
    /// Its requests are only reported ([`Requirement::only_reports`]).
    pub reports: bool,
}

/// The map's entries with their report flags, once the providers' modes are known.
pub(super) fn named_requirements(map: RequirementMap, providers: &[Provider]) -> Vec<NamedRequirement> {
    map.into_iter()
        .map(|(name, requires)| {
            let reports = requires.as_ref().is_some_and(|r| r.only_reports(providers));
            NamedRequirement { name, requires, reports }
        })
        .collect()
}

pub(super) fn parse_requirement_map(top: &mut Obj, names: &[&str]) -> Result<RequirementMap> {
    sorted_members(top, "requirement_map")?
        .into_iter()
        .map(|(name, value)| {
            non_empty(name, "requirement_map")?;
            let requirement = parse_requirement(value, format!("requirement_map.{name}"), names)?;
            Ok((name.clone(), requirement))
        })
        .collect()
}

/// A `JwtRequirement`; `None` for the empty requirement `{}`, which jwt_authn reads as "no JWT
/// needed". The caller decides where that is acceptable.
pub(super) fn parse_requirement(value: &Value, path: String, names: &[&str]) -> Result<Option<Requirement>> {
    let mut o = Obj::new(value, path)?;
    let mut found = Vec::new();
    if let Some(name) = o.str("provider_name")? {
        let id = provider_id(name, &o.at("provider_name"), names)?;
        found.push(Requirement::Provider { id, audiences: None });
    }
    if let Some(p) = o.obj("provider_and_audiences")? {
        found.push(parse_provider_and_audiences(p, names)?);
    }
    if let Some(list) = o.obj("requires_any")? {
        found.push(Requirement::Any(parse_requirement_list(list, names)?));
    }
    if let Some(list) = o.obj("requires_all")? {
        found.push(Requirement::All(parse_requirement_list(list, names)?));
    }
    if let Some(empty) = o.obj("allow_missing")? {
        empty.finish_all_known()?;
        found.push(Requirement::AllowMissing);
    }
    if let Some(empty) = o.obj("allow_missing_or_failed")? {
        empty.finish_all_known()?;
        found.push(Requirement::AllowMissingOrFailed);
    }
    let path = o.path.clone();
    o.finish_all_known()?;
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (requirement, None) => Ok(requirement),
        _ => Err(error(
            path,
            "set only one of provider_name, provider_and_audiences, requires_any, requires_all, \
             allow_missing, allow_missing_or_failed",
        )),
    }
}

fn provider_id(name: &str, path: &str, names: &[&str]) -> Result<ProviderId> {
    names
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| error(path, format!("unknown provider `{name}` (configured: {})", names.join(", "))))
}

fn parse_provider_and_audiences(mut o: Obj, names: &[&str]) -> Result<Requirement> {
    let name_path = o.at("provider_name");
    let id = provider_id(o.str("provider_name")?.unwrap_or(""), &name_path, names)?;
    let audiences = o.str_list("audiences")?;
    o.finish_all_known()?;
    // jwt_authn: an empty list keeps the provider's audiences.
    Ok(Requirement::Provider { id, audiences: (!audiences.is_empty()).then_some(audiences) })
}

fn parse_requirement_list(mut o: Obj, names: &[&str]) -> Result<Vec<Requirement>> {
    let path = o.at("requirements");
    let items = o.list("requirements")?;
    o.finish_all_known()?;
    if items.len() < 2 {
        return Err(error(path, "list at least two requirements"));
    }
    items
        .into_iter()
        .map(|(path, value)| {
            parse_requirement(value, path.clone(), names)?.ok_or_else(|| {
                error(
                    path,
                    "an empty requirement here would satisfy the list for every request; \
                             use allow_missing_or_failed if that is intended",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{RULE, assert_refused, base, parse, with};
    use super::*;
    use serde_json::json;

    #[test]
    fn requirement_errors_name_the_field() {
        let any2 = |a: Value, b: Value| json!({"requires_any": {"requirements": [a, b]}});
        #[rustfmt::skip]
        assert_refused(&[
            (with(RULE, "requires", json!({"provider_name": "nope"})), "rules[0].requires.provider_name", "unknown provider `nope` (configured: p, q)"),
            (with(RULE, "requires", any2(json!({"provider_name": "p"}), json!({"provider_name": "x"}))), "rules[0].requires.requires_any.requirements[1].provider_name", "unknown provider"),
            (with(RULE, "requires", json!({"provider_and_audiences": {"audiences": ["a"]}})), "rules[0].requires.provider_and_audiences.provider_name", "unknown provider ``"),
            (with(RULE, "requires", json!({"provider": "p"})), "rules[0].requires.provider", "unknown field"),
            (with(RULE, "requires", json!({"requires_any": {"requirements": [{"provider_name": "p"}]}})), "rules[0].requires.requires_any.requirements", "at least two"),
            (with(RULE, "requires", json!({"requires_all": {"requirements": [{"provider_name": "p"}, {}]}})), "rules[0].requires.requires_all.requirements[1]", "empty requirement"),
            (with(RULE, "requires", json!({"provider_name": "p", "allow_missing": {}})), "rules[0].requires", "only one of provider_name"),
            (with(RULE, "requires", json!({"allow_missing": {"x": 1}})), "rules[0].requires.allow_missing.x", "unknown field"),
            (with("", "requirement_map", json!({"m": {"provider_name": "zz"}})), "requirement_map.m.provider_name", "unknown provider"),
        ]);
    }

    #[test]
    fn requirement_map_and_names() {
        let mut doc = base();
        doc["requirement_map"] = json!({
            "both": {"requires_all": {"requirements": [{"provider_name": "p"}, {"provider_name": "q"}]}},
            "open": {},
        });
        doc["rules"] = json!([
            {"match": {"prefix": "/both"}, "requirement_name": "both"},
            {"match": {"prefix": "/open"}, "requirement_name": "open"},
        ]);
        let config = parse(&doc).unwrap();
        let both = Requirement::All(vec![
            Requirement::Provider { id: 0, audiences: None },
            Requirement::Provider { id: 1, audiences: None },
        ]);
        assert_eq!(config.rules[0].requires, Some(both.clone()));
        assert_eq!(config.rules[1].requires, None);
        // Kept for routes that name them, with their report flags; routes are then read.
        let named: Vec<_> =
            config.requirement_map.iter().map(|n| (n.name.as_str(), &n.requires, n.reports)).collect();
        assert_eq!(named, [("both", &Some(both), false), ("open", &None, false)]);
        assert!(config.route_metadata);
    }

    #[test]
    fn routes_are_read_with_a_requirement_map_unless_turned_off() {
        assert!(!parse(&base()).unwrap().route_metadata);
        let mut doc = base();
        doc["route_metadata"] = json!(true);
        assert!(parse(&doc).unwrap().route_metadata, "disabled routes without a map");
        doc["requirement_map"] = json!({"m": {"provider_name": "p"}});
        doc["route_metadata"] = json!(false);
        assert!(!parse(&doc).unwrap().route_metadata);
        doc["route_metadata"] = json!("yes");
        assert_eq!(parse(&doc).unwrap_err().field, "route_metadata");
    }
}

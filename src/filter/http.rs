//! The per-request context: read the request, let the core decide, carry the decision out.

use super::host;
use super::vm::{Held, Vm};
use crate::authn::{self, Decision};
use crate::forward::Mutations;
use crate::identity::Entries;
use crate::route::{self, RouteChoice, RouteMetadata};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;

pub struct Http {
    pub context_id: u32,
    pub vm: Option<Rc<RefCell<Vm>>>,
}

/// What happened to a request after one decision.
pub enum Outcome {
    /// It may go on upstream; these headers go on its answer.
    Continue(Vec<(&'static str, String)>),
    /// It was answered locally.
    Answered,
    /// It waits for keys, until the deadline given.
    Wait(u64),
}

/// Decides the request of the current effective stream and carries the decision out. Used for new
/// requests and, from the root's tick, for held ones (`held_until`: their deadline): so it only uses
/// host calls, never `self`.
pub fn process(vm: &RefCell<Vm>, now_ms: u64, held_until: Option<u64>) -> Outcome {
    let map = host::request_headers();
    let headers = map.pairs();
    // Read before this filter changes any header (which makes Envoy route again): see `route`.
    let read_route = vm.borrow().config.route_metadata;
    let route = if read_route { read_route_choice() } else { RouteChoice::Rules };
    warn_once_if_unfollowable(vm, &route);
    // The header changes name headers of the configuration, so the VM stays borrowed while they
    // are made: those host calls never enter the VM. A local reply does (it ends the stream, and
    // Envoy deletes its context: `Drop for Http`), so the borrow ends before one.
    let mut borrowed = vm.borrow_mut();
    match borrowed.decide(&headers, &route, now_ms, held_until) {
        Decision::Allow(mutations) => {
            apply(&mutations, &headers);
            Outcome::Continue(mutations.response)
        }
        Decision::Deny(reply) => {
            drop(borrowed);
            host::log(
                LogLevel::Debug,
                &format!("{} {}: {}{}", reply.status, path(&headers), reply.reason, detail(&route)),
            );
            write_filter_state(&reply.filter_state);
            host::send_response(reply.status, &reply.headers, &reply.body);
            Outcome::Answered
        }
        Decision::Wait(wait) => {
            let deadline = borrowed.hold(&wait, now_ms);
            Outcome::Wait(held_until.unwrap_or(deadline))
        }
    }
}

/// Carries out the header changes; a header the request does not carry costs no host call.
fn apply(m: &Mutations, headers: &[(&str, &str)]) {
    for name in m.remove.iter().filter(|name| headers.iter().any(|(n, _)| n == *name)) {
        host::remove_request_header(name);
    }
    for (name, value) in &m.set {
        host::set_request_header(name, value);
    }
    write_filter_state(&m.filter_state);
}

/// The matched route's metadata: only "not found" means none (see `route`).
fn read_route_choice() -> RouteChoice {
    match host::property(route::METADATA_PROPERTY) {
        Ok(None) => route::parse(RouteMetadata::Absent),
        Ok(Some(bytes)) => route::parse(RouteMetadata::Value(&bytes)),
        Err(status) => route::parse(RouteMetadata::Unreadable(status)),
    }
}

/// A route this configuration cannot follow is the operator's error, not the client's: its
/// requests are refused (and counted as `denied.route`), and the log names the route and the
/// reason once per route and VM (later requests log at debug level with the rest).
fn warn_once_if_unfollowable(vm: &RefCell<Vm>, route: &RouteChoice) {
    let (problem, reports_only) = {
        let config = &vm.borrow().config;
        (authn::route_problem(config, route), config.reports_only)
    };
    let Some(problem) = problem else { return };
    let name = host::property(ROUTE_NAME).ok().flatten().map(|n| String::from_utf8_lossy(&n).into_owned());
    let name = name.unwrap_or_default();
    if vm.borrow_mut().first_warning_for(&name, &problem) {
        let fate = if reports_only { "reported (report mode)" } else { "refused (403)" };
        let message = format!(
            "route `{name}`: filter_metadata.jwt_authn_wasm cannot be followed: {problem}; \
             its requests are {fate} until the route is fixed"
        );
        host::log(LogLevel::Warn, &message);
    }
}

/// The property path of the matched route's name.
const ROUTE_NAME: &[u8] = b"xds\0route_name";

fn detail(route: &RouteChoice) -> String {
    match route {
        RouteChoice::Rules => String::new(),
        RouteChoice::Disabled => " (route: disabled)".to_owned(),
        RouteChoice::Requirement(name) => format!(" (route requirement_name: {name})"),
        RouteChoice::Invalid(why) => format!(" (route metadata: {why})"),
    }
}

fn write_filter_state(entries: &Entries) {
    for (name, value) in &entries.0 {
        host::set_filter_state(name, value);
    }
}

fn path<'h>(headers: &[(&str, &'h str)]) -> &'h str {
    headers.iter().find(|(n, _)| *n == ":path").map_or("", |(_, v)| v)
}

impl Context for Http {}

/// A client that gives up while held must not be resumed later: its stream is forgotten when the
/// SDK drops this context, in `proxy_on_delete`, which Envoy calls right after the stream is done.
/// Not in `on_done`: the module does not export `proxy_on_done` (Envoy would enter the VM for it
/// on every request; see `tools/wasm-exports`). If the root is busy with the held list it has
/// taken it out already and will find this stream gone.
impl Drop for Http {
    fn drop(&mut self) {
        if let Some(Ok(mut vm)) = self.vm.as_ref().map(|vm| vm.try_borrow_mut()) {
            vm.forget(self.context_id);
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(vm) = &self.vm else {
            // Only reachable if Envoy ran a filter whose configuration was refused: fail closed.
            host::send_response(503, &[], "jwt_authn_wasm not configured");
            return Action::Pause;
        };
        match process(vm, host::now_ms(), None) {
            Outcome::Continue(answer_headers) => {
                vm.borrow_mut().answer_with(self.context_id, answer_headers);
                Action::Continue
            }
            Outcome::Answered => Action::Pause,
            Outcome::Wait(deadline) => {
                vm.borrow_mut().held.push(Held { context_id: self.context_id, deadline });
                Action::Pause
            }
        }
    }

    /// Adds what the decision asked for to the upstream's answer (`DPoP-Nonce`); nothing to do,
    /// and no host call, for every other request.
    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        // A local reply runs this from inside a host call, where the VM may be borrowed: such an
        // answer has nothing to add.
        let Some(Ok(mut vm)) = self.vm.as_ref().map(|vm| vm.try_borrow_mut()) else {
            return Action::Continue;
        };
        let headers = vm.take_answer_headers(self.context_id);
        drop(vm);
        for (name, value) in headers {
            host::add_response_header(name, &value);
        }
        Action::Continue
    }
}

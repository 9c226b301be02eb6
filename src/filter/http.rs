//! The per-request context: read the request, let the core decide, carry the decision out.

use super::host;
use super::vm::{Held, Vm};
use crate::authn::{Decision, Mutations};
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
    /// It may go on upstream.
    Continue,
    /// It was answered locally.
    Answered,
    /// It waits for keys.
    Wait,
}

/// Decides the request of the current effective stream and carries the decision out. Used for new
/// requests and, from the root's tick, for held ones: so it only uses host calls, never `self`.
pub fn process(vm: &RefCell<Vm>, now_ms: u64, hold_expired: bool) -> Outcome {
    let headers = host::request_headers();
    // The borrow ends before any host call that could re-enter the VM (a local reply runs on_done).
    let decision = vm.borrow_mut().decide(&headers, now_ms, hold_expired);
    match decision {
        Decision::Allow(mutations) => {
            apply(&mutations);
            Outcome::Continue
        }
        Decision::Deny(reply) => {
            host::log(LogLevel::Debug, &format!("{} {}: {}", reply.status, path(&headers), reply.reason));
            host::send_response(reply.status, &reply.headers, &reply.body);
            Outcome::Answered
        }
        Decision::Wait => Outcome::Wait,
    }
}

fn apply(m: &Mutations) {
    for name in &m.remove {
        host::remove_request_header(name);
    }
    for (name, value) in &m.set {
        host::set_request_header(name, value);
    }
}

fn path(headers: &[(String, String)]) -> &str {
    headers.iter().find(|(n, _)| n == ":path").map_or("", |(_, v)| v.as_str())
}

impl Context for Http {
    fn on_done(&mut self) -> bool {
        // A client that gives up while held must not be resumed later. If the root is busy with
        // the held list it has taken it out already and will find this stream gone.
        if let Some(Ok(mut vm)) = self.vm.as_ref().map(|vm| vm.try_borrow_mut()) {
            vm.forget(self.context_id);
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(vm) = &self.vm else {
            // Only reachable if Envoy ran a filter whose configuration was refused: fail closed.
            host::send_response(503, &[], "jwt_authn_wasm not configured");
            return Action::Pause;
        };
        let now = host::now_ms();
        let (hold_expired, hold) = {
            let vm = vm.borrow();
            (now >= vm.startup_hold_ends, vm.hold_timeout_ms())
        };
        match process(vm, now, hold_expired) {
            Outcome::Continue => Action::Continue,
            Outcome::Answered => Action::Pause,
            Outcome::Wait => {
                let deadline = now.saturating_add(hold);
                vm.borrow_mut().held.push(Held { context_id: self.context_id, deadline });
                Action::Pause
            }
        }
    }
}

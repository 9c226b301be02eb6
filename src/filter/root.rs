//! The root context of one VM: configuration, the tick that keeps keys fresh and finishes held
//! requests, and the answers to JWKS fetches.

use super::crypto;
use super::host;
use super::http::{self, Http, Outcome};
use super::keys::Answer;
use super::shared_tokens;
use super::vm::Vm;
use crate::config::Config;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// How often each VM looks at shared data: bounds how late a held request sees new keys.
const TICK: Duration = Duration::from_millis(100);

pub struct Root {
    context_id: u32,
    vm: Option<Rc<RefCell<Vm>>>,
}

impl Root {
    fn handle_answer(&self, vm: &RefCell<Vm>, token_id: u32, body_size: usize, now: u64) {
        let mut vm = vm.borrow_mut();
        let Some(index) = vm.calls.iter().position(|(t, _, _)| *t == token_id) else { return };
        let (_, provider, what) = vm.calls.swap_remove(index);
        let Some(keys) = vm.keys.get(provider) else { return };
        // An oversize body is not even copied out of the host.
        let fits = body_size <= keys.answer_limit(what);
        let body = if fits { host::call_response_body(body_size) } else { None };
        let header = host::call_response_header;
        let (status, cache_control, expires, date) =
            (header(":status"), header("cache-control"), header("expires"), header("date"));
        let answer = Answer {
            status: status.as_deref(),
            body_size,
            body: body.as_deref(),
            cache_control: cache_control.as_deref(),
            expires: expires.as_deref(),
            date: date.as_deref(),
        };
        if let Some((call, what)) = keys.fetch_answered(now, what, &answer) {
            vm.calls.push((call, provider, what));
        }
    }
    pub fn new(context_id: u32) -> Root {
        Root { context_id, vm: None }
    }

    /// Adopts newer keys and starts due fetches. True when some provider's keys or fetch state
    /// changed (see `Vm::sync_keys`).
    fn refresh_keys(&self, vm: &RefCell<Vm>, now: u64) -> bool {
        let mut vm = vm.borrow_mut();
        let changed = vm.sync_keys(now);
        let started: Vec<_> = vm
            .keys
            .iter()
            .enumerate()
            .filter_map(|(id, keys)| keys.fetch_if_due(now).map(|(call, what)| (call, id, what)))
            .collect();
        vm.calls.extend(started);
        changed
    }

    /// Decides held requests again: with new keys they go on or are refused; past their deadline
    /// they get 503.
    fn serve_held(&self, vm: &RefCell<Vm>, now: u64) {
        let held = std::mem::take(&mut vm.borrow_mut().held);
        let mut still_held = Vec::new();
        for h in held {
            if !host::select_stream(h.context_id) {
                continue; // the stream is gone
            }
            match http::process(vm, now, Some(h.deadline)) {
                Outcome::Continue => host::resume_request(),
                Outcome::Answered => {}
                Outcome::Wait(_) => still_held.push(h),
            }
        }
        host::select_stream(self.context_id);
        vm.borrow_mut().held.extend(still_held);
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let Some(shared) = self.vm.clone() else { return };
        let now = host::now_ms();
        self.handle_answer(&shared, token_id, body_size, now);
        // The VM that fetched adopts new keys at once rather than on its next tick.
        if shared.borrow_mut().sync_keys(now) {
            self.serve_held(&shared, now);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = host::plugin_configuration() else {
            host::log(LogLevel::Error, "invalid configuration: the plugin configuration is empty");
            return false;
        };
        let config = match Config::parse(&bytes) {
            Ok(config) => config,
            Err(e) => {
                host::log(LogLevel::Error, &e.to_string());
                return false;
            }
        };
        for warning in &config.warnings {
            host::log(LogLevel::Warn, warning);
        }
        let selected = match crypto::select(config.crypto) {
            Ok(selected) => selected,
            Err(why) => {
                host::log(LogLevel::Error, &why);
                return false;
            }
        };
        host::log(selected.level, &selected.note);
        let digester = match shared_tokens::process_key() {
            Ok(digester) => digester,
            Err(why) => {
                host::log(LogLevel::Error, &why);
                return false;
            }
        };
        warn_if_vm_id_is_shared();
        let vm = Vm::new(config, &bytes, host::now_ms(), selected.crypto, digester);
        for keys in &vm.keys {
            keys.create_shared_state();
        }
        self.vm = Some(Rc::new(RefCell::new(vm)));
        host::set_tick_period(TICK);
        true
    }

    fn on_tick(&mut self) {
        let Some(vm) = self.vm.clone() else { return };
        vm.borrow_mut().metrics.flush();
        let now = host::now_ms();
        vm.borrow_mut().sync_digest_key();
        let changed = self.refresh_keys(&vm, now);
        let due = vm.borrow().held.iter().any(|h| now >= h.deadline);
        if changed || due {
            self.serve_held(&vm, now);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http { context_id, vm: self.vm.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Shared data is one namespace per `vm_id`, across modules: with an empty `vm_id` (Istio's
/// `WasmPlugin` sets none) every wasm plugin in the process with an empty `vm_id` can read and
/// write the keys, the verified-token record and its digest key. Said once per process (two VMs
/// starting together may both say it).
fn warn_if_vm_id_is_shared() {
    let empty = host::property(b"plugin_vm_id").is_ok_and(|id| id.is_none_or(|id| id.is_empty()));
    let said = format!("{}/empty-vm-id-warned", crate::namespace::NAMESPACE);
    if empty && host::shared_get(&said).0.is_none() {
        host::shared_set(&said, b"1", None);
        host::log(
            LogLevel::Warn,
            "vm_id is empty: every wasm plugin in this Envoy process with an empty vm_id shares this \
             filter's shared data (its keys, its record of verified tokens and that record's secret key) \
             and can read and write it; give the filter a vm_id of its own (vm_config.vm_id) unless \
             every such plugin is trusted as much as the filter (see README, Keys)",
        );
    }
}

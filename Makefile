# Set-up on a fresh machine is `make run` and `make test`; each installs what
# it needs (the wasm32-wasip2 target) only when it is missing.

CARGO     ?= cargo
TARGET    := wasm32-wasip2
COMPONENT := target/$(TARGET)/component/bigin_files.wasm
HOST      := target/release/bigin
LOCAL     := target/release/bigin-local

.PHONY: all build component native run test bench lint fmt clean setup

all: build

## setup: the wasm32-wasip2 target, when missing
setup:
	@rustup target list --installed | grep -qx '$(TARGET)' || rustup target add $(TARGET)

## component: the upload component, built directly as a WASI 0.2 component
component: setup
	$(CARGO) build --locked --profile component --target $(TARGET) -p bigin-files

## native: the command-line host and the local Bigin-compatible server
native:
	$(CARGO) build --locked --release --workspace

build: component native

## run: the main job: upload real files to the local server (or to a real
## account when BIGIN_DATA_CENTRE or BIGIN_API_DOMAIN is set)
run: build
	@scripts/run.sh

## test: unit tests, then the component in wasmtime against the local server
test: build
	$(CARGO) test --locked --release --workspace

## lint: formatting and clippy, native and wasm alike
lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --release --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked --profile component --target $(TARGET) -p bigin-files -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

## bench: the bigin command beside curl against the same local server
bench: build
	target/release/bigin-bench

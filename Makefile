# Set-up on a fresh machine is `make run` and `make test`; each installs what
# it needs (the wasm32-wasip2 target) only when it is missing.

CARGO     ?= cargo
TARGET    := wasm32-wasip2
COMPONENT := target/$(TARGET)/component/bigin_files.wasm
HOST      := target/release/bigin
LOCAL     := target/release/bigin-local
FRONT     := target/$(TARGET)/component/bigin_serve.wasm
SERVE     := target/serve/bigin_serve.wasm

.PHONY: all build component native run test bench lint fmt clean setup \
	serve serve-component wasmtime wac chromium

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

## test: unit tests, then the component in wasmtime against the local server,
## and the serve front in wasmtime serve and headless Chromium
test: build serve-component wasmtime chromium
	$(CARGO) test --locked --release --workspace

## serve-component: the wasi:http front composed with the upload component
serve-component: component wac
	$(CARGO) build --locked --profile component --target $(TARGET) -p bigin-serve
	@mkdir -p $(dir $(SERVE))
	wac plug --plug $(COMPONENT) $(FRONT) -o $(SERVE)

## serve: the upload page and API on http://127.0.0.1:$${PORT:-8080}/, to the
## local server (or a real account, as for `run`)
serve: serve-component native wasmtime
	@scripts/serve.sh

## wasmtime, wac, chromium: the tools `serve` and its tests use, when missing
wasmtime:
	@wasmtime --version 2>/dev/null | grep -q '^wasmtime 48\.0\.8' || \
		$(CARGO) install --locked wasmtime-cli --version 48.0.8
wac:
	@command -v wac >/dev/null || \
		$(CARGO) install --locked wac-cli --version 0.12.0 --no-default-features
chromium:
	@command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }

## lint: formatting and clippy, native and wasm alike
lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --release --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked --profile component --target $(TARGET) -p bigin-files -- -D warnings
	$(CARGO) clippy --locked --profile component --target $(TARGET) -p bigin-serve -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

## bench: the bigin command beside curl against the same local server
bench: build
	target/release/bigin-bench

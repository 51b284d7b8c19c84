//! Shared set-up for the integration tests: the compiled component (built
//! once per test binary) and the local server on 127.0.0.1:0.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::PathBuf;
use std::sync::OnceLock;

use bigin_files::settings::{RawSettings, Secret};
use bigin_host::{File, Runner, Source};
use bigin_local::{Config, LocalServer};

pub const TOKEN: &str = "local-dev-token";

/// The component `make component` builds, or `$BIGIN_COMPONENT`.
pub fn component_path() -> PathBuf {
    std::env::var_os("BIGIN_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/wasm32-wasip2/component/bigin_files.wasm")
        })
}

/// Compiling the component takes a moment; every test shares one.
pub fn runner() -> &'static Runner {
    static RUNNER: OnceLock<Runner> = OnceLock::new();
    RUNNER.get_or_init(|| {
        let path = component_path();
        assert!(
            path.exists(),
            "{} is missing: run `make component` (make test does)",
            path.display()
        );
        Runner::load(&path).unwrap_or_else(|e| panic!("loading {}: {e:#}", path.display()))
    })
}

pub fn server() -> LocalServer {
    LocalServer::start(Config::default()).expect("starting the local server")
}

/// Settings that point at `server` with a valid token.
pub fn settings(server: &LocalServer) -> RawSettings {
    settings_with_token(server, TOKEN)
}

pub fn settings_with_token(server: &LocalServer, token: &str) -> RawSettings {
    RawSettings {
        data_centre: None,
        api_domain: Some(server.base_url()),
        access_token: Some(Secret::new(token)),
        ..RawSettings::default()
    }
}

pub fn file(name: &str, data: impl Into<Vec<u8>>) -> File {
    File {
        name: name.to_owned(),
        content_type: None,
        source: Source::Bytes(data.into()),
    }
}

/// The bytes of a file given as bytes.
pub fn bytes_of(file: &File) -> &[u8] {
    match &file.source {
        Source::Bytes(bytes) => bytes,
        Source::Path(path) => panic!("{path} is given by path"),
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes that differ from file to file and are not all one value.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

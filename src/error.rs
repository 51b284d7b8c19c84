//! The component's own error and result types, independent of the
//! bindings; `lib.rs` is the one place that turns them into WIT values.

use crate::api::ApiError;
use crate::auth::TokenError;

/// What Bigin answered for one uploaded file, plus what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub name: String,
    pub id: String,
    pub size: u64,
    pub sha256: String,
}

/// Why a connection-level fault happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Timeout,
    Connection,
    Dns,
    Protocol,
}

/// Why an upload did not complete. None of these carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    #[error("file {index} ({name}) cannot be sent: {reason}")]
    InvalidFile {
        index: u32,
        name: String,
        reason: String,
    },
    #[error("file {index} ({name}) has {size} bytes, over the limit of {limit}")]
    TooLarge {
        index: u32,
        name: String,
        size: u64,
        limit: u64,
    },
    #[error("Bigin answered HTTP {} {}: {}", error.http_status, error.code.as_deref().unwrap_or("(no code)"), error.message)]
    Api {
        error: ApiError,
        /// Files not uploaded, in input order.
        files: Vec<String>,
        /// Refs won by earlier requests of the call.
        uploaded: Vec<FileRef>,
    },
    #[error(
        "no answer after the whole request was sent ({kind:?}: {message}); the files may have landed"
    )]
    PossiblyUploaded {
        kind: TransportKind,
        message: String,
        /// The files of the request whose answer was lost.
        sent: Vec<String>,
        /// Those and every file after them, not known to be uploaded.
        files: Vec<String>,
        uploaded: Vec<FileRef>,
    },
    #[error("no access token could be minted: {}", error.message)]
    Token {
        error: TokenError,
        files: Vec<String>,
        uploaded: Vec<FileRef>,
    },
    #[error("{kind:?} fault talking to Bigin: {message}")]
    Transport {
        kind: TransportKind,
        body_sent: bool,
        message: String,
        files: Vec<String>,
        uploaded: Vec<FileRef>,
    },
}

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

impl Error {
    /// Scrubs `secrets` from every text a server could have echoed them
    /// into, so no answer can carry a token into an error.
    pub fn redact(&mut self, secrets: &[&str]) {
        use crate::settings::redact;
        let scrub = |text: &mut String| *text = redact(text, secrets);
        match self {
            Error::InvalidSettings(message) => scrub(message),
            Error::InvalidFile { name, reason, .. } => {
                scrub(name);
                scrub(reason);
            }
            Error::TooLarge { name, .. } => scrub(name),
            Error::Api { error, files, .. } => {
                scrub(&mut error.message);
                if let Some(code) = &mut error.code {
                    scrub(code);
                }
                files.iter_mut().for_each(scrub);
            }
            Error::PossiblyUploaded { message, .. } | Error::Transport { message, .. } => {
                scrub(message)
            }
            Error::Token { error, .. } => {
                scrub(&mut error.message);
                if let Some(code) = &mut error.code {
                    scrub(code);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorClass;

    #[test]
    fn redaction_reaches_messages_and_codes() {
        let mut e = Error::Api {
            error: ApiError {
                class: ErrorClass::Other,
                http_status: 400,
                code: Some("tok-1".into()),
                message: "your token was tok-1".into(),
                retry_after: None,
            },
            files: vec![],
            uploaded: vec![],
        };
        e.redact(&["tok-1"]);
        assert!(!format!("{e:?}").contains("tok-1"), "{e:?}");
    }
}

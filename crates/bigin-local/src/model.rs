//! The public data types: what the server stores, what it reports, and the
//! faults tests can queue. All of them are JSON on the control endpoints.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A file accepted by `POST /bigin/v2/files`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// The opaque id the upload answered with.
    pub id: String,
    /// The file name from the part's `Content-Disposition`.
    pub name: String,
    /// The part's `Content-Type` exactly as sent, if it had one.
    pub content_type: Option<String>,
    /// The file's content.
    pub bytes: Vec<u8>,
    /// Whether the id has been consumed by attaching it to a record with
    /// `PUT /bigin/v2/{module}`; a used id cannot be attached again.
    pub used: bool,
}

impl fmt::Debug for StoredFile {
    // Files can be 20 MiB: print their size, not their bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredFile")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .field("used", &self.used)
            .finish()
    }
}

/// What the server has seen since it started (`GET /_local/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests received per route, keyed `"<METHOD> <path>"` for the
    /// server's own paths (`"POST /bigin/v2/files"`, `"GET /_local/stats"`,
    /// ...), `"<METHOD> <template>"` for paths with parameters
    /// (`"PUT /bigin/v2/{module}"`,
    /// `"GET /bigin/v2/{module}/{record_id}/Attachments"`, ...), and
    /// `"other"` for any other path.
    pub requests: BTreeMap<String, u64>,
    /// Every `POST /bigin/v2/files`, in the order they finished.
    pub uploads: Vec<UploadRecord>,
    /// Files currently stored.
    pub stored_files: usize,
    /// Access tokens minted by `POST /oauth/v2/token`.
    pub token_mints: u64,
    /// Records currently held, whichever way they were created.
    #[serde(default)]
    pub records: usize,
    /// Records updated successfully by `PUT /bigin/v2/{module}`, counted
    /// once per record entry, not per request.
    #[serde(default)]
    pub record_updates: u64,
    /// Attachments (files and links) stored by
    /// `POST /bigin/v2/{module}/{record_id}/Attachments`.
    #[serde(default)]
    pub attachments: usize,
}

/// A file or link attached to a record through the Attachments API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    /// The attachment's own numeric id, as a string.
    pub id: String,
    /// The module of the record it is attached to.
    pub module: String,
    /// The id of the record it is attached to.
    pub record_id: String,
    /// The file name from the part's `Content-Disposition`; for a link,
    /// the link itself, as the listing shows it.
    pub file_name: String,
    /// The file's size in bytes; 0 for a link.
    pub size: u64,
    /// The part's `Content-Type` exactly as sent, if it had one.
    pub content_type: Option<String>,
    /// The link, for an `attachmentUrl` attachment; `None` for a file.
    pub link_url: Option<String>,
    /// The file's content; empty for a link.
    pub bytes: Vec<u8>,
    /// When it was attached, as answered in `Created_Time`.
    pub created_time: String,
}

impl fmt::Debug for AttachmentRecord {
    // Files can be 20 MiB: print their size, not their bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentRecord")
            .field("id", &self.id)
            .field("module", &self.module)
            .field("record_id", &self.record_id)
            .field("file_name", &self.file_name)
            .field("size", &self.size)
            .field("content_type", &self.content_type)
            .field("link_url", &self.link_url)
            .field("created_time", &self.created_time)
            .finish_non_exhaustive()
    }
}

/// One `POST /bigin/v2/files` request as the server saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// How many `file` parts were read (including one refused for its
    /// size); 0 when the body was not parsed.
    pub file_count: usize,
    /// The parts read, in order.
    pub files: Vec<PartRecord>,
    /// The request's `Content-Length` header, if it had a valid one.
    pub content_length: Option<u64>,
    /// Whether the body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The HTTP status answered; `None` when no answer was sent (the
    /// `reset_mid_body` and `stall` faults).
    pub status: Option<u16>,
    /// The error code answered; `None` on success.
    pub code: Option<String>,
    /// The kind of the fault applied to this request, if any
    /// (`"status"`, `"reset_mid_body"`, `"stall"`, `"early"`).
    pub fault: Option<String>,
}

/// One file part of an upload request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// The part's file name.
    pub filename: String,
    /// Bytes read. For a part refused as too large this is where reading
    /// stopped, just past the limit, not the part's full size.
    pub size: u64,
    /// The part's `Content-Type` as sent.
    pub content_type: Option<String>,
}

/// A misbehaviour queued for the next `POST /bigin/v2/files`; each fault is
/// consumed by exactly one upload request, before authentication.
///
/// On the wire a fault is an object tagged by `kind`, for example
/// `{"kind":"status","status":429,"code":"TOO_MANY_REQUESTS","retry_after":"2"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Reads the whole body, stores nothing, and answers `status` with a
    /// Bigin error body carrying `code`.
    Status {
        /// HTTP status, 200 to 599; anything else is answered as 500.
        status: u16,
        /// The error body's `code`.
        code: String,
        /// The error body's `message`; a stock message when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Sent verbatim as the `Retry-After` header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
    },
    /// Reads part of the body, then closes the connection without an
    /// answer.
    ResetMidBody,
    /// Reads the whole body and never answers; the connection stays open
    /// until the server shuts down.
    Stall,
    /// Lets the request through untouched: it only takes a turn in the
    /// queue, so later faults hit later requests.
    Pass,
    /// Answers at once, before reading any of the body, then reads the body
    /// to its end, throwing it away, and closes the connection.
    Early {
        /// HTTP status, 200 to 599; anything else is answered as 500.
        status: u16,
        /// The error body's `code`.
        code: String,
        /// The error body's `message`; a stock message when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Sent verbatim as the `Retry-After` header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
    },
}

impl Fault {
    /// A [`Fault::Status`] with the stock message and no `Retry-After`.
    pub fn status(status: u16, code: impl Into<String>) -> Self {
        Self::Status {
            status,
            code: code.into(),
            message: None,
            retry_after: None,
        }
    }

    /// An [`Fault::Early`] with the stock message and no `Retry-After`.
    pub fn early(status: u16, code: impl Into<String>) -> Self {
        Self::Early {
            status,
            code: code.into(),
            message: None,
            retry_after: None,
        }
    }

    /// The `kind` tag, as recorded in [`UploadRecord::fault`].
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Status { .. } => "status",
            Self::ResetMidBody => "reset_mid_body",
            Self::Stall => "stall",
            Self::Pass => "pass",
            Self::Early { .. } => "early",
        }
    }

    /// Checks what the server would otherwise have to replace: a status
    /// outside 200..=599 and a `Retry-After` that is not a valid header
    /// value.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Self::Status {
            status,
            retry_after,
            ..
        }
        | Self::Early {
            status,
            retry_after,
            ..
        } = self
        {
            anyhow::ensure!(
                (200..=599).contains(status),
                "fault status {status} is not between 200 and 599"
            );
            if let Some(value) = retry_after {
                anyhow::ensure!(
                    hyper::header::HeaderValue::from_str(value).is_ok(),
                    "fault retry_after is not a valid header value"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_the_documented_json() -> anyhow::Result<()> {
        let faults: Vec<Fault> = serde_json::from_str(
            r#"[{"kind":"status","status":429,"code":"TOO_MANY_REQUESTS","retry_after":"2"},
                {"kind":"reset_mid_body"},{"kind":"stall"},
                {"kind":"early","status":413,"code":"TOO_LARGE"}]"#,
        )?;
        assert_eq!(
            faults,
            vec![
                Fault::Status {
                    status: 429,
                    code: "TOO_MANY_REQUESTS".into(),
                    message: None,
                    retry_after: Some("2".into()),
                },
                Fault::ResetMidBody,
                Fault::Stall,
                Fault::early(413, "TOO_LARGE"),
            ]
        );
        Ok(())
    }

    #[test]
    fn faults_refuse_unknown_fields_and_kinds() {
        // (serde cannot refuse extra fields on the unit variants.)
        assert!(
            serde_json::from_str::<Fault>(
                r#"{"kind":"status","status":500,"code":"X","retry":"2"}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"explode"}"#).is_err());
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"status","code":"X"}"#).is_err());
    }

    #[test]
    fn validate_checks_status_and_retry_after() {
        assert!(Fault::status(500, "INTERNAL_ERROR").validate().is_ok());
        assert!(Fault::status(100, "X").validate().is_err());
        assert!(Fault::early(600, "X").validate().is_err());
        let bad_header = Fault::Status {
            status: 429,
            code: "X".into(),
            message: None,
            retry_after: Some("1\r\nX: y".into()),
        };
        assert!(bad_header.validate().is_err());
    }
}

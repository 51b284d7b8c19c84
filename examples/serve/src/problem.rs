//! Everything an answer can be, and the one place that turns a problem into
//! an HTTP status and a JSON body.
//!
//! An error body is `{"error": CASE, "message": TEXT, ...}`. Problems with
//! an upload route also carry `uploaded`, the refs of files already sent to
//! Bigin by this request (possibly none); a failure reported by the upload
//! component adds Bigin's `code` (or `null`), its `bigin_status`, the
//! `files` of the failed batch and, for rate limits, `retry_after`.

use serde::Serialize;

use crate::batch::{FailureCase, TransportKind, UploadFailure, Uploaded};

/// An HTTP answer, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header names and values, `Content-Type` and `Content-Length`
    /// included.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("content-length".into(), body.len().to_string()),
                // Nothing here is worth caching, and every body is exactly
                // the type it says.
                ("cache-control".into(), "no-store".into()),
                ("x-content-type-options".into(), "nosniff".into()),
            ],
            body,
        }
    }

    fn json(status: u16, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::new(status, "application/json", body),
            // Serialising these plain structs cannot fail; should it ever,
            // say so without detail.
            Err(_) => Reply::new(
                500,
                "application/json",
                br#"{"error":"internal","message":"the answer could not be encoded"}"#.to_vec(),
            ),
        }
    }

    /// The upload page.
    pub fn page() -> Reply {
        let mut reply = Reply::new(200, "text/html; charset=utf-8", crate::PAGE.into());
        // The page is self-contained: its inline script may talk to this
        // origin and nowhere else.
        reply.headers.push((
            "content-security-policy".into(),
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
                .into(),
        ));
        reply
    }

    /// 200 with the refs of every uploaded file.
    pub fn uploaded(files: &[Uploaded]) -> Reply {
        #[derive(Serialize)]
        struct Body<'a> {
            files: &'a [Uploaded],
        }
        Reply::json(200, &Body { files })
    }

    fn with_header(mut self, name: &str, value: String) -> Reply {
        self.headers.push((name.into(), value));
        self
    }
}

/// Why a request was not (fully) served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No route has this path.
    UnknownPath,
    /// The path exists but not for this method.
    MethodNotAllowed {
        /// The methods it takes, for the `Allow` header.
        allow: &'static str,
    },
    /// A browser sent the request from a page of another origin.
    CrossOrigin,
    /// `POST /upload` without a `multipart/form-data` body.
    UnsupportedMediaType {
        /// The `Content-Type` given, if any.
        found: Option<String>,
    },
    /// The body is not well-formed `multipart/form-data`.
    Malformed(String),
    /// A part other than `file`.
    UnexpectedPart {
        /// The part's field name.
        name: String,
    },
    /// A `file` part without a file name.
    MissingFileName,
    /// The form has no `file` part.
    NoFile,
    /// The name in `PUT /upload/{name}` cannot be used.
    BadName(&'static str),
    /// A file over the per-file limit.
    FileTooLarge {
        /// The file's name, when known.
        name: Option<String>,
    },
    /// More files than one request may carry.
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// `Content-Length` says more than the route could ever accept, or the
    /// body ran past it.
    ContentTooLarge {
        /// The most the route accepts, in bytes.
        limit: u64,
    },
    /// The request body could not be read to its end.
    BodyRead(String),
    /// The front itself failed.
    Internal(&'static str),
    /// The upload component refused a batch or Bigin failed it.
    Upload(UploadFailure),
}

impl Problem {
    /// The answer for this problem. `uploaded` is what the request has
    /// already uploaded (`None` outside the upload routes); a failure of the
    /// upload component brings its own. Every message passes through
    /// `redact` so that a secret an upstream message echoed goes no further.
    pub fn reply(self, uploaded: Option<&[Uploaded]>, redact: &dyn Fn(&str) -> String) -> Reply {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'static str,
            message: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            code: Option<Option<String>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            bigin_status: Option<u16>,
            #[serde(skip_serializing_if = "Option::is_none")]
            retry_after: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            files: Option<&'a [String]>,
            #[serde(skip_serializing_if = "Option::is_none")]
            uploaded: Option<&'a [Uploaded]>,
        }

        let (status, error, message) = match &self {
            Problem::UnknownPath => (404, "unknown-path", "no such path; try GET /".to_owned()),
            Problem::MethodNotAllowed { allow } => (
                405,
                "method-not-allowed",
                format!("this path takes {allow}"),
            ),
            Problem::CrossOrigin => (
                403,
                "cross-origin",
                "uploads are taken only from this server's own page".to_owned(),
            ),
            Problem::UnsupportedMediaType { found } => (
                415,
                "unsupported-media-type",
                match found {
                    Some(found) => {
                        format!("expected multipart/form-data, got {}", found.escape_debug())
                    }
                    None => "expected multipart/form-data, got no Content-Type".to_owned(),
                },
            ),
            Problem::Malformed(why) => (400, "malformed-multipart", why.clone()),
            Problem::UnexpectedPart { name } => (
                400,
                "unexpected-part",
                format!(
                    "unexpected part {:?}: every file goes in a part named \"file\"",
                    name
                ),
            ),
            Problem::MissingFileName => (
                400,
                "missing-file-name",
                "a \"file\" part has no file name".to_owned(),
            ),
            Problem::NoFile => (
                400,
                "no-file",
                "the request has no part named \"file\"".to_owned(),
            ),
            Problem::BadName(why) => (400, "bad-file-name", (*why).to_owned()),
            Problem::FileTooLarge { name } => (
                413,
                "file-too-large",
                match name {
                    Some(name) => format!(
                        "{:?} is over the {} byte limit",
                        name,
                        crate::MAX_FILE_BYTES
                    ),
                    None => format!("a file is over the {} byte limit", crate::MAX_FILE_BYTES),
                },
            ),
            Problem::TooManyFiles { limit } => (
                413,
                "too-many-files",
                format!("one request takes at most {limit} files"),
            ),
            Problem::ContentTooLarge { limit } => (
                413,
                "content-too-large",
                format!("this path takes at most {limit} bytes"),
            ),
            Problem::BodyRead(why) => (400, "body-read-failed", why.clone()),
            Problem::Internal(why) => (500, "internal", (*why).to_owned()),
            Problem::Upload(failure) => {
                let (status, error) = upload_status(failure.case);
                (status, error, failure.message.clone())
            }
        };

        let (code, bigin_status, retry_after, files, uploaded) = match &self {
            Problem::Upload(failure) => (
                Some(failure.code.as_deref().map(redact)),
                failure.http_status,
                failure.retry_after,
                Some(failure.files.as_slice()),
                Some(failure.uploaded.as_slice()),
            ),
            _ => (None, None, None, None, uploaded),
        };
        let body = Body {
            error,
            message: redact(&message),
            code,
            bigin_status,
            retry_after,
            files,
            uploaded,
        };
        let mut reply = Reply::json(status, &body);
        if let Problem::MethodNotAllowed { allow } = self {
            reply = reply.with_header("allow", allow.to_owned());
        }
        if let Some(seconds) = retry_after {
            reply = reply.with_header("retry-after", seconds.to_string());
        }
        reply
    }
}

/// The status and `error` string for each case of the WIT `upload-error`.
/// Bigin answers that are not the client's doing are a bad gateway.
fn upload_status(case: FailureCase) -> (u16, &'static str) {
    match case {
        // The server's own settings are wrong, not the request.
        FailureCase::InvalidSettings => (500, "invalid-settings"),
        FailureCase::InvalidFile => (400, "invalid-file"),
        FailureCase::TooLarge => (413, "too-large"),
        FailureCase::Unauthorized => (401, "unauthorized"),
        FailureCase::Forbidden => (403, "forbidden"),
        FailureCase::RateLimited => (429, "rate-limited"),
        FailureCase::NotFound => (502, "not-found"),
        FailureCase::ServerError => (502, "server-error"),
        FailureCase::Api => (502, "api"),
        // The accounts server refused to mint a token: the server's
        // credentials, not the request, are at fault.
        FailureCase::Token => (502, "token"),
        FailureCase::Transport(TransportKind::Timeout) => (504, "transport"),
        FailureCase::Transport(_) => (502, "transport"),
        FailureCase::PossiblyUploaded(TransportKind::Timeout) => (504, "possibly-uploaded"),
        FailureCase::PossiblyUploaded(_) => (502, "possibly-uploaded"),
    }
}

/// Replaces every occurrence of each of `secrets` in `text`. Secrets
/// shorter than eight bytes are left alone: no real token is that short,
/// and replacing a common short string would garble every message.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        text = text.replace(secret.as_str(), "[redacted]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_redaction(text: &str) -> String {
        text.to_owned()
    }

    fn json(reply: &Reply) -> serde_json::Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn failure(case: FailureCase) -> UploadFailure {
        UploadFailure {
            case,
            message: "bad token local-dev-token".into(),
            code: Some("INVALID_TOKEN".into()),
            http_status: Some(401),
            retry_after: None,
            files: vec!["b.txt".into()],
            uploaded: vec![Uploaded {
                name: "a.txt".into(),
                id: "ID1".into(),
                size: 1,
                sha256: "00".into(),
            }],
        }
    }

    #[test]
    fn upload_failures_map_to_the_documented_statuses() {
        let cases = [
            (FailureCase::Unauthorized, 401),
            (FailureCase::Forbidden, 403),
            (FailureCase::RateLimited, 429),
            (FailureCase::NotFound, 502),
            (FailureCase::ServerError, 502),
            (FailureCase::Api, 502),
            (FailureCase::Transport(TransportKind::Timeout), 504),
            (FailureCase::Transport(TransportKind::Connection), 502),
            (FailureCase::Transport(TransportKind::Dns), 502),
            (FailureCase::PossiblyUploaded(TransportKind::Timeout), 504),
            (
                FailureCase::PossiblyUploaded(TransportKind::Connection),
                502,
            ),
            (FailureCase::Token, 502),
            (FailureCase::InvalidFile, 400),
            (FailureCase::InvalidSettings, 500),
        ];
        for (case, status) in cases {
            let reply = Problem::Upload(failure(case)).reply(None, &no_redaction);
            assert_eq!(reply.status, status, "{case:?}");
        }
    }

    #[test]
    fn an_upload_failure_carries_case_code_refs_and_no_secret() {
        let reply = Problem::Upload(failure(FailureCase::Unauthorized))
            .reply(Some(&[]), &|t| redact(t, &["local-dev-token".to_owned()]));
        let body = json(&reply);
        assert_eq!(body["error"], "unauthorized");
        assert_eq!(body["code"], "INVALID_TOKEN");
        assert_eq!(body["bigin_status"], 401);
        assert_eq!(body["uploaded"][0]["id"], "ID1");
        assert_eq!(body["files"][0], "b.txt");
        let text = String::from_utf8(reply.body).unwrap();
        assert!(!text.contains("local-dev-token"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn a_rate_limit_says_when_to_retry() {
        let mut limited = failure(FailureCase::RateLimited);
        limited.retry_after = Some(7);
        let reply = Problem::Upload(limited).reply(None, &no_redaction);
        assert_eq!(reply.status, 429);
        assert_eq!(header(&reply, "retry-after"), Some("7"));
        assert_eq!(json(&reply)["retry_after"], 7);
    }

    #[test]
    fn front_problems_have_no_code_and_list_uploads_only_on_upload_routes() {
        let reply = Problem::NoFile.reply(Some(&[]), &no_redaction);
        assert_eq!(reply.status, 400);
        let body = json(&reply);
        assert_eq!(body["error"], "no-file");
        assert!(body.get("code").is_none());
        assert_eq!(body["uploaded"], serde_json::json!([]));

        let reply = Problem::MethodNotAllowed { allow: "POST" }.reply(None, &no_redaction);
        assert_eq!(reply.status, 405);
        assert_eq!(header(&reply, "allow"), Some("POST"));
        assert!(json(&reply).get("uploaded").is_none());
    }

    #[test]
    fn replies_declare_their_length_and_type() {
        let reply = Reply::uploaded(&[]);
        assert_eq!(reply.body, br#"{"files":[]}"#);
        assert_eq!(header(&reply, "content-length"), Some("12"));
        assert_eq!(header(&reply, "content-type"), Some("application/json"));
        let page = Reply::page();
        assert!(header(&page, "content-security-policy").is_some());
    }

    #[test]
    fn every_secret_is_redacted_but_short_ones() {
        let secrets = [
            "a".to_owned(),
            "s3cret-token".to_owned(),
            "refresh-0123".to_owned(),
        ];
        assert_eq!(redact("a b c", &secrets), "a b c");
        assert_eq!(
            redact("x s3cret-token y refresh-0123", &secrets),
            "x [redacted] y [redacted]"
        );
    }
}

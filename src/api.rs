//! Bigin's answers: the success body of an upload and the error body every
//! failure carries, mapped to the cases a caller branches on.
//!
//! Decisions rest on the HTTP status and the `code` and `status` fields,
//! never on `message`, whose wording differs between versions of the docs.

use serde::Deserialize;

/// How much of an unparseable answer body is kept as the message.
const MAX_MESSAGE_BYTES: usize = 512;

/// One file Bigin accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub name: String,
    pub id: String,
}

/// One entry of an upload answer: accepted, or refused with its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Accepted(Accepted),
    Refused(ApiError),
}

/// The kinds of failure a caller can act on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Unauthorized,
    Forbidden,
    RateLimited,
    NotFound,
    Server,
    Other,
}

/// An error answer: status, Zoho `code` and message as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub class: ErrorClass,
    pub http_status: u16,
    pub code: Option<String>,
    pub message: String,
    /// From a `Retry-After` header given in seconds.
    pub retry_after: Option<u64>,
}

#[derive(Deserialize)]
struct UploadAnswer {
    data: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Maps a status and code to a class. Codes win where they are more
/// specific than the status; unknown codes fall back to the status.
pub fn classify(http_status: u16, code: Option<&str>) -> ErrorClass {
    match (http_status, code) {
        (_, Some("AUTHORIZATION_FAILED" | "NO_PERMISSION")) => ErrorClass::Forbidden,
        (
            _,
            Some(
                "INVALID_TOKEN"
                | "AUTHENTICATION_FAILURE"
                | "OAUTH_SCOPE_MISMATCH"
                | "INVALID_OAUTHTOKEN",
            ),
        ) => ErrorClass::Unauthorized,
        (_, Some("TOO_MANY_REQUESTS" | "RATE_LIMIT_EXCEEDED")) => ErrorClass::RateLimited,
        (401, _) => ErrorClass::Unauthorized,
        (403, _) => ErrorClass::Forbidden,
        (404, _) | (_, Some("INVALID_URL_PATTERN")) => ErrorClass::NotFound,
        (429, _) => ErrorClass::RateLimited,
        (500..=599, _) => ErrorClass::Server,
        _ => ErrorClass::Other,
    }
}

/// Reads a `Retry-After` given in seconds. An HTTP date is not read here: it
/// needs the current time, which the caller has and this module does not.
pub fn retry_after_seconds(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More seconds than a u64 holds is still a number of seconds: forever.
    Some(value.parse().unwrap_or(u64::MAX))
}

/// Parses an error answer of any status; a body that is not Zoho's JSON
/// keeps its text (shortened) as the message.
pub fn error_from(http_status: u16, body: &[u8], retry_after: Option<u64>) -> ApiError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { code, message }) => (code, message.unwrap_or_default()),
        Err(_) => (None, snippet(body)),
    };
    let message = if message.is_empty() {
        format!("HTTP {http_status} with no message")
    } else {
        message
    };
    ApiError {
        class: classify(http_status, code.as_deref()),
        http_status,
        code,
        message,
        retry_after,
    }
}

/// Parses a 200 answer to an upload of `sent` files into one entry each,
/// in the order sent.
///
/// Returns an error when the body is not the documented shape or holds a
/// different number of entries, since then no entry can be matched to its
/// file with certainty.
pub fn upload_entries(body: &[u8], sent: usize) -> Result<Vec<Entry>, String> {
    let answer: UploadAnswer = serde_json::from_slice(body)
        .map_err(|e| format!("the upload answer is not the expected JSON ({e})"))?;
    if answer.data.len() != sent {
        return Err(format!(
            "the upload answer lists {} files for {sent} sent",
            answer.data.len()
        ));
    }
    Ok(answer.data.into_iter().map(entry).collect())
}

fn entry(raw: RawEntry) -> Entry {
    let accepted = raw.status.as_deref() == Some("success")
        && raw.code.as_deref().is_none_or(|c| c == "SUCCESS");
    let details = raw.details.as_ref();
    let field = |key: &str| {
        details
            .and_then(|d| d.get(key))
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match (accepted, field("id"), field("name")) {
        (true, Some(id), Some(name)) => Entry::Accepted(Accepted { name, id }),
        (true, _, _) => Entry::Refused(ApiError {
            class: ErrorClass::Other,
            http_status: 200,
            code: raw.code,
            message: "the answer marks the file a success but gives no name and id".into(),
            retry_after: None,
        }),
        (false, _, _) => {
            let code = raw.code;
            Entry::Refused(ApiError {
                class: classify(200, code.as_deref()),
                http_status: 200,
                code,
                message: raw
                    .message
                    .unwrap_or_else(|| "refused with no message".into()),
                retry_after: None,
            })
        }
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_success_answer() {
        let body = br#"{"data":[{"code":"SUCCESS","details":{"name":"connections.txt","id":"2cceafa186"},"message":"connections.txt uploaded Succeessfully","status":"success"}]}"#;
        assert_eq!(
            upload_entries(body, 1).unwrap(),
            vec![Entry::Accepted(Accepted {
                name: "connections.txt".into(),
                id: "2cceafa186".into()
            })]
        );
    }

    #[test]
    fn count_mismatch_and_bad_json_are_errors() {
        let body = br#"{"data":[]}"#;
        assert!(
            upload_entries(body, 1)
                .unwrap_err()
                .contains("0 files for 1")
        );
        assert!(upload_entries(b"<html>", 1).is_err());
    }

    #[test]
    fn refused_entry_keeps_its_code() {
        let body =
            br#"{"data":[{"code":"VIRUS_DETECTED","details":{},"message":"no","status":"error"}]}"#;
        match &upload_entries(body, 1).unwrap()[0] {
            Entry::Refused(e) => {
                assert_eq!(e.code.as_deref(), Some("VIRUS_DETECTED"));
                assert_eq!(e.class, ErrorClass::Other);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn error_bodies_map_by_status_and_code() {
        let e = error_from(
            401,
            br#"{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}"#,
            None,
        );
        assert_eq!(e.class, ErrorClass::Unauthorized);
        assert_eq!(e.code.as_deref(), Some("INVALID_TOKEN"));
        assert_eq!(e.message, "invalid oauth token");

        let e = error_from(400, br#"{"code":"SOMETHING_NEW","message":"hm"}"#, None);
        assert_eq!(e.class, ErrorClass::Other);
        assert_eq!(e.code.as_deref(), Some("SOMETHING_NEW"));

        assert_eq!(
            error_from(400, br#"{"code":"AUTHORIZATION_FAILED"}"#, None).class,
            ErrorClass::Forbidden
        );
        assert_eq!(
            error_from(404, br#"{"code":"INVALID_URL_PATTERN"}"#, None).class,
            ErrorClass::NotFound
        );
        assert_eq!(error_from(503, b"", None).class, ErrorClass::Server);
        assert_eq!(
            error_from(503, b"", None).message,
            "HTTP 503 with no message"
        );
        let e = error_from(429, b"slow down", Some(7));
        assert_eq!((e.class, e.retry_after), (ErrorClass::RateLimited, Some(7)));
        assert_eq!(e.message, "slow down");
    }

    #[test]
    fn long_text_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(600);
        let e = error_from(502, body.as_bytes(), None);
        assert!(e.message.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
        assert!(e.message.ends_with('…'));
    }

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(retry_after_seconds(" 12 "), Some(12));
        assert_eq!(retry_after_seconds("99999999999999999999"), Some(u64::MAX));
        assert_eq!(retry_after_seconds("-1"), None);
        assert_eq!(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}

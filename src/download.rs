//! Reading a file back by its encrypted id (`GET /bigin/v2/files?id=`), and
//! turning the answer's `Content-Disposition` into a safe file name.

use crate::api;
use crate::client::{CallError, Client, Spec};
use crate::error::Error;
use crate::upload::{FILES_PATH, MAX_FILE_BYTES, Method, explain};

/// The name used when the answer gives none that is usable.
pub const FALLBACK_NAME: &str = "download";

/// A file read back from Bigin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// A plain file name, safe to create in a directory.
    pub name: String,
    /// The media type without parameters, lower-case.
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Downloads the file with encrypted id `id`.
pub fn download(client: &mut Client<'_>, id: &str) -> Result<Downloaded, Error> {
    let id = id.trim();
    if id.is_empty() {
        return Err(Error::InvalidFile {
            index: 0,
            name: String::new(),
            reason: "the file id is empty".into(),
        });
    }
    let path = format!("{FILES_PATH}?id={}", percent_encode(id));
    let spec = Spec {
        method: Method::Get,
        path_and_query: &path,
        headers: vec![],
        body: None,
        // A little over the largest file Bigin stores; anything longer is
        // not a file this API serves.
        max_answer_bytes: (MAX_FILE_BYTES + 1024 * 1024) as usize,
        idempotent: true,
    };
    let files = || vec![id.to_owned()];
    let response = client.send(&spec).map_err(|e| match e {
        // Nothing is created by a download, so a lost answer is just lost.
        CallError::Transport(fault) => Error::Transport {
            kind: fault.kind,
            body_sent: false,
            message: fault.message,
            files: files(),
            uploaded: vec![],
        },
        CallError::Token(error) => Error::Token {
            error,
            files: files(),
            uploaded: vec![],
        },
    })?;
    match response.status {
        200 => Ok(Downloaded {
            name: response
                .header("content-disposition")
                .and_then(file_name)
                .unwrap_or_else(|| FALLBACK_NAME.to_owned()),
            content_type: response
                .header("content-type")
                .map(media_type)
                .unwrap_or_else(|| crate::multipart::FALLBACK_CONTENT_TYPE.to_owned()),
            data: response.body,
        }),
        204 => Err(Error::Api {
            error: api::ApiError {
                class: api::ErrorClass::NotFound,
                http_status: 204,
                code: None,
                message: "no file has this id".into(),
                retry_after: None,
            },
            files: files(),
            uploaded: vec![],
        }),
        status => {
            let retry_after = response
                .header("retry-after")
                .and_then(api::retry_after_seconds);
            let mut error = api::error_from(status, &response.body, retry_after);
            explain(&mut error, "ZohoBigin.Files.READ");
            Err(Error::Api {
                error,
                files: files(),
                uploaded: vec![],
            })
        }
    }
}

/// `type/subtype` of a `Content-Type`, without `;charset=...` and the like.
pub fn media_type(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.contains('/') {
        essence.to_ascii_lowercase()
    } else {
        crate::multipart::FALLBACK_CONTENT_TYPE.to_owned()
    }
}

/// The file name a `Content-Disposition` gives, made safe.
///
/// `filename*` (RFC 6266 section 4.3, encoded per RFC 8187) wins over
/// `filename`, whose quoted-pairs are undone. Returns `None` when neither
/// yields a usable name.
pub fn file_name(disposition: &str) -> Option<String> {
    let params = parameters(disposition);
    let extended = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("filename*"))
        .and_then(|(_, v)| decode_extended(v));
    let plain = || {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("filename"))
            .map(|(_, v)| v.clone())
    };
    extended
        .or_else(plain)
        .map(|name| safe_name(&name))
        .filter(|name| !name.is_empty())
}

/// Splits `type; a=b; c="d;e"` into its parameters, unquoting values.
fn parameters(header: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = match header.split_once(';') {
        Some((_, rest)) => rest,
        None => return params,
    };
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        let Some((key, after)) = rest.split_once('=') else {
            return params;
        };
        let key = key.trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            unquote(quoted)
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((key, value));
        rest = remaining;
    }
}

/// Reads a quoted-string body up to its closing quote (RFC 9110 section
/// 5.6.4); an unterminated one runs to the end.
fn unquote(quoted: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &quoted[i + 1..]),
            c => value.push(c),
        }
    }
    (value, "")
}

/// Decodes `UTF-8''percent%20encoded` (RFC 8187 section 3.2). Other
/// charsets are not decoded: ISO-8859-1 is the only other one defined, and
/// Bigin sends UTF-8.
fn decode_extended(value: &str) -> Option<String> {
    let mut pieces = value.splitn(3, '\'');
    let charset = pieces.next()?;
    let _language = pieces.next()?;
    let encoded = pieces.next()?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let bytes = percent_decode(encoded)?;
    String::from_utf8(bytes).ok()
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = (bytes.next()? as char).to_digit(16)?;
            let lo = (bytes.next()? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Keeps only the last path component and drops control characters, so the
/// name cannot climb out of, or write elsewhere than, the chosen directory.
fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim();
    match trimmed {
        "" | "." | ".." => String::new(),
        name => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_name_wins_and_is_decoded() {
        let h = "attachment; filename=\"fallback.txt\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22v2%22.pdf";
        assert_eq!(file_name(h).as_deref(), Some("Résumé \"v2\".pdf"));
    }

    #[test]
    fn quoted_name_has_escapes_undone() {
        let h = r#"attachment; filename="say \"hi\".txt""#;
        assert_eq!(file_name(h).as_deref(), Some(r#"say "hi".txt"#));
        let h = r#"attachment; filename="dir\\name.txt""#;
        assert_eq!(file_name(h).as_deref(), Some("name.txt"));
        assert_eq!(
            file_name(r#"attachment; filename="a;b.txt"; size=3"#).as_deref(),
            Some("a;b.txt")
        );
        assert_eq!(
            file_name("attachment; filename=plain.txt").as_deref(),
            Some("plain.txt")
        );
    }

    #[test]
    fn path_separators_and_controls_are_removed() {
        assert_eq!(
            file_name(r#"attachment; filename="../../etc/passwd""#).as_deref(),
            Some("passwd")
        );
        assert_eq!(
            file_name("attachment; filename*=UTF-8''..%2F..%5Cevil%0A.txt").as_deref(),
            Some("evil.txt")
        );
        assert_eq!(file_name(r#"attachment; filename="..""#), None);
        assert_eq!(file_name("attachment"), None);
        assert_eq!(file_name("attachment; filename*=UTF-8''%ZZ"), None);
    }

    #[test]
    fn bad_extended_value_falls_back_to_plain() {
        let h = "attachment; filename*=ISO-8859-1''x%E9.txt; filename=\"x.txt\"";
        assert_eq!(file_name(h).as_deref(), Some("x.txt"));
    }

    #[test]
    fn media_type_drops_charset() {
        assert_eq!(media_type("image/PNG;charset=UTF-8"), "image/png");
        assert_eq!(
            media_type("garbage"),
            crate::multipart::FALLBACK_CONTENT_TYPE
        );
    }

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(percent_encode("ab/c d&e"), "ab%2Fc%20d%26e");
    }
}

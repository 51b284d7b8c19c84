//! `POST` and `GET /bigin/v2/{module}/{record_id}/Attachments`: files and
//! links attached to a record directly, apart from its fields.

use http_body_util::Limited;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::disposition::parse_part_disposition;
use crate::model::AttachmentRecord;
use crate::records::{self, local_user};
use crate::response::{self, Body};
use crate::state::{NewAttachment, Shared};
use crate::upload::{self, MAX_FILE_BYTES, Refusal, RequestBody, open_multipart};

/// Largest attachment request body: one maximal file plus 1 MiB for the
/// multipart framing.
pub const MAX_ATTACHMENT_REQUEST_BYTES: u64 = MAX_FILE_BYTES + 1024 * 1024;

/// Longest `attachmentUrl` accepted, in bytes. Our own bound: Bigin
/// documents none.
pub const MAX_LINK_BYTES: usize = 2048;

/// What one request attaches.
enum Upload {
    File {
        name: String,
        content_type: Option<String>,
        bytes: Vec<u8>,
    },
    Link(String),
}

/// Answers an attachment upload. Checked in this order: `Content-Length`
/// over [`MAX_ATTACHMENT_REQUEST_BYTES`] (413, before reading), token and
/// module (see [`records::gate`]), the record (400 `INVALID_DATA`,
/// `details: {"api_name":"id"}`), then the body (see [`read_upload`]).
pub(crate) async fn upload(
    request: Request<Incoming>,
    shared: &Shared,
    module: &str,
    record_id: &str,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let limit = usize::try_from(MAX_ATTACHMENT_REQUEST_BYTES).unwrap_or(usize::MAX);
    let mut body = Limited::new(body, limit);

    if upload::content_length(&parts.headers)
        .is_some_and(|length| length > MAX_ATTACHMENT_REQUEST_BYTES)
    {
        return Refusal::too_large("Content-Length over the attachment limit").into_response(false);
    }
    if let Some(answer) = records::gate(&parts.headers, shared, module) {
        return if upload::drain(&mut body).await {
            answer
        } else {
            response::close_after(answer)
        };
    }
    if !shared.has_record(module, record_id) {
        let complete = upload::drain(&mut body).await;
        return unknown_record().into_response(complete);
    }

    let upload = match read_upload(&parts.headers, &mut body).await {
        Ok(upload) => upload,
        Err(refusal) => {
            let complete = !refusal.close && upload::drain(&mut body).await;
            return refusal.into_response(complete);
        }
    };
    let new = match upload {
        Upload::File {
            name,
            content_type,
            bytes,
        } => NewAttachment {
            file_name: name,
            content_type,
            link_url: None,
            bytes,
        },
        Upload::Link(url) => NewAttachment {
            file_name: url.clone(),
            content_type: None,
            link_url: Some(url),
            bytes: Vec::new(),
        },
    };
    // Records are never deleted, so the record checked above is still
    // there; answer as if it were not rather than panic if that changes.
    let Some((id, time)) = shared.add_attachment(module, record_id, new) else {
        return unknown_record().into_response(true);
    };
    let entry = json!({
        "code": "SUCCESS",
        "details": {
            "Modified_Time": time,
            "Modified_By": local_user(),
            "Created_Time": time,
            "id": id,
            "Created_By": local_user(),
        },
        "message": "attachment uploaded successfully",
        "status": "success",
    });
    response::json(StatusCode::OK, &json!({ "data": [entry] }))
}

/// `GET .../Attachments`: 200 with `{"data":[...]}` oldest first, 204 when
/// the record has none, 400 `INVALID_DATA` for an unknown record.
pub(crate) fn list(
    headers: &HeaderMap,
    shared: &Shared,
    module: &str,
    record_id: &str,
) -> Response<Body> {
    if let Some(answer) = records::gate(headers, shared, module) {
        return answer;
    }
    match shared.attachments(module, record_id) {
        None => unknown_record().into_response(true),
        Some(attachments) if attachments.is_empty() => response::empty(StatusCode::NO_CONTENT),
        Some(attachments) => {
            let data: Vec<Value> = attachments.iter().map(listed).collect();
            response::json(StatusCode::OK, &json!({ "data": data }))
        }
    }
}

/// One attachment as the listing shows it. Zoho CRM's listing has these
/// keys among many others and sends `Size` as a string; both are
/// unconfirmed for Bigin. A link's `File_Name` is the link itself.
fn listed(attachment: &AttachmentRecord) -> Value {
    let mut entry = json!({
        "id": attachment.id,
        "File_Name": attachment.file_name,
        "Size": attachment.size.to_string(),
        "Created_Time": attachment.created_time,
        "Modified_Time": attachment.created_time,
        "Created_By": local_user(),
        "Parent_Id": { "id": attachment.record_id },
    });
    if let (Some(url), Some(object)) = (&attachment.link_url, entry.as_object_mut()) {
        object.insert("$link_url".to_owned(), Value::String(url.clone()));
    }
    entry
}

/// The answer for a record id the module does not hold. Zoho's exact
/// answer here is unconfirmed; this server says `INVALID_DATA` on `id`,
/// as the records API does for an unknown record.
fn unknown_record() -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        "no such record in this module",
    )
    .with_details(json!({ "api_name": "id" }))
}

/// Reads the multipart body: exactly one part, either `file` (with a file
/// name, read by the same strict parser as uploads) or `attachmentUrl`
/// (an `http` or `https` link, without a file name). Refusals:
/// - malformed multipart or `Content-Disposition`, a part with another
///   name, an `attachmentUrl` part with a file name, or a second part: 400
///   `INVALID_REQUEST`;
/// - a `file` part without a file name: 400
///   `failure_in_attachment_handling`;
/// - no part at all: 400 `REQUIRED_PARAM_MISSING`;
/// - a file over [`MAX_FILE_BYTES`]: 415
///   `FILE_SIZE_MORE_THAN_ALLOWED_SIZE`;
/// - a link that is not UTF-8, not `http(s)://`, holds whitespace or
///   control characters, or is over [`MAX_LINK_BYTES`]: 400 `INVALID_DATA`,
///   `details: {"api_name":"attachmentUrl"}`.
async fn read_upload(headers: &HeaderMap, body: &mut RequestBody) -> Result<Upload, Refusal> {
    let mut multipart = open_multipart(headers, body)?;

    let mut found = None;
    while let Some(mut field) = multipart.next_field().await.map_err(Refusal::from_multer)? {
        if found.is_some() {
            return Err(Refusal::invalid("more than one part"));
        }
        let raw = field
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .ok_or_else(|| Refusal::invalid("a part has no Content-Disposition"))?;
        let disposition = parse_part_disposition(raw.as_bytes())
            .map_err(|e| Refusal::invalid(format!("Content-Disposition: {e}")))?;
        match disposition.name.as_deref() {
            Some("file") => {
                let name = disposition
                    .filename
                    .filter(|name| !name.is_empty())
                    .ok_or_else(|| Refusal::attachment("the `file` part has no file name"))?;
                let content_type = match field.headers().get(header::CONTENT_TYPE) {
                    None => None,
                    Some(value) => Some(
                        value
                            .to_str()
                            .map_err(|e| Refusal::invalid(format!("part Content-Type: {e}")))?
                            .to_owned(),
                    ),
                };
                let bytes = read_part(&mut field, MAX_FILE_BYTES, Refusal::file_too_large).await?;
                found = Some(Upload::File {
                    name,
                    content_type,
                    bytes,
                });
            }
            Some("attachmentUrl") => {
                if disposition.filename.is_some() {
                    return Err(Refusal::invalid("the `attachmentUrl` part has a file name"));
                }
                let bytes = read_part(&mut field, MAX_LINK_BYTES as u64, || {
                    bad_link("the link is too long")
                })
                .await?;
                let url =
                    String::from_utf8(bytes).map_err(|_| bad_link("the link is not UTF-8"))?;
                if !is_link(&url) {
                    return Err(bad_link("the link is not an http or https URL"));
                }
                found = Some(Upload::Link(url));
            }
            _ => {
                return Err(Refusal::invalid(
                    "a part is named neither `file` nor `attachmentUrl`",
                ));
            }
        }
    }
    found.ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "REQUIRED_PARAM_MISSING",
            "neither `file` nor `attachmentUrl`",
        )
        .with_details(json!({ "param_name": "file" }))
    })
}

/// Reads one part, refusing with `over()` at the first byte past `limit`
/// rather than buffering what will be refused anyway.
async fn read_part(
    field: &mut multer::Field<'_>,
    limit: u64,
    over: impl Fn() -> Refusal,
) -> Result<Vec<u8>, Refusal> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(Refusal::from_multer)? {
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(over());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn bad_link(reason: &str) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, "INVALID_DATA", reason)
        .with_details(json!({ "api_name": "attachmentUrl" }))
}

/// Whether `url` looks like an absolute `http` or `https` link. The server
/// never fetches it; this only keeps obvious garbage out.
fn is_link(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty())
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_must_be_http_or_https() {
        for good in ["https://example.com/a", "HTTP://x", "http://h/p?q=1#f"] {
            assert!(is_link(good), "{good}");
        }
        for bad in [
            "",
            "https://",
            "ftp://x",
            "example.com",
            "https://a b",
            "http://x\n",
        ] {
            assert!(!is_link(bad), "{bad}");
        }
    }
}

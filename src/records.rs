//! Putting uploaded files on Bigin records: through a record's file-upload
//! field (records API, `PUT /bigin/v2/{module}`), or as an attachment
//! (`POST /bigin/v2/{module}/{record_id}/Attachments`).

use serde_json::{Value, json};

use crate::api::{self, ApiError, ErrorClass};
use crate::client::{CallError, Client, Spec};
use crate::download::percent_encode;
use crate::error::Error;
use crate::multipart::{self, Body, Data, Part};
use crate::upload::{MAX_FILE_BYTES, Method, Payload, explain};

/// The modules whose records take files and attachments.
pub const MODULES: [&str; 7] = [
    "Contacts",
    "Pipelines",
    "Accounts",
    "Products",
    "Tasks",
    "Events",
    "Notes",
];

/// The scope named when Bigin says the token lacks one. Limitation: the
/// exact scope Bigin asks for on records is not confirmed in the reference.
const RECORDS_SCOPE: &str = "ZohoBigin.modules.ALL (or the module's own UPDATE/CREATE scope)";

/// The largest answer read from the records API.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Limitation: the value a file-upload field takes is Zoho CRM v2's form,
/// `[{"file_id": "<encrypted id>"}]`; the reference marks Bigin v2's form
/// as unconfirmed, and later CRM versions use `File_Id__s`. This is the one
/// place that shapes it.
pub fn file_field_value(ids: &[&str]) -> Value {
    Value::Array(ids.iter().map(|id| json!({ "file_id": id })).collect())
}

/// How one record's update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordStatus {
    pub record_id: String,
    pub code: String,
    pub message: String,
}

/// What to attach: a file's bytes, or a link Bigin stores as is.
#[derive(Debug, Clone, Copy)]
pub enum Attachment<'a> {
    File {
        name: &'a str,
        content_type: Option<&'a str>,
        data: Data<'a>,
    },
    Link(&'a str),
}

/// Puts the uploaded `ids` into `field` of record `record_id`.
pub fn attach(
    client: &mut Client<'_>,
    module: &str,
    record_id: &str,
    field: &str,
    ids: &[&str],
) -> Result<RecordStatus, Error> {
    check_target(module, record_id)?;
    if !is_field_name(field) {
        return Err(invalid(
            field,
            "a field's API name is letters, digits and `_`, starting with a letter",
        ));
    }
    if let Some(index) = ids.iter().position(|id| id.trim().is_empty()) {
        return Err(Error::InvalidFile {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            name: String::new(),
            reason: "a file id is empty".into(),
        });
    }
    let mut entry = serde_json::Map::new();
    entry.insert("id".into(), Value::String(record_id.to_owned()));
    entry.insert(field.to_owned(), file_field_value(ids));
    let body = json!({ "data": [entry] }).to_string();
    let path = format!("/bigin/v2/{module}");
    let spec = Spec {
        method: Method::Put,
        path_and_query: &path,
        headers: vec![
            ("content-type", "application/json".into()),
            ("accept", "application/json".into()),
        ],
        body: Some(Payload::Bytes(body.as_bytes())),
        max_answer_bytes: MAX_ANSWER_BYTES,
        // The same update twice would use each id twice; the second is
        // refused, so a resend cannot attach a file twice, but it would turn
        // a success into an error.
        idempotent: false,
    };
    let files = || ids.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
    let response = client.send(&spec).map_err(|e| call_error(e, files()))?;
    let entry = first_entry(&response.body);
    let status = entry
        .as_ref()
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str);
    if status == Some("success") {
        let text = |key: &str| {
            entry
                .as_ref()
                .and_then(|e| e.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Ok(RecordStatus {
            record_id: record_id.to_owned(),
            code: text("code"),
            message: text("message"),
        });
    }
    let mut error = match &entry {
        Some(entry) if response.status < 500 && response.status != 429 => {
            api::error_from(response.status, entry.to_string().as_bytes(), None)
        }
        _ => api::error_from(
            response.status,
            &response.body,
            response
                .header("retry-after")
                .and_then(api::retry_after_seconds),
        ),
    };
    // Which value was refused is in the entry's details: the record id, or
    // a file id (unknown, or used up by an earlier attachment).
    let details = |key: &str| {
        entry
            .as_ref()
            .and_then(|e| e.pointer(&format!("/details/{key}")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if error.code.as_deref() == Some("INVALID_DATA") {
        if details("json_path").ends_with("file_id") {
            error.message = format!(
                "{} (a file id is refused when unknown or already attached: an uploaded id \
                 can be attached once, so upload the file again to attach it again)",
                error.message
            );
        } else if details("api_name") == "id" {
            error.message = format!(
                "{} (no {module} record has the id {record_id})",
                error.message
            );
        }
    }
    explain(&mut error, RECORDS_SCOPE);
    Err(Error::Api {
        error,
        files: files(),
        uploaded: vec![],
    })
}

/// Posts `attachment` to record `record_id` and returns the attachment's id.
pub fn upload_attachment(
    client: &mut Client<'_>,
    module: &str,
    record_id: &str,
    attachment: Attachment<'_>,
) -> Result<String, Error> {
    check_target(module, record_id)?;
    let (label, part) = match attachment {
        Attachment::File {
            name,
            content_type,
            data,
        } => {
            multipart::check_file_name(name).map_err(|e| invalid(name, &e.to_string()))?;
            let content_type = multipart::content_type_for(content_type, name);
            multipart::check_content_type(content_type)
                .map_err(|e| invalid(name, &e.to_string()))?;
            if data.len() > MAX_FILE_BYTES {
                return Err(Error::TooLarge {
                    index: 0,
                    name: name.to_owned(),
                    size: data.len(),
                    limit: MAX_FILE_BYTES,
                });
            }
            (name, Part::file(name, content_type, data))
        }
        Attachment::Link(url) => {
            let url = url.trim();
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.chars().any(char::is_control) {
                return Err(invalid(url, "a link must be an http or https URL"));
            }
            (url, Part::text("attachmentUrl", url))
        }
    };
    let body = Body::new(multipart::boundary(client.random()), vec![part]);
    let path = format!(
        "/bigin/v2/{module}/{}/Attachments",
        percent_encode(record_id)
    );
    let spec = Spec::post_multipart(&path, &body, MAX_ANSWER_BYTES);
    let files = || vec![label.to_owned()];
    let response = client.send(&spec).map_err(|e| call_error(e, files()))?;
    let entry = first_entry(&response.body);
    let id = entry
        .as_ref()
        .filter(|e| e.get("status").and_then(Value::as_str) == Some("success"))
        .and_then(|e| e.pointer("/details/id"))
        .and_then(Value::as_str);
    match id {
        Some(id) if response.status == 200 => Ok(id.to_owned()),
        _ => {
            let mut error = api::error_from(
                response.status,
                &response.body,
                response
                    .header("retry-after")
                    .and_then(api::retry_after_seconds),
            );
            if response.status == 200 {
                error = ApiError {
                    class: ErrorClass::Other,
                    message: "the answer gives no attachment id".into(),
                    ..error
                };
            }
            explain(&mut error, RECORDS_SCOPE);
            Err(Error::Api {
                error,
                files: files(),
                uploaded: vec![],
            })
        }
    }
}

/// Refuses an unknown module or an unusable record id before any call.
fn check_target(module: &str, record_id: &str) -> Result<(), Error> {
    if !MODULES.contains(&module) {
        return Err(invalid(
            module,
            &format!("unknown module: use one of {}", MODULES.join(", ")),
        ));
    }
    if record_id.is_empty() || !record_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid(record_id, "a record id is letters and digits"));
    }
    Ok(())
}

fn is_field_name(field: &str) -> bool {
    let mut chars = field.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn invalid(what: &str, reason: &str) -> Error {
    Error::InvalidFile {
        index: 0,
        name: what.escape_debug().to_string(),
        reason: reason.to_owned(),
    }
}

fn call_error(e: CallError, files: Vec<String>) -> Error {
    match e {
        // A lost answer to an update or an attachment may have taken
        // effect, like an upload's.
        CallError::Transport(fault) if fault.body_sent => Error::PossiblyUploaded {
            kind: fault.kind,
            message: fault.message,
            sent: files.clone(),
            files,
            uploaded: vec![],
        },
        CallError::Transport(fault) => Error::Transport {
            kind: fault.kind,
            body_sent: fault.body_sent,
            message: fault.message,
            files,
            uploaded: vec![],
        },
        CallError::Token(error) => Error::Token {
            error,
            files,
            uploaded: vec![],
        },
    }
}

/// `data[0]` of a records or attachments answer.
fn first_entry(body: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("data")?.get(0).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_shape_is_one_list_of_file_ids() {
        assert_eq!(
            file_field_value(&["a", "b"]).to_string(),
            r#"[{"file_id":"a"},{"file_id":"b"}]"#
        );
    }

    #[test]
    fn targets_are_checked() {
        assert!(check_target("Contacts", "123").is_ok());
        assert!(check_target("Leads", "123").is_err());
        assert!(check_target("contacts", "123").is_err());
        assert!(check_target("Contacts", "1/../2").is_err());
        assert!(is_field_name("Resume_File"));
        assert!(!is_field_name("1abc") && !is_field_name("a-b") && !is_field_name(""));
    }
}

//! `GET /bigin/v2/{module}/{record_id}` and `PUT /bigin/v2/{module}`: the
//! part of Bigin's records API that attaches uploaded files to a record's
//! file-upload fields, plus what every module route checks first.

use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::file_field;
use crate::response::{self, Body};
use crate::state::Shared;
use crate::timestamp;
use crate::upload::{self, REQUEST_TOO_LARGE_CODE};

/// The modules this server knows, spelt as in the URL (case matters).
/// Bigin's Attachments API documentation lists these.
pub const MODULES: [&str; 7] = [
    "Contacts",
    "Pipelines",
    "Accounts",
    "Products",
    "Tasks",
    "Events",
    "Notes",
];

/// Most records one `PUT` may carry. Zoho CRM documents 100 per call for
/// its records API; Bigin's number is unconfirmed.
pub const MAX_RECORDS_PER_UPDATE: usize = 100;

/// Largest `PUT` body read. Our own bound, far above what 100 records of
/// file ids need.
pub const MAX_UPDATE_BODY_BYTES: usize = 1024 * 1024;

/// The user every record and attachment is created and modified by, as
/// the `*_By` objects of an answer show it.
pub(crate) fn local_user() -> Value {
    json!({ "name": "Local", "id": "1" })
}

pub(crate) fn is_module(name: &str) -> bool {
    MODULES.contains(&name)
}

/// A field's API name: a letter, then letters, digits and underscores.
pub(crate) fn is_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a record created through the library or the control endpoint:
/// a known module, field names that [`is_field_name`] accepts, and no
/// `id`, which the server assigns.
pub(crate) fn check_new_record(module: &str, fields: &Map<String, Value>) -> Result<(), String> {
    if !is_module(module) {
        return Err(format!(
            "unknown module {module:?}; expected one of {}",
            MODULES.join(", ")
        ));
    }
    if fields.contains_key("id") {
        return Err("fields must not hold `id`: the server assigns it".to_owned());
    }
    match fields.keys().find(|name| !is_field_name(name)) {
        Some(name) => Err(format!("field name {name:?} is not a valid API name")),
        None => Ok(()),
    }
}

/// What every module route checks before anything else, in this order: a
/// valid token (401 `INVALID_TOKEN`), then a known module (400
/// `INVALID_MODULE`). Returns the refusal, if any.
pub(crate) fn gate(headers: &HeaderMap, shared: &Shared, module: &str) -> Option<Response<Body>> {
    if !shared.is_authorized(headers) {
        return Some(response::api_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ));
    }
    if !is_module(module) {
        return Some(response::api_error_with(
            StatusCode::BAD_REQUEST,
            "INVALID_MODULE",
            response::stock_message("INVALID_MODULE"),
            json!({ "resource_path_index": 0 }),
        ));
    }
    None
}

/// `GET /bigin/v2/{module}/{record_id}`: 200 with `{"data":[record]}`, or
/// 204 when the module has no such record.
pub(crate) fn get(headers: &HeaderMap, shared: &Shared, module: &str, id: &str) -> Response<Body> {
    if let Some(refusal) = gate(headers, shared, module) {
        return refusal;
    }
    match shared.record(module, id) {
        Some(record) => response::json(StatusCode::OK, &json!({ "data": [record] })),
        None => response::empty(StatusCode::NO_CONTENT),
    }
}

/// One record entry of an update, as read from the body.
pub(crate) struct RecordUpdate {
    pub(crate) id: String,
    /// Each file-upload field named, with the file ids to attach to it.
    pub(crate) fields: Vec<(String, Vec<String>)>,
}

/// Why the server refused an entry that was well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpdateError {
    /// The module has no record with the entry's id.
    UnknownRecord,
    /// No stored file has the `index`th id given for `field`.
    UnknownFile { field: String, index: usize },
    /// The file was attached before (or earlier in the same entry).
    UsedFile { field: String, index: usize },
}

/// `PUT /bigin/v2/{module}`. Whole-request refusals use Bigin's error
/// shape; otherwise each entry of `data` gets its own answer, in order,
/// and the status says how many succeeded (200 all, 207 some, 400 none).
pub(crate) async fn update(
    request: Request<Incoming>,
    shared: &Shared,
    module: &str,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let mut body = Limited::new(body, MAX_UPDATE_BODY_BYTES);
    if let Some(refusal) = gate(&parts.headers, shared, module) {
        return after_drain(&mut body, refusal).await;
    }
    if upload::content_length(&parts.headers)
        .is_some_and(|length| length > MAX_UPDATE_BODY_BYTES as u64)
    {
        return too_large();
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        // The client broke the body off; it will not read an answer.
        Err(_) => {
            return response::close_after(response::api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
            ));
        }
    };

    let data = match read_data(&bytes) {
        Ok(data) => data,
        Err(refusal) => return refusal,
    };
    let modified_time = timestamp::now();
    let mut succeeded = 0;
    let answers: Vec<Value> = data
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let outcome = read_entry(index, entry).and_then(|update| {
                shared
                    .update_record(module, &update)
                    .map(|()| update.id)
                    .map_err(|error| update_error_entry(index, error))
            });
            match outcome {
                Ok(id) => {
                    succeeded += 1;
                    json!({
                        "code": "SUCCESS",
                        "details": { "id": id, "Modified_Time": modified_time },
                        "message": "record updated",
                        "status": "success",
                    })
                }
                Err(answer) => answer,
            }
        })
        .collect();
    let status = if succeeded == answers.len() {
        StatusCode::OK
    } else if succeeded > 0 {
        StatusCode::MULTI_STATUS
    } else {
        StatusCode::BAD_REQUEST
    };
    response::json(status, &json!({ "data": answers }))
}

/// Reads the rest of a refused request's body so that a client still
/// sending sees the answer rather than a reset, then answers.
async fn after_drain(body: &mut upload::RequestBody, answer: Response<Body>) -> Response<Body> {
    if upload::drain(body).await {
        answer
    } else {
        response::close_after(answer)
    }
}

fn too_large() -> Response<Body> {
    response::close_after(response::api_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        REQUEST_TOO_LARGE_CODE,
    ))
}

/// The `data` array of an update body, or the whole-request refusal:
/// - not JSON, or not an object: 400 `INVALID_DATA`, `details: {}`;
/// - no `data`: 400 `MANDATORY_NOT_FOUND`, `details: {"api_name":"data"}`;
/// - `data` not an array, or empty: 400 `INVALID_DATA`, same details;
/// - more than [`MAX_RECORDS_PER_UPDATE`] entries: 400 `LIMIT_EXCEEDED`,
///   `details: {"api_name":"data","limit":100}`.
#[expect(
    clippy::result_large_err,
    reason = "the error is the response itself, built once per request"
)]
fn read_data(bytes: &[u8]) -> Result<Vec<Value>, Response<Body>> {
    let refuse = |code: &str, message: &str, details: Value| {
        response::api_error_with(StatusCode::BAD_REQUEST, code, message, details)
    };
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|_| refuse("INVALID_DATA", "the body is not valid JSON", json!({})))?;
    let Value::Object(mut body) = body else {
        return Err(refuse(
            "INVALID_DATA",
            "the body must be a JSON object",
            json!({}),
        ));
    };
    let details = json!({ "api_name": "data" });
    match body.remove("data") {
        None => Err(refuse(
            "MANDATORY_NOT_FOUND",
            "the body has no `data`",
            details,
        )),
        Some(Value::Array(data)) if data.is_empty() => {
            Err(refuse("INVALID_DATA", "`data` holds no records", details))
        }
        Some(Value::Array(data)) if data.len() > MAX_RECORDS_PER_UPDATE => Err(refuse(
            "LIMIT_EXCEEDED",
            response::stock_message("LIMIT_EXCEEDED"),
            json!({ "api_name": "data", "limit": MAX_RECORDS_PER_UPDATE }),
        )),
        Some(Value::Array(data)) => Ok(data),
        Some(_) => Err(refuse(
            "INVALID_DATA",
            "`data` must be a list of records",
            details,
        )),
    }
}

/// Reads entry `index` of `data`: an object with a string `id` and any
/// number of file-upload fields. The error is the entry's answer.
fn read_entry(index: usize, entry: &Value) -> Result<RecordUpdate, Value> {
    let Some(object) = entry.as_object() else {
        return Err(error_entry(
            "INVALID_DATA",
            "each entry of `data` must be a JSON object",
            json!({ "json_path": format!("$.data[{index}]") }),
        ));
    };
    let id_details = json!({ "api_name": "id" });
    let id = match object.get("id") {
        None => {
            return Err(error_entry(
                "MANDATORY_NOT_FOUND",
                "the record's id is missing",
                id_details,
            ));
        }
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(_) => {
            return Err(error_entry(
                "INVALID_DATA",
                "the id must be a non-empty string",
                id_details,
            ));
        }
    };
    let mut fields = Vec::new();
    for (name, value) in object.iter().filter(|(name, _)| *name != "id") {
        if !is_field_name(name) {
            return Err(error_entry(
                "INVALID_DATA",
                "the field name is not a valid API name",
                json!({ "api_name": name, "json_path": format!("$.data[{index}]") }),
            ));
        }
        let ids = file_field::requested_ids(value).map_err(|error| {
            error_entry(
                "INVALID_DATA",
                error.message,
                json!({
                    "api_name": name,
                    "json_path": format!("$.data[{index}].{name}{}", error.suffix),
                }),
            )
        })?;
        fields.push((name.clone(), ids));
    }
    Ok(RecordUpdate { id, fields })
}

fn update_error_entry(index: usize, error: UpdateError) -> Value {
    match error {
        UpdateError::UnknownRecord => error_entry(
            "INVALID_DATA",
            "the id given seems to be invalid",
            json!({ "api_name": "id" }),
        ),
        UpdateError::UnknownFile { field, index: at } => error_entry(
            "INVALID_DATA",
            "the file id given seems to be invalid",
            json!({ "api_name": field, "json_path": file_field::id_json_path(index, &field, at) }),
        ),
        UpdateError::UsedFile { field, index: at } => error_entry(
            "INVALID_DATA",
            "the file id is already used: an attached file is consumed, upload it again to attach it again",
            json!({ "api_name": field, "json_path": file_field::id_json_path(index, &field, at) }),
        ),
    }
}

/// One entry's error answer, in Bigin's error shape.
fn error_entry(code: &str, message: &str, details: Value) -> Value {
    json!({ "code": code, "details": details, "message": message, "status": "error" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_follow_the_api_name_rule() {
        for good in ["Photo", "File_Upload_1", "a", "Z9_"] {
            assert!(is_field_name(good), "{good}");
        }
        for bad in ["", "1Photo", "_x", "Photo-1", "Pho to", "Photo.x", "Fötö"] {
            assert!(!is_field_name(bad), "{bad}");
        }
    }

    #[test]
    fn entries_are_read_or_answered() {
        let update = read_entry(0, &json!({"id": "7", "Doc": [{"file_id": "f"}]}));
        let update = update.expect("a valid entry");
        assert_eq!(update.id, "7");
        assert_eq!(
            update.fields,
            vec![("Doc".to_owned(), vec!["f".to_owned()])]
        );

        let answer = |entry: Value| read_entry(3, &entry).err().expect("a refusal");
        assert_eq!(
            answer(json!([]))["details"],
            json!({"json_path": "$.data[3]"})
        );
        assert_eq!(answer(json!({}))["code"], "MANDATORY_NOT_FOUND");
        assert_eq!(
            answer(json!({"id": 7}))["details"],
            json!({"api_name": "id"})
        );
        assert_eq!(
            answer(json!({"id": "7", "Doc": [{"file_id": 1}]}))["details"],
            json!({"api_name": "Doc", "json_path": "$.data[3].Doc[0].file_id"})
        );
        assert_eq!(
            answer(json!({"id": "7", "bad-name": []}))["details"]["api_name"],
            "bad-name"
        );
    }

    #[test]
    fn new_records_are_checked() {
        let fields = |value: Value| value.as_object().cloned().unwrap_or_default();
        assert!(check_new_record("Contacts", &fields(json!({"Last_Name": "X"}))).is_ok());
        assert!(check_new_record("contacts", &Map::new()).is_err());
        assert!(check_new_record("Contacts", &fields(json!({"id": "1"}))).is_err());
        assert!(check_new_record("Contacts", &fields(json!({"a b": 1}))).is_err());
    }
}

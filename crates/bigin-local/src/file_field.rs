//! The JSON shape of a record's file-upload field: what an update sends,
//! what the record then holds, and where an error points.
//!
//! Unconfirmed for Bigin (marked \[?\] in the API notes): this is Zoho CRM
//! v2's form, a list of `{"file_id": "<encrypted id>"}`, while later CRM
//! versions name the key `File_Id__s`. Everything that depends on the shape
//! is in this file so that a confirmed answer changes only this file.

use serde_json::{Map, Value, json};

/// The key naming an uploaded file's id inside one list item.
const FILE_ID_KEY: &str = "file_id";

/// Why a field value is not a list of `{"file_id": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShapeError {
    /// Where the fault is, relative to the field: `""` for the value
    /// itself, else `"[N]"` or `"[N].file_id"`.
    pub(crate) suffix: String,
    /// For the client, in the error's `message`.
    pub(crate) message: &'static str,
}

/// Reads the file ids an update puts in a file-upload field, in order.
/// Each item must be an object holding exactly one key, `file_id`, with a
/// non-empty string.
pub(crate) fn requested_ids(value: &Value) -> Result<Vec<String>, ShapeError> {
    let items = value.as_array().ok_or_else(|| ShapeError {
        suffix: String::new(),
        message: "a file-upload field takes a list of {\"file_id\": \"...\"}",
    })?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let object = item
                .as_object()
                .filter(|object| object.len() == 1)
                .ok_or_else(|| ShapeError {
                    suffix: format!("[{index}]"),
                    message: "each item must be {\"file_id\": \"...\"} and nothing else",
                })?;
            object
                .get(FILE_ID_KEY)
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| ShapeError {
                    suffix: format!("[{index}].{FILE_ID_KEY}"),
                    message: "file_id must be a non-empty string",
                })
        })
        .collect()
}

/// The `json_path` of the `index`th file id of `field` in the `entry`th
/// record of an update body.
pub(crate) fn id_json_path(entry: usize, field: &str, index: usize) -> String {
    format!("$.data[{entry}].{field}[{index}].{FILE_ID_KEY}")
}

/// What the record holds for one attached file.
pub(crate) fn attached(file_id: &str, file_name: &str, size: u64) -> Value {
    json!({ FILE_ID_KEY: file_id, "file_name": file_name, "size": size })
}

/// Adds newly attached files to a record's field. Zoho CRM v2 adds to
/// what a file-upload field holds (removal is a separate `_delete` item,
/// not supported here), so a list grows; any other earlier value is
/// replaced.
pub(crate) fn append(fields: &mut Map<String, Value>, field: &str, new: Vec<Value>) {
    match fields.get_mut(field) {
        Some(Value::Array(items)) => items.extend(new),
        _ => {
            fields.insert(field.to_owned(), Value::Array(new));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_list() {
        let value = json!([{"file_id": "a1"}, {"file_id": "b2"}]);
        assert_eq!(requested_ids(&value), Ok(vec!["a1".into(), "b2".into()]));
        assert_eq!(requested_ids(&json!([])), Ok(vec![]));
    }

    #[test]
    fn refuses_other_shapes_and_says_where() {
        let suffix = |value: Value| requested_ids(&value).map_err(|e| e.suffix);
        assert_eq!(suffix(json!("a1")), Err(String::new()));
        assert_eq!(suffix(json!({"file_id": "a1"})), Err(String::new()));
        assert_eq!(suffix(json!([{"file_id": "a"}, "b"])), Err("[1]".into()));
        assert_eq!(
            suffix(json!([{"file_id": "a", "extra": 1}])),
            Err("[0]".into())
        );
        assert_eq!(
            suffix(json!([{"File_Id__s": "a"}])),
            Err("[0].file_id".into())
        );
        assert_eq!(suffix(json!([{"file_id": 7}])), Err("[0].file_id".into()));
        assert_eq!(suffix(json!([{"file_id": ""}])), Err("[0].file_id".into()));
    }

    #[test]
    fn appends_to_a_list_and_replaces_anything_else() {
        let mut fields = Map::new();
        fields.insert("Photo".into(), json!("not a list"));
        append(&mut fields, "Photo", vec![attached("a", "a.png", 1)]);
        append(&mut fields, "Photo", vec![attached("b", "b.png", 2)]);
        append(&mut fields, "Doc", vec![]);
        assert_eq!(
            Value::Object(fields),
            json!({
                "Photo": [
                    {"file_id": "a", "file_name": "a.png", "size": 1},
                    {"file_id": "b", "file_name": "b.png", "size": 2},
                ],
                "Doc": [],
            })
        );
        assert_eq!(id_json_path(2, "Doc", 1), "$.data[2].Doc[1].file_id");
    }
}

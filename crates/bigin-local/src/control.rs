//! The `/_local/` control endpoints tests use to inspect and steer the
//! server. No authentication: they exist for loopback test use only.

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::model::Fault;
use crate::records;
use crate::response::{self, Body};
use crate::state::Shared;

/// Largest control request body read.
const BODY_LIMIT: usize = 1024 * 1024;

/// The body of `POST /_local/config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigPatch {
    /// `null` or absent turns the trigger off.
    expire_after_uploads: Option<u32>,
}

/// The body of `POST /_local/records`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRecord {
    module: String,
    /// Absent means no fields.
    #[serde(default)]
    fields: Map<String, Value>,
}

/// Where `GET /_local/records/{module}/{id}` is.
const RECORDS_PREFIX: &str = "/_local/records/";

/// The `{module}` and `{id}` of a `/_local/records/{module}/{id}` path.
fn record_path(path: &str) -> Option<(&str, &str)> {
    let (module, id) = path.strip_prefix(RECORDS_PREFIX)?.split_once('/')?;
    (!module.is_empty() && !id.is_empty() && !id.contains('/')).then_some((module, id))
}

/// The route template a control path with parameters is counted under in
/// [`Stats::requests`]; `None` for the fixed paths and unknown ones.
///
/// [`Stats::requests`]: crate::Stats::requests
pub(crate) fn template(path: &str) -> Option<&'static str> {
    record_path(path).map(|_| "/_local/records/{module}/{id}")
}

/// Routes a request whose path starts with `/_local/`.
pub(crate) async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if let Some((module, id)) = record_path(&path) {
        return match (method, shared.record(module, id)) {
            (Method::GET, Some(record)) => response::json(StatusCode::OK, &record),
            (Method::GET, None) => response::plain(StatusCode::NOT_FOUND, "no such record"),
            _ => response::plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        };
    }
    match (path.as_str(), method) {
        ("/_local/records", Method::POST) => {
            let new: NewRecord = match read_json(request).await {
                Ok(new) => new,
                Err(error) => return response::plain(StatusCode::BAD_REQUEST, &error),
            };
            if let Err(error) = records::check_new_record(&new.module, &new.fields) {
                return response::plain(StatusCode::BAD_REQUEST, &error);
            }
            let id = shared.create_record(&new.module, new.fields);
            response::json(StatusCode::OK, &json!({ "id": id }))
        }
        ("/_local/stats", Method::GET) => response::json(StatusCode::OK, &shared.stats()),
        ("/_local/faults", Method::POST) => {
            let faults: Vec<Fault> = match read_json(request).await {
                Ok(faults) => faults,
                Err(error) => return response::plain(StatusCode::BAD_REQUEST, &error),
            };
            if let Err(error) = faults.iter().try_for_each(Fault::validate) {
                return response::plain(StatusCode::BAD_REQUEST, &format!("{error:#}"));
            }
            let queued = shared.push_faults(faults);
            response::json(StatusCode::OK, &json!({ "queued": queued }))
        }
        ("/_local/faults", Method::DELETE) => {
            shared.clear_faults();
            response::json(StatusCode::OK, &json!({ "queued": 0 }))
        }
        ("/_local/config", Method::GET) => config_answer(shared),
        ("/_local/config", Method::POST) => {
            let patch: ConfigPatch = match read_json(request).await {
                Ok(patch) => patch,
                Err(error) => return response::plain(StatusCode::BAD_REQUEST, &error),
            };
            shared.set_expire_after_uploads(patch.expire_after_uploads);
            config_answer(shared)
        }
        ("/_local/stats" | "/_local/faults" | "/_local/config" | "/_local/records", _) => {
            response::plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => response::plain(StatusCode::NOT_FOUND, "no such control endpoint"),
    }
}

fn config_answer(shared: &Shared) -> Response<Body> {
    response::json(
        StatusCode::OK,
        &json!({ "expire_after_uploads": shared.expire_after_uploads() }),
    )
}

/// Reads a JSON body of at most [`BODY_LIMIT`] bytes. The error is a
/// message for the test that sent it.
async fn read_json<T: DeserializeOwned>(request: Request<Incoming>) -> Result<T, String> {
    let bytes = Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|error| format!("reading the body: {error}"))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|error| format!("invalid JSON: {error}"))
}

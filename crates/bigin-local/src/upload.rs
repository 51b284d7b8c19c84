//! `POST /bigin/v2/files`: authenticate, apply a queued fault, read the
//! multipart body strictly, store the files, answer as Bigin does.

use bytes::Bytes;
use http_body_util::{BodyDataStream, BodyExt as _, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::disposition::parse_part_disposition;
use crate::model::{Fault, PartRecord, UploadRecord};
use crate::response::{self, Body, FileCount};
use crate::state::{NewFile, Shared};

/// Most files one upload request may carry (marked \[C\] in the API notes: Zoho
/// CRM's `maxItems: 10`).
pub const MAX_FILES_PER_REQUEST: usize = 10;

/// Largest file accepted: Bigin documents "20 Mb", read as 20 MiB.
pub const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

/// Largest request body accepted: ten maximal files plus 1 MiB for the
/// multipart framing. A `Content-Length` above it is refused before the
/// body is read; a chunked body is cut off when it passes it.
pub const MAX_REQUEST_BYTES: u64 = MAX_FILES_PER_REQUEST as u64 * MAX_FILE_BYTES + 1024 * 1024;

/// The code sent with 413 for an oversized request. Bigin documents no
/// code for this case; keep the guess in one place.
pub(crate) const REQUEST_TOO_LARGE_CODE: &str = "REQUEST_ENTITY_TOO_LARGE";

/// The body as the handler reads it: never more than [`MAX_REQUEST_BYTES`].
pub(crate) type RequestBody = Limited<Incoming>;

/// Handles one upload request. `kill` closes the connection when notified.
///
/// For the `reset_mid_body` and `stall` faults this never returns: the
/// connection task drops it when the connection is closed.
pub(crate) async fn handle(
    request: Request<Incoming>,
    shared: &Shared,
    kill: &Notify,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let mut record = UploadRecord {
        content_length: content_length(&parts.headers),
        chunked: is_chunked(&parts.headers),
        ..UploadRecord::default()
    };
    let limit = usize::try_from(MAX_REQUEST_BYTES).unwrap_or(usize::MAX);
    let mut body = Limited::new(body, limit);

    // A `pass` fault takes its turn in the queue and changes nothing, so a
    // test can let some requests through before a fault.
    if let Some(fault) = shared.pop_fault().filter(|f| !matches!(f, Fault::Pass)) {
        record.fault = Some(fault.kind().to_owned());
        return apply_fault(fault, &parts.headers, body, record, shared, kill).await;
    }

    if record
        .content_length
        .is_some_and(|length| length > MAX_REQUEST_BYTES)
    {
        let refusal = Refusal::too_large("Content-Length over the request limit");
        return finish(shared, record, refusal.into_response(false));
    }

    if !shared.is_authorized(&parts.headers) {
        // Read the body anyway so that the client, still sending, gets the
        // 401 rather than a reset connection.
        let complete = drain(&mut body).await;
        let refusal = Refusal::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            "no valid access token",
        );
        return finish(shared, record, refusal.into_response(complete));
    }

    let mut files = Vec::new();
    let outcome = read_files(&parts.headers, &mut body, &mut files).await;
    record.file_count = files.len();
    record.files = files.iter().map(ParsedFile::record).collect();

    let response = match outcome {
        Err(refusal) => {
            let complete = !refusal.close && drain(&mut body).await;
            refusal.into_response(complete)
        }
        Ok(()) => answer_success(shared, files),
    };
    finish(shared, record, response)
}

async fn apply_fault(
    fault: Fault,
    headers: &HeaderMap,
    mut body: RequestBody,
    mut record: UploadRecord,
    shared: &Shared,
    kill: &Notify,
) -> Response<Body> {
    match fault {
        Fault::Early {
            status,
            code,
            message,
            retry_after,
        } => {
            let response =
                fault_response(status, &code, message.as_deref(), retry_after.as_deref());
            // The answer goes out before any of the body is read; the body
            // is then read to its end and thrown away, as a careful server
            // does, so that closing with unread bytes does not turn into a
            // reset that destroys the answer before the client reads it.
            tokio::spawn(async move {
                let _ = drain(&mut body).await;
            });
            finish(shared, record, response::close_after(response))
        }
        Fault::Status {
            status,
            code,
            message,
            retry_after,
        } => {
            // Parsed only to record what was sent; the fault wins whatever
            // the body holds, and nothing is stored.
            let mut files = Vec::new();
            let _ = read_files(headers, &mut body, &mut files).await;
            record.file_count = files.len();
            record.files = files.iter().map(ParsedFile::record).collect();
            let complete = drain(&mut body).await;
            let mut response =
                fault_response(status, &code, message.as_deref(), retry_after.as_deref());
            if !complete {
                response = response::close_after(response);
            }
            finish(shared, record, response)
        }
        Fault::ResetMidBody => {
            read_some(&mut body, record.content_length).await;
            shared.record_upload(record);
            crate::server::log_request(shared, "POST", "/bigin/v2/files", "reset (fault)");
            kill.notify_one();
            std::future::pending().await
        }
        Fault::Pass => unreachable_pass(shared, record),
        Fault::Stall => {
            drain(&mut body).await;
            shared.record_upload(record);
            crate::server::log_request(shared, "POST", "/bigin/v2/files", "stalled (fault)");
            std::future::pending().await
        }
    }
}

/// `Pass` never reaches [`apply_fault`]; answering 500 keeps a future
/// change from passing silently.
fn unreachable_pass(shared: &Shared, record: UploadRecord) -> Response<Body> {
    let refusal = Refusal::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
        "a pass fault was applied",
    );
    finish(shared, record, refusal.into_response(false))
}

/// Records the answer and tags the response with the file count for the
/// request log.
fn finish(
    shared: &Shared,
    mut record: UploadRecord,
    mut response: Response<Body>,
) -> Response<Body> {
    record.status = Some(response.status().as_u16());
    record.code = response
        .extensions()
        .get::<ErrorCode>()
        .map(|c| c.0.clone());
    response
        .extensions_mut()
        .insert(FileCount(record.file_count));
    shared.record_upload(record);
    response
}

/// The error code of a response, kept beside it for [`UploadRecord::code`].
#[derive(Clone)]
struct ErrorCode(String);

fn fault_response(
    status: u16,
    code: &str,
    message: Option<&str>,
    retry_after: Option<&str>,
) -> Response<Body> {
    // `Fault::validate` refuses these on the control endpoint; a fault
    // pushed through the library unchecked still gets a well-formed answer.
    let status = Some(status)
        .filter(|s| (200..=599).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = message.unwrap_or_else(|| response::stock_message(code));
    let mut response = response::api_error_with(status, code, message, json!({}));
    response.extensions_mut().insert(ErrorCode(code.to_owned()));
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn answer_success(shared: &Shared, files: Vec<ParsedFile>) -> Response<Body> {
    let names: Vec<String> = files.iter().map(|f| f.filename.clone()).collect();
    let new_files = files
        .into_iter()
        .map(|f| NewFile {
            name: f.filename,
            content_type: f.content_type,
            bytes: Bytes::from(f.bytes),
        })
        .collect();
    let ids = match shared.store_upload(new_files) {
        Ok(ids) => ids,
        Err(error) => {
            crate::server::log_error(shared, &error);
            let refusal = Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "could not make ids",
            );
            return refusal.into_response(true);
        }
    };
    let data: Vec<_> = names
        .iter()
        .zip(&ids)
        .map(|(name, id)| {
            json!({
                "code": "SUCCESS",
                "details": {"name": name, "id": id},
                "message": format!("{name} uploaded Successfully"),
                "status": "success",
            })
        })
        .collect();
    response::json(StatusCode::OK, &json!({ "data": data }))
}

/// A file part as read from the body.
struct ParsedFile {
    filename: String,
    content_type: Option<String>,
    /// The content; left empty for a part refused as too large.
    bytes: Vec<u8>,
    size: u64,
}

impl ParsedFile {
    fn record(&self) -> PartRecord {
        PartRecord {
            filename: self.filename.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
        }
    }
}

/// Why an upload (or an attachment upload) is refused, and whether the
/// connection must close because the rest of the body cannot be read.
pub(crate) struct Refusal {
    status: StatusCode,
    code: &'static str,
    /// The error body's `details`; `{}` unless set.
    details: Value,
    /// For the request log only: the client sees `code`.
    reason: String,
    pub(crate) close: bool,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            code,
            details: json!({}),
            reason: reason.into(),
            close: false,
        }
    }

    pub(crate) fn with_details(self, details: Value) -> Self {
        Self { details, ..self }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", reason)
    }

    pub(crate) fn attachment(reason: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "failure_in_attachment_handling",
            reason,
        )
    }

    pub(crate) fn too_large(reason: impl Into<String>) -> Self {
        Self {
            close: true,
            ..Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                REQUEST_TOO_LARGE_CODE,
                reason,
            )
        }
    }

    /// The file-size refusal, for a part found over [`MAX_FILE_BYTES`].
    pub(crate) fn file_too_large() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "FILE_SIZE_MORE_THAN_ALLOWED_SIZE",
            "a file is over the size limit",
        )
    }

    pub(crate) fn from_multer(error: multer::Error) -> Self {
        match &error {
            multer::Error::StreamReadFailed(source)
                if source.downcast_ref::<LengthLimitError>().is_some() =>
            {
                Self::too_large("body over the request limit")
            }
            // The body itself broke (the client went away or sent a bad
            // chunk): nothing more can be read from it.
            multer::Error::StreamReadFailed(_) => Self {
                close: true,
                ..Self::invalid(format!("multipart: {error}"))
            },
            _ => Self::invalid(format!("multipart: {error}")),
        }
    }

    /// The answer; `complete` says whether the whole body was read, so the
    /// connection can serve another request.
    pub(crate) fn into_response(self, complete: bool) -> Response<Body> {
        let mut response = response::api_error_with(
            self.status,
            self.code,
            response::stock_message(self.code),
            self.details,
        );
        response
            .extensions_mut()
            .insert(ErrorCode(self.code.to_owned()));
        response.extensions_mut().insert(RefusalReason(self.reason));
        if self.close || !complete {
            response = response::close_after(response);
        }
        response
    }
}

/// Why a request was refused, for the request log.
#[derive(Clone)]
pub(crate) struct RefusalReason(pub(crate) String);

/// A multipart reader over `body`, with the boundary its `Content-Type`
/// names; a missing or unusable one is refused as an invalid request.
pub(crate) fn open_multipart<'a>(
    headers: &HeaderMap,
    body: &'a mut RequestBody,
) -> Result<multer::Multipart<'a>, Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .ok_or_else(|| Refusal::invalid("no Content-Type"))?
        .to_str()
        .map_err(|e| Refusal::invalid(format!("Content-Type: {e}")))?;
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| Refusal::invalid(format!("Content-Type: {e}")))?;
    Ok(multer::Multipart::new(BodyDataStream::new(body), boundary))
}

/// Reads every part into `files`, stopping at the first reason to refuse
/// the request. Parts read before the refusal stay in `files` for the
/// statistics.
async fn read_files(
    headers: &HeaderMap,
    body: &mut RequestBody,
    files: &mut Vec<ParsedFile>,
) -> Result<(), Refusal> {
    let mut multipart = open_multipart(headers, body)?;

    while let Some(mut field) = multipart.next_field().await.map_err(Refusal::from_multer)? {
        let raw = field
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .ok_or_else(|| Refusal::invalid("a part has no Content-Disposition"))?;
        let disposition = parse_part_disposition(raw.as_bytes())
            .map_err(|e| Refusal::invalid(format!("Content-Disposition: {e}")))?;
        if disposition.name.as_deref() != Some("file") {
            return Err(Refusal::invalid("a part is not named `file`"));
        }
        let filename = disposition
            .filename
            .filter(|name| !name.is_empty())
            .ok_or_else(|| Refusal::attachment("a `file` part has no file name"))?;
        if files.len() >= MAX_FILES_PER_REQUEST {
            return Err(Refusal::invalid("more than the allowed number of files"));
        }
        let content_type = match field.headers().get(header::CONTENT_TYPE) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|e| Refusal::invalid(format!("part Content-Type: {e}")))?
                    .to_owned(),
            ),
        };

        let mut file = ParsedFile {
            filename,
            content_type,
            bytes: Vec::new(),
            size: 0,
        };
        let refusal = loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    file.size += chunk.len() as u64;
                    // Stop at the first byte past the limit rather than
                    // buffer a file that will be refused anyway.
                    if file.size > MAX_FILE_BYTES {
                        file.bytes = Vec::new();
                        break Some(Refusal::file_too_large());
                    }
                    file.bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break None,
                Err(error) => break Some(Refusal::from_multer(error)),
            }
        };
        files.push(file);
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
    }

    if files.is_empty() {
        return Err(Refusal::attachment("no `file` part"));
    }
    Ok(())
}

/// Reads and discards the rest of the body. Returns whether it ended
/// normally (rather than breaking or passing the request limit).
pub(crate) async fn drain(body: &mut RequestBody) -> bool {
    loop {
        match body.frame().await {
            None => return true,
            Some(Ok(_)) => {}
            Some(Err(_)) => return false,
        }
    }
}

/// Reads about half of the declared body (at least one frame), for the
/// `reset_mid_body` fault.
async fn read_some(body: &mut RequestBody, content_length: Option<u64>) {
    let target = content_length.map_or(1, |length| (length / 2).max(1));
    let mut read = 0u64;
    while read < target {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => break,
        }
    }
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
}

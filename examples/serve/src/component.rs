//! The generated bindings and the thin WASI layer: the request in, a
//! [`Reply`] out. This is the one place that turns the WIT `upload-error`
//! into an [`UploadFailure`], and the one place that builds a WIT `file`.

use std::io::{self, Read, Write};

use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};
use wasi::io::streams::InputStream;

use crate::batch::{
    Batcher, FailureCase, NewFile, TransportKind, UploadFailure, Uploaded, Uploader,
};
use crate::form;
use crate::problem::{self, Problem, Reply};
use crate::route::{self, Route};

wit_bindgen::generate!({
    // The uploader's package and the WASI packages come from the root `wit`
    // folder, so the contract exists once.
    path: ["../../wit", "wit"],
    world: "bigin:serve/proxy-front",
    with: {
        "bigin:files/types@0.1.0": generate,
        "bigin:files/uploader@0.1.0": generate,
        "wasi:http/types@0.2.12": wasi::http::types,
        "wasi:io/error@0.2.12": wasi::io::error,
        "wasi:io/poll@0.2.12": wasi::io::poll,
        "wasi:io/streams@0.2.12": wasi::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasi::clocks::monotonic_clock,
    },
});

use bigin::files::types as wit;
use exports::wasi::http::incoming_handler::Guest;

struct Front;

export!(Front);

impl Guest for Front {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let started = wasi::clocks::monotonic_clock::now();
        let method = method_name(&request.method());
        let secrets = secrets();
        let redact = |text: &str| problem::redact(text, &secrets);
        let (label, reply) = respond(request, &method, &redact);
        let status = reply.status;
        send(out, reply);
        let elapsed_ms = wasi::clocks::monotonic_clock::now().saturating_sub(started) / 1_000_000;
        eprintln!("{method} {label} {status} {elapsed_ms}ms");
    }
}

/// The answer to `request`, and the route's name for the log line (never
/// the file name, which may be private).
fn respond(
    request: IncomingRequest,
    method: &str,
    redact: &dyn Fn(&str) -> String,
) -> (&'static str, Reply) {
    let path = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    let route = match route::route(method, &path) {
        Ok(route) => route,
        Err(problem) => return ("-", problem.reply(None, redact)),
    };
    let label = match route {
        Route::Page => "/",
        Route::UploadForm => "/upload",
        Route::UploadRaw { .. } => "/upload/{name}",
    };
    if route == Route::Page {
        return (label, Reply::page());
    }

    let headers = request.headers();
    let origin = header(&headers, "origin");
    let authority = request.authority().or_else(|| header(&headers, "host"));
    let content_type = header(&headers, "content-type");
    let content_length = header(&headers, "content-length").and_then(|v| v.trim().parse().ok());
    drop(headers);

    // Limitation: a request refused part-way (a malformed part, a file over
    // the limit, a Bigin error) keeps the files earlier batches uploaded;
    // the answer lists them under `uploaded`, but nothing is rolled back, as
    // the upload API has no delete. Checking the whole form first would
    // mean holding all of it.
    let mut batcher = Batcher::new(WitUploader);
    let outcome = route::check_origin(origin.as_deref(), authority.as_deref())
        .and_then(|()| upload(route, request, content_type, content_length, &mut batcher));
    let reply = match outcome {
        Ok(()) => match batcher.finish() {
            Ok(files) => Reply::uploaded(&files),
            Err(failure) => Problem::Upload(failure).reply(None, redact),
        },
        Err(problem) => problem.reply(Some(batcher.uploaded()), redact),
    };
    (label, reply)
}

/// Reads the files of an upload route into `batcher`, checking what can be
/// checked before the body is read.
fn upload(
    route: Route,
    request: IncomingRequest,
    content_type: Option<String>,
    content_length: Option<u64>,
    batcher: &mut Batcher<WitUploader>,
) -> Result<(), Problem> {
    match route {
        Route::UploadForm => {
            let boundary = form::boundary(content_type.as_deref())?;
            refuse_over(content_length, form::MAX_FORM_BYTES)?;
            form::read_form(Body::open(request)?, &boundary, |file| {
                batcher.push(file).map_err(Problem::Upload)
            })
        }
        Route::UploadRaw { name } => {
            refuse_over(content_length, crate::MAX_FILE_BYTES)?;
            let data = form::read_file(Body::open(request)?)?;
            batcher
                .push(NewFile {
                    name,
                    content_type: form::file_type(content_type.as_deref()),
                    data,
                })
                .map_err(Problem::Upload)
        }
        Route::Page => Ok(()),
    }
}

/// Answers 413 before the body is read when its declared length is more
/// than the route could take.
fn refuse_over(content_length: Option<u64>, limit: u64) -> Result<(), Problem> {
    match content_length {
        Some(length) if length > limit => Err(Problem::ContentTooLarge { limit }),
        _ => Ok(()),
    }
}

/// The request body as a blocking reader. The stream is declared first so
/// that it is dropped before the body that owns it, as WASI requires.
struct Body {
    stream: InputStream,
    _body: IncomingBody,
    _request: IncomingRequest,
}

impl Body {
    fn open(request: IncomingRequest) -> Result<Body, Problem> {
        let body = request
            .consume()
            .map_err(|()| Problem::Internal("the request body was already taken"))?;
        let stream = body
            .stream()
            .map_err(|()| Problem::Internal("the request body stream was already taken"))?;
        Ok(Body {
            stream,
            _body: body,
            _request: request,
        })
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The std `Read` impl, not the inherent non-blocking `read`.
        Read::read(&mut self.stream, buf)
    }
}

/// Calls the upload component through its WIT import.
struct WitUploader;

impl Uploader for WitUploader {
    fn upload(&mut self, files: Vec<NewFile>) -> Result<Vec<Uploaded>, UploadFailure> {
        let files: Vec<wit::File> = files.into_iter().map(wit_file).collect();
        bigin::files::uploader::upload(&files)
            .map(|refs| refs.into_iter().map(uploaded).collect())
            .map_err(failure)
    }
}

/// The one place a file becomes the WIT `file` record.
fn wit_file(file: NewFile) -> wit::File {
    wit::File {
        name: file.name,
        content_type: file.content_type,
        source: wit::Source::Bytes(file.data),
    }
}

fn uploaded(r: wit::FileRef) -> Uploaded {
    Uploaded {
        name: r.name,
        id: r.id,
        size: r.size,
        sha256: r.sha256,
    }
}

fn failure(error: wit::UploadError) -> UploadFailure {
    let refused = |case, message| UploadFailure {
        case,
        message,
        code: None,
        http_status: None,
        retry_after: None,
        files: Vec::new(),
        uploaded: Vec::new(),
    };
    let answered = |case, f: wit::Failure, retry_after| UploadFailure {
        case,
        message: f.message,
        code: f.code,
        http_status: f.http_status,
        retry_after,
        files: f.files,
        uploaded: f.uploaded.into_iter().map(uploaded).collect(),
    };
    let kind = |kind| match kind {
        wit::TransportKind::Timeout => TransportKind::Timeout,
        wit::TransportKind::Connection => TransportKind::Connection,
        wit::TransportKind::Dns => TransportKind::Dns,
        wit::TransportKind::Protocol => TransportKind::Protocol,
    };
    match error {
        wit::UploadError::InvalidSettings(reason) => refused(FailureCase::InvalidSettings, reason),
        wit::UploadError::InvalidFile(f) => refused(
            FailureCase::InvalidFile,
            format!("{}: {}", f.name, f.reason),
        ),
        wit::UploadError::TooLarge(f) => refused(
            FailureCase::TooLarge,
            format!(
                "{} is {} bytes, over the {} byte limit",
                f.name, f.size, f.limit
            ),
        ),
        wit::UploadError::Unauthorized(f) => answered(FailureCase::Unauthorized, f, None),
        wit::UploadError::Forbidden(f) => answered(FailureCase::Forbidden, f, None),
        wit::UploadError::RateLimited(r) => {
            answered(FailureCase::RateLimited, r.failure, r.retry_after)
        }
        wit::UploadError::NotFound(f) => answered(FailureCase::NotFound, f, None),
        wit::UploadError::ServerError(f) => answered(FailureCase::ServerError, f, None),
        wit::UploadError::Api(f) => answered(FailureCase::Api, f, None),
        wit::UploadError::Transport(t) => {
            answered(FailureCase::Transport(kind(t.kind)), t.failure, None)
        }
        wit::UploadError::PossiblyUploaded(t) => {
            answered(FailureCase::PossiblyUploaded(kind(t.kind)), t.failure, None)
        }
        wit::UploadError::Token(t) => UploadFailure {
            case: FailureCase::Token,
            message: t.message,
            code: t.code,
            http_status: t.http_status,
            retry_after: None,
            files: t.files,
            uploaded: t.uploaded.into_iter().map(uploaded).collect(),
        },
    }
}

/// The upload component's secrets, from the environment it shares with
/// this front; read only so that no message passed on to a client can
/// carry one.
fn secrets() -> Vec<String> {
    const SECRET_VARS: [&str; 3] = [
        "BIGIN_ACCESS_TOKEN",
        "BIGIN_REFRESH_TOKEN",
        "BIGIN_CLIENT_SECRET",
    ];
    wasi::cli::environment::get_environment()
        .into_iter()
        .filter(|(name, _)| SECRET_VARS.contains(&name.as_str()))
        .map(|(_, value)| value)
        .collect()
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
    .to_owned()
}

/// The first value of a header, when it is text.
fn header(headers: &Fields, name: &str) -> Option<String> {
    let values = headers.get(name);
    let first = values.into_iter().next()?;
    String::from_utf8(first).ok()
}

fn send(out: ResponseOutparam, reply: Reply) {
    let fields: Vec<(String, Vec<u8>)> = reply
        .headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    let response = match Fields::from_list(&fields) {
        Ok(headers) => OutgoingResponse::new(headers),
        Err(e) => {
            let message = format!("building the answer's headers: {e:?}");
            ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(message))));
            return;
        }
    };
    // Every status this front answers is valid.
    let _ = response.set_status_code(reply.status);
    let Ok(body) = response.body() else {
        let message = "the answer's body was already taken".to_owned();
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(message))));
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Err(e) = write_body(&body, &reply.body) {
        // The status is gone already; the client likely hung up.
        eprintln!("writing the answer: {e}");
    }
    if let Err(e) = OutgoingBody::finish(body, None) {
        eprintln!("finishing the answer: {e:?}");
    }
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> io::Result<()> {
    let mut stream = body
        .write()
        .map_err(|()| io::Error::other("the answer's stream was already taken"))?;
    stream.write_all(bytes)?;
    // When the answer came before the whole request body was read, the
    // connection closes once the answer is out, and the flush that follows
    // reports it closed; the client has the answer by then.
    let _ = Write::flush(&mut stream);
    Ok(())
}

//! The only code that speaks `wasi:http`: it turns an [`upload::Request`]
//! into an outgoing request, writes the body with an exact
//! `Content-Length`, and reads the whole answer.
//!
//! Ownership rules of WASI HTTP that shape this file: the output stream is
//! a child of the outgoing body and must be dropped before the body is
//! finished; the input stream likewise before its incoming body is.

use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method as WasiMethod, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme as WasiScheme,
};
use wasi::io::streams::{OutputStream, StreamError};

use crate::error::TransportKind;
use crate::multipart::WriteError;
use crate::settings::{Scheme, Timeouts};
use crate::upload::{Method, Payload, Request, Response, Transport, TransportError};

/// How much of the answer is asked for at a time.
const READ_CHUNK: u64 = 64 * 1024;

/// [`Transport`] over the host's `wasi:http/outgoing-handler`.
pub struct WasiTransport;

impl Transport for WasiTransport {
    fn send(&mut self, request: Request<'_>) -> Result<Response, TransportError> {
        send(request)
    }

    fn random(&mut self) -> [u64; 2] {
        [
            wasi::random::random::get_random_u64(),
            wasi::random::random::get_random_u64(),
        ]
    }

    fn now_ns(&mut self) -> u64 {
        wasi::clocks::monotonic_clock::now()
    }

    fn sleep_ns(&mut self, ns: u64) {
        wasi::clocks::monotonic_clock::subscribe_duration(ns).block();
    }

    fn unix_secs(&mut self) -> u64 {
        wasi::clocks::wall_clock::now().seconds
    }
}

fn send(request: Request<'_>) -> Result<Response, TransportError> {
    let fault = |kind, message: String| TransportError {
        kind,
        body_sent: false,
        message,
    };
    let mut headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
        .collect();
    if let Some(body) = request.body {
        headers.push((
            "content-length".into(),
            body.content_length().to_string().into_bytes(),
        ));
    }
    // The header error names which rule was broken, never the value, so the
    // token cannot leak through it.
    let fields = Fields::from_list(&headers).map_err(|e| {
        fault(
            TransportKind::Protocol,
            format!("a header was refused: {e:?}"),
        )
    })?;
    drop(headers);

    let outgoing = OutgoingRequest::new(fields);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
    };
    let scheme = match request.origin.scheme {
        Scheme::Http => WasiScheme::Http,
        Scheme::Https => WasiScheme::Https,
    };
    let refused = |what: &str| fault(TransportKind::Protocol, format!("the host refused {what}"));
    outgoing
        .set_method(&method)
        .map_err(|()| refused("the method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("the scheme"))?;
    outgoing
        .set_authority(Some(&request.origin.authority))
        .map_err(|()| refused("the authority"))?;
    outgoing
        .set_path_with_query(Some(request.path_and_query))
        .map_err(|()| refused("the path"))?;
    let outgoing_body = outgoing
        .body()
        .map_err(|()| refused("to open the request body"))?;

    // The request goes out before the body is written: the host streams the
    // body as it comes instead of buffering it whole.
    let pending = outgoing_handler::handle(outgoing, Some(options(request.timeouts)))
        .map_err(|code| from_error_code(&code, false))?;

    let written = match request.body {
        Some(body) => write_body(&outgoing_body, body),
        None => Ok(()),
    };
    if let Err(WriteError::Source(problem)) = written {
        // The body cannot be completed; abandoning the request (dropping the
        // body unfinished) tells the host to give up on it.
        drop(outgoing_body);
        drop(pending);
        return Err(TransportError {
            kind: TransportKind::Protocol,
            body_sent: false,
            message: problem.0,
        });
    }
    let body_sent = written.is_ok();
    // Finishing fails when the server stopped reading early; its answer, if
    // any (an early 413, say), is still waiting below and is the server's
    // word on the request, which says more than this error.
    let _ = OutgoingBody::finish(outgoing_body, None);

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(from_error_code(&code, body_sent)),
        Some(Err(())) | None => {
            return Err(TransportError {
                kind: TransportKind::Protocol,
                body_sent,
                message: "the host lost the answer".into(),
            });
        }
    };
    read_response(response, request.max_answer_bytes, body_sent)
}

fn options(timeouts: Timeouts) -> RequestOptions {
    let options = RequestOptions::new();
    // A host may not support some timeouts; it then applies its own, which
    // is no reason to fail the request.
    let _ = options.set_connect_timeout(Some(timeouts.connect_ns));
    let _ = options.set_first_byte_timeout(Some(timeouts.first_byte_ns));
    let _ = options.set_between_bytes_timeout(Some(timeouts.between_bytes_ns));
    options
}

/// Writes every chunk, honouring `check-write`'s budget.
///
/// Once the last byte is accepted, a host that knows the `Content-Length`
/// may close the stream at once, so a flush after it can see `closed`
/// although every byte went out. Only a stream closed before the last byte
/// counts as a failure; the body is never written twice.
fn write_body(outgoing_body: &OutgoingBody, body: Payload<'_>) -> Result<(), WriteError> {
    let stream = outgoing_body.write().map_err(|()| WriteError::Sink)?;
    body.write(&mut |chunk| write_all(&stream, chunk))?;
    match flush(&stream) {
        Ok(()) | Err(StreamError::Closed) => Ok(()),
        Err(StreamError::LastOperationFailed(_)) => Ok(()),
    }
}

fn write_all(stream: &OutputStream, mut chunk: &[u8]) -> Result<(), WriteError> {
    while !chunk.is_empty() {
        let budget = match stream.check_write() {
            Ok(0) => {
                stream.subscribe().block();
                continue;
            }
            Ok(budget) => budget,
            Err(_) => return Err(WriteError::Sink),
        };
        let n = usize::try_from(budget)
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        stream.write(&chunk[..n]).map_err(|_| WriteError::Sink)?;
        chunk = &chunk[n..];
    }
    Ok(())
}

/// Flushes and waits until the host has taken everything.
fn flush(stream: &OutputStream) -> Result<(), StreamError> {
    stream.flush()?;
    loop {
        if stream.check_write()? > 0 {
            return Ok(());
        }
        stream.subscribe().block();
    }
}

fn read_response(
    response: IncomingResponse,
    max_bytes: usize,
    body_sent: bool,
) -> Result<Response, TransportError> {
    let fault = |kind, message: String| TransportError {
        kind,
        body_sent,
        message,
    };
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| fault(TransportKind::Protocol, "the answer body was taken".into()))?;
    let body = read_body(&incoming, max_bytes).map_err(|e| match e {
        ReadError::TooLong => fault(
            TransportKind::Protocol,
            format!("the answer is longer than {max_bytes} bytes"),
        ),
        ReadError::Failed(code) => from_error_code(&code, body_sent),
        ReadError::Stream => fault(TransportKind::Connection, "the answer broke off".into()),
    })?;
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body,
    })
}

enum ReadError {
    TooLong,
    Failed(ErrorCode),
    Stream,
}

fn read_body(incoming: &IncomingBody, max_bytes: usize) -> Result<Vec<u8>, ReadError> {
    let stream = incoming.stream().map_err(|()| ReadError::Stream)?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(bytes) => {
                if body.len() + bytes.len() > max_bytes {
                    return Err(ReadError::TooLong);
                }
                body.extend_from_slice(&bytes);
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(match wasi::http::types::http_error_code(&error) {
                    Some(code) => ReadError::Failed(code),
                    None => ReadError::Stream,
                });
            }
        }
    }
}

/// Sorts a `wasi:http` error code into the kinds callers act on.
fn from_error_code(code: &ErrorCode, body_sent: bool) -> TransportError {
    use ErrorCode as E;
    let kind = match code {
        E::DnsTimeout
        | E::ConnectionTimeout
        | E::ConnectionReadTimeout
        | E::ConnectionWriteTimeout
        | E::HttpResponseTimeout => TransportKind::Timeout,
        E::DnsError(_) | E::DestinationNotFound => TransportKind::Dns,
        E::DestinationUnavailable
        | E::DestinationIpProhibited
        | E::DestinationIpUnroutable
        | E::ConnectionRefused
        | E::ConnectionTerminated
        | E::ConnectionLimitReached
        | E::HttpResponseIncomplete => TransportKind::Connection,
        _ => TransportKind::Protocol,
    };
    let message = match code {
        E::HttpRequestDenied => {
            "the host denied the request (is the API domain allowed by the host?)".into()
        }
        other => format!("{other:?}"),
    };
    TransportError {
        kind,
        body_sent,
        message,
    }
}

//! Building responses: JSON bodies, Bigin's error shape, and the stock
//! messages that go with each error code.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

/// Every response body is sent in one piece.
pub(crate) type Body = Full<Bytes>;

/// How many files an upload carried, attached to its response for the
/// request log.
#[derive(Clone, Copy)]
pub(crate) struct FileCount(pub(crate) usize);

/// A response with `body` serialized as JSON.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = Response::new(Full::new(Bytes::from(bytes)));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json;charset=UTF-8"),
            );
            response
        }
        // Only a map with non-string keys can fail, and none is sent; say
        // so plainly rather than panic if that ever changes.
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "response serialization failed",
        ),
    }
}

/// A response with no body.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::default());
    *response.status_mut() = status;
    response
}

/// A `text/plain` response, for the control endpoints' errors.
pub(crate) fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    response
}

/// A Bigin API error: `{"code","details","message","status":"error"}`
/// with the stock message for `code`.
pub(crate) fn api_error(status: StatusCode, code: &str) -> Response<Body> {
    api_error_with(status, code, stock_message(code), json!({}))
}

/// A Bigin API error with an explicit message and details.
pub(crate) fn api_error_with(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Value,
) -> Response<Body> {
    json(
        status,
        &json!({
            "code": code,
            "details": details,
            "message": message,
            "status": "error",
        }),
    )
}

/// Marks a response as the last on its connection.
pub(crate) fn close_after(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The message sent with each error code. Our own wording: clients must
/// branch on `code`, never on `message`, and Zoho's texts vary anyway.
pub(crate) fn stock_message(code: &str) -> &'static str {
    match code {
        "INVALID_TOKEN" => "invalid oauth token",
        "AUTHENTICATION_FAILURE" => "authentication failed",
        "OAUTH_SCOPE_MISMATCH" => "the token lacks the scope this call needs",
        "INVALID_REQUEST" => "the request is not one this API accepts",
        "INVALID_REQUEST_METHOD" => "the HTTP method is not allowed here",
        "INVALID_URL_PATTERN" => "no API exists at this URL",
        "REQUIRED_PARAM_MISSING" => "a required parameter is missing",
        "INVALID_MODULE" => "the module name given seems to be invalid",
        "INVALID_DATA" => "the data given seems to be invalid",
        "MANDATORY_NOT_FOUND" => "a required field is missing",
        "LIMIT_EXCEEDED" => "more items than allowed in one request",
        "failure_in_attachment_handling" => "the file parts could not be handled",
        "FILE_SIZE_MORE_THAN_ALLOWED_SIZE" => "a file is larger than the allowed size",
        "REQUEST_ENTITY_TOO_LARGE" => "the request body is too large",
        "TOO_MANY_REQUESTS" | "RATE_LIMIT_EXCEEDED" => "too many requests, try again later",
        "INTERNAL_ERROR" => "internal server error",
        _ => "error injected by bigin-local",
    }
}

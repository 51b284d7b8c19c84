//! `GET /bigin/v2/files?id=ID`: a stored file's bytes, with the headers
//! Bigin sends.

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::disposition::attachment_header;
use crate::response::{self, Body};
use crate::state::Shared;

/// Answers a download: 401 without a valid token, 400
/// `REQUIRED_PARAM_MISSING` without an `id`, 204 for an unknown id, else
/// 200 with the file.
pub(crate) fn handle(request: &Request<Incoming>, shared: &Shared) -> Response<Body> {
    if !shared.is_authorized(request.headers()) {
        return response::api_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    }
    let id = request.uri().query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "id")
            .map(|(_, value)| value.into_owned())
    });
    let Some(id) = id.filter(|id| !id.is_empty()) else {
        return response::api_error_with(
            StatusCode::BAD_REQUEST,
            "REQUIRED_PARAM_MISSING",
            response::stock_message("REQUIRED_PARAM_MISSING"),
            json!({ "param_name": "id" }),
        );
    };
    let Some(file) = shared.find_file(&id) else {
        return response::empty(StatusCode::NO_CONTENT);
    };

    let mut response = Response::new(Full::new(file.bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        content_type(file.content_type.as_deref()),
    );
    // `attachment_header` emits printable ASCII only, so this cannot fail;
    // fall back rather than panic all the same.
    let disposition = HeaderValue::from_str(&attachment_header(&file.name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    response
}

/// The stored part's type with `;charset=UTF-8` appended, as Bigin does
/// even for images, unless it already names a charset.
fn content_type(stored: Option<&str>) -> HeaderValue {
    let base = stored.unwrap_or("application/octet-stream");
    let value = if base.to_ascii_lowercase().contains("charset=") {
        base.to_owned()
    } else {
        format!("{base};charset=UTF-8")
    };
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream;charset=UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_appends_charset_once() {
        assert_eq!(content_type(Some("image/png")), "image/png;charset=UTF-8");
        assert_eq!(
            content_type(Some("text/plain; charset=latin1")),
            "text/plain; charset=latin1"
        );
        assert_eq!(content_type(None), "application/octet-stream;charset=UTF-8");
    }
}

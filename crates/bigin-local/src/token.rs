//! `POST /oauth/v2/token`: Zoho's accounts server, reduced to the
//! refresh-token grant for one client.

use std::collections::HashMap;

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::response::{self, Body};
use crate::state::{Mint, Shared};

/// Largest form body read; a refresh request is a few hundred bytes.
const FORM_LIMIT: usize = 64 * 1024;

/// Answers a refresh. Parameters may come in the form body or, as Zoho's
/// own examples send them, in the query string; the body wins.
pub(crate) async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, FORM_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return oauth_error("invalid_request"),
    };
    // Holds the client secret and refresh token: never print it.
    let mut params: HashMap<String, String> = HashMap::new();
    if let Some(query) = parts.uri.query() {
        params.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    params.extend(form_urlencoded::parse(&body).into_owned());
    let param = |name: &str| params.get(name).map(String::as_str);

    let config = &shared.config;
    if param("grant_type") != Some("refresh_token") {
        return oauth_error("unsupported_grant_type");
    }
    if param("client_id") != Some(config.client_id.as_str())
        || param("client_secret") != Some(config.client_secret.as_str())
    {
        return oauth_error("invalid_client");
    }
    if config.refresh_token.is_none() || param("refresh_token") != config.refresh_token.as_deref() {
        return oauth_error("invalid_code");
    }

    let token = match shared.mint_token() {
        Ok((Mint::Minted, Some(token))) => token,
        Ok(_) => {
            return response::json(
                StatusCode::BAD_REQUEST,
                &json!({
                    "error": "Access Denied",
                    "error_description":
                        "You have made too many requests continuously. Please try again after some time.",
                }),
            );
        }
        Err(error) => {
            crate::server::log_error(shared, &error);
            return response::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "error": "server_error" }),
            );
        }
    };

    let expires_key = if config.answer_expires_in_sec {
        "expires_in_sec"
    } else {
        "expires_in"
    };
    let mut answer = serde_json::Map::new();
    answer.insert("access_token".into(), Value::String(token));
    answer.insert("api_domain".into(), Value::String(shared.base_url.clone()));
    answer.insert("token_type".into(), Value::String("Bearer".into()));
    answer.insert(expires_key.into(), json!(config.token_lifetime.as_secs()));
    response::json(StatusCode::OK, &answer)
}

/// An accounts-server error. Zoho sends some of these with HTTP 200; this
/// server uses 400 so that a client that checks only the status still
/// sees the failure, while one that reads `error` sees Zoho's value.
fn oauth_error(error: &str) -> Response<Body> {
    response::json(StatusCode::BAD_REQUEST, &json!({ "error": error }))
}

//! Accepting connections, routing requests, and the request log.
//!
//! hyper's HTTP/1 connection is driven directly rather than through a
//! framework because two faults must act on the connection itself: one
//! closes it without an answer, one leaves it hanging. Each connection
//! task therefore races hyper's connection future against a per-connection
//! kill switch and the server's shutdown signal; dropping the future is
//! what closes the socket.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::response::{self, Body, FileCount};
use crate::state::Shared;
use crate::upload::RefusalReason;
use crate::{attachments, control, download, records, token, upload};

/// The Files API path.
const FILES_PATH: &str = "/bigin/v2/files";
/// What every other API path starts with: `{module}[/{record_id}[/...]]`
/// follows.
const API_PREFIX: &str = "/bigin/v2/";
/// The accounts server's token path.
const TOKEN_PATH: &str = "/oauth/v2/token";
/// The paths counted under their own name in [`Stats::requests`].
///
/// [`Stats::requests`]: crate::Stats::requests
const KNOWN_PATHS: [&str; 6] = [
    FILES_PATH,
    TOKEN_PATH,
    "/_local/stats",
    "/_local/faults",
    "/_local/config",
    "/_local/records",
];

/// A path under [`API_PREFIX`] other than the Files API. The module is
/// not checked here: an unknown one is answered `INVALID_MODULE`, as Zoho
/// does, rather than `INVALID_URL_PATTERN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModuleRoute<'a> {
    Module(&'a str),
    Record(&'a str, &'a str),
    Attachments(&'a str, &'a str),
}

impl<'a> ModuleRoute<'a> {
    /// Splits a path into non-empty segments after [`API_PREFIX`].
    fn parse(path: &'a str) -> Option<Self> {
        let rest = path.strip_prefix(API_PREFIX)?;
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        match segments.as_slice() {
            [module] => Some(Self::Module(module)),
            [module, id] => Some(Self::Record(module, id)),
            [module, id, "Attachments"] => Some(Self::Attachments(module, id)),
            _ => None,
        }
    }

    /// The key it is counted under in [`Stats::requests`], after the
    /// method.
    ///
    /// [`Stats::requests`]: crate::Stats::requests
    fn template(self) -> &'static str {
        match self {
            Self::Module(_) => "/bigin/v2/{module}",
            Self::Record(..) => "/bigin/v2/{module}/{record_id}",
            Self::Attachments(..) => "/bigin/v2/{module}/{record_id}/Attachments",
        }
    }
}

/// Accepts connections until `shutdown` turns true or its sender goes.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&shared), for_connections.clone()));
                }
                Err(error) => {
                    log_error(&shared, &anyhow::Error::new(error).context("accepting a connection"));
                    // Errors such as running out of file descriptors
                    // persist for a while; do not spin on them.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Small answers after a large body should not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let service = {
        let kill = Arc::clone(&kill);
        service_fn(move |request| {
            let shared = Arc::clone(&shared);
            let kill = Arc::clone(&kill);
            async move { Ok::<_, Infallible>(route(request, &shared, &kill).await) }
        })
    };
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // Client resets and malformed requests end up here; hyper has
        // already answered what could be answered.
        _ = connection => {}
        () = kill.notified() => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

async fn route(request: Request<Incoming>, shared: &Shared, kill: &Notify) -> Response<Body> {
    let method = request.method().clone();
    // The query string is left out on purpose: the token endpoint accepts
    // secrets there.
    let path = request.uri().path().to_owned();
    let module_route = if path == FILES_PATH {
        None
    } else {
        ModuleRoute::parse(&path)
    };
    let route_key = if KNOWN_PATHS.contains(&path.as_str()) {
        format!("{method} {path}")
    } else if let Some(route) = module_route {
        format!("{method} {}", route.template())
    } else if let Some(template) = control::template(&path) {
        format!("{method} {template}")
    } else {
        "other".to_owned()
    };
    shared.count_request(&route_key);

    let response = if let Some(route) = module_route {
        module_api(route, request, shared).await
    } else {
        match (path.as_str(), &method) {
            (FILES_PATH, &Method::POST) => upload::handle(request, shared, kill).await,
            (FILES_PATH, &Method::GET) => download::handle(&request, shared),
            (FILES_PATH, _) => {
                response::api_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_METHOD")
            }
            (TOKEN_PATH, &Method::POST) => token::handle(request, shared).await,
            (TOKEN_PATH, _) => response::json(
                StatusCode::METHOD_NOT_ALLOWED,
                &serde_json::json!({ "error": "invalid_request_method" }),
            ),
            (p, _) if p.starts_with("/_local/") => control::handle(request, shared).await,
            _ => response::api_error(StatusCode::NOT_FOUND, "INVALID_URL_PATTERN"),
        }
    };

    if shared.config.log_requests {
        let mut outcome = response.status().as_u16().to_string();
        if let Some(FileCount(count)) = response.extensions().get::<FileCount>() {
            outcome.push_str(&format!(" files={count}"));
        }
        if let Some(RefusalReason(reason)) = response.extensions().get::<RefusalReason>() {
            outcome.push_str(&format!(" ({reason})"));
        }
        log_request(shared, method.as_str(), &path, &outcome);
    }
    response
}

/// Serves the records and Attachments APIs. Token and module are checked
/// before the method, so a wrong method on an unknown module is
/// `INVALID_MODULE`.
async fn module_api(
    route: ModuleRoute<'_>,
    request: Request<Incoming>,
    shared: &Shared,
) -> Response<Body> {
    let method = request.method().clone();
    match (route, method) {
        (ModuleRoute::Module(module), Method::PUT) => {
            records::update(request, shared, module).await
        }
        (ModuleRoute::Record(module, id), Method::GET) => {
            records::get(request.headers(), shared, module, id)
        }
        (ModuleRoute::Attachments(module, id), Method::POST) => {
            attachments::upload(request, shared, module, id).await
        }
        (ModuleRoute::Attachments(module, id), Method::GET) => {
            attachments::list(request.headers(), shared, module, id)
        }
        (
            ModuleRoute::Module(module)
            | ModuleRoute::Record(module, _)
            | ModuleRoute::Attachments(module, _),
            _,
        ) => records::gate(request.headers(), shared, module).unwrap_or_else(|| {
            response::api_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_METHOD")
        }),
    }
}

/// Logs one request, if the server was configured to. Callers pass the
/// path without its query and never a header.
pub(crate) fn log_request(shared: &Shared, method: &str, path: &str, outcome: &str) {
    if shared.config.log_requests {
        eprintln!("bigin-local: {method} {path} {outcome}");
    }
}

/// Logs a server-side failure with its cause chain, if logging is on.
pub(crate) fn log_error(shared: &Shared, error: &anyhow::Error) {
    if shared.config.log_requests {
        eprintln!("bigin-local: error: {error:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_routes_are_parsed_by_shape_only() {
        use ModuleRoute::{Attachments, Module, Record};
        let parse = ModuleRoute::parse;
        assert_eq!(parse("/bigin/v2/Contacts"), Some(Module("Contacts")));
        assert_eq!(parse("/bigin/v2/nope/12"), Some(Record("nope", "12")));
        assert_eq!(
            parse("/bigin/v2/Notes/12/Attachments"),
            Some(Attachments("Notes", "12"))
        );
        for path in [
            "/bigin/v2/",
            "/bigin/v2/Contacts/",
            "/bigin/v2//12",
            "/bigin/v2/Notes/12/attachments",
            "/bigin/v2/Notes/12/Attachments/3",
            "/bigin/v1/Contacts",
        ] {
            assert_eq!(parse(path), None, "{path}");
        }
        assert_eq!(
            Attachments("x", "1").template(),
            "/bigin/v2/{module}/{record_id}/Attachments"
        );
    }
}

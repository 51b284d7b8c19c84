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
use crate::{control, download, token, upload};

/// The Files API path.
const FILES_PATH: &str = "/bigin/v2/files";
/// The accounts server's token path.
const TOKEN_PATH: &str = "/oauth/v2/token";
/// The paths counted under their own name in [`Stats::requests`].
///
/// [`Stats::requests`]: crate::Stats::requests
const KNOWN_PATHS: [&str; 5] = [
    FILES_PATH,
    TOKEN_PATH,
    "/_local/stats",
    "/_local/faults",
    "/_local/config",
];

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
    let route_key = if KNOWN_PATHS.contains(&path.as_str()) {
        format!("{method} {path}")
    } else {
        "other".to_owned()
    };
    shared.count_request(&route_key);

    let response = match (path.as_str(), &method) {
        (FILES_PATH, &Method::POST) => upload::handle(request, shared, kill).await,
        (FILES_PATH, &Method::GET) => download::handle(&request, shared),
        (FILES_PATH, _) => response::api_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST_METHOD"),
        (TOKEN_PATH, &Method::POST) => token::handle(request, shared).await,
        (TOKEN_PATH, _) => response::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({ "error": "invalid_request_method" }),
        ),
        (p, _) if p.starts_with("/_local/") => control::handle(request, shared).await,
        _ => response::api_error(StatusCode::NOT_FOUND, "INVALID_URL_PATTERN"),
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

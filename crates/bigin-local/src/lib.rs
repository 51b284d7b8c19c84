//! A Bigin-compatible Files API server for tests on one machine.
//!
//! It speaks HTTP/1.1 on a real socket, bound to `127.0.0.1` unless told
//! otherwise, and answers the paths Bigin and Zoho's accounts server use,
//! so a client under test only needs a different base URL. It keeps
//! everything in memory and can be told to misbehave. Besides the Files
//! API it holds records, so that a test can attach an uploaded file to a
//! record's file-upload field and see the file id consumed.
//!
//! ```no_run
//! use bigin_local::{Config, Fault, LocalServer};
//!
//! # fn main() -> anyhow::Result<()> {
//! let server = LocalServer::start(Config::default())?;
//! server.push_faults(vec![Fault::status(429, "TOO_MANY_REQUESTS")]);
//! // ... point the client at server.base_url() with token "local-dev-token" ...
//! assert_eq!(server.stats().uploads.len(), 0);
//! # Ok(())
//! # }
//! ```
//!
//! # Routes
//!
//! | Route | Answer |
//! | --- | --- |
//! | `POST /bigin/v2/files` | upload, see below |
//! | `GET /bigin/v2/files?id=ID` | 200 with the file, 204 unknown id, 400 `REQUIRED_PARAM_MISSING` |
//! | other methods on `/bigin/v2/files` | 400 `INVALID_REQUEST_METHOD` |
//! | `PUT /bigin/v2/{module}` | attach uploaded files to records' fields, see below |
//! | `GET /bigin/v2/{module}/{record_id}` | 200 `{"data":[record]}`, 204 unknown record |
//! | `POST /bigin/v2/{module}/{record_id}/Attachments` | attach a file or a link, see below |
//! | `GET /bigin/v2/{module}/{record_id}/Attachments` | 200 list, 204 none, 400 `INVALID_DATA` unknown record |
//! | other methods on those paths | 400 `INVALID_REQUEST_METHOD` |
//! | `POST /oauth/v2/token` | refresh-token grant |
//! | `/_local/...` | control endpoints, see below |
//! | anything else | 404 `INVALID_URL_PATTERN` |
//!
//! Every `/bigin/v2/` route needs `Authorization: Zoho-oauthtoken TOKEN`
//! with a valid token (a configured one, or a minted one not yet expired),
//! else it answers 401 `INVALID_TOKEN`. Errors have Bigin's shape:
//! `{"code":"…","details":{},"message":"…","status":"error"}`.
//!
//! `{module}` is one of [`MODULES`] (`Contacts`, `Pipelines`, `Accounts`,
//! `Products`, `Tasks`, `Events`, `Notes`), case-sensitive. Any other
//! first path segment after `/bigin/v2/` (bar the Files API path itself)
//! is taken for a module, as Zoho does, and answered, after the token check and before
//! the method check, with 400 `{"code":"INVALID_MODULE","details":
//! {"resource_path_index":0},"message":"the module name given seems to be
//! invalid","status":"error"}`. Record and attachment ids are numeric
//! strings from one sequence, so an id names one record in one module.
//!
//! ## Upload
//!
//! The body must be `multipart/form-data`; every part must be named `file`
//! and have a file name, read from its `Content-Disposition` by a strict
//! parser (quoted-pair unescaping, `filename*=UTF-8''…` preferred). In the
//! order checked:
//!
//! - a queued fault, if any, is applied instead of everything below;
//! - `Content-Length` over [`MAX_REQUEST_BYTES`]: 413
//!   `REQUEST_ENTITY_TOO_LARGE` before the body is read;
//! - no valid token: 401 `INVALID_TOKEN`;
//! - malformed multipart or `Content-Disposition`, a part not named `file`,
//!   or more than [`MAX_FILES_PER_REQUEST`] files: 400 `INVALID_REQUEST`;
//! - no `file` part, or one without a file name: 400
//!   `failure_in_attachment_handling`;
//! - a file over [`MAX_FILE_BYTES`]: 415 `FILE_SIZE_MORE_THAN_ALLOWED_SIZE`.
//!
//! Any refusal stores nothing. Success is 200 with one `SUCCESS` entry per
//! file, in order, each with the file's name and a 64-hex-digit id.
//!
//! ## Attaching uploaded files to records
//!
//! `PUT /bigin/v2/{module}` takes `{"data":[{"id":"RECORD_ID","FIELD":
//! [{"file_id":"FILE_ID"},…],…},…]}`, at most [`MAX_RECORDS_PER_UPDATE`]
//! entries in a body of at most [`MAX_UPDATE_BODY_BYTES`]. Every key but
//! `id` is taken for a file-upload field; its name must be a letter
//! followed by letters, digits and underscores. That value shape is Zoho
//! CRM v2's and unconfirmed for Bigin; it is kept in one module.
//!
//! Whole-request refusals (Bigin's error shape): a body that is not a JSON
//! object, `data` not a list, or an empty `data`: 400 `INVALID_DATA`; no
//! `data`: 400 `MANDATORY_NOT_FOUND` (both with
//! `details: {"api_name":"data"}`, except `{}` for a body that is not
//! JSON); too many entries: 400 `LIMIT_EXCEEDED`; too large a body: 413
//! `REQUEST_ENTITY_TOO_LARGE`.
//!
//! Otherwise each entry gets an answer in `{"data":[…]}`, in order, and is
//! applied all or nothing. Success:
//! `{"code":"SUCCESS","details":{"id":"RECORD_ID","Modified_Time":
//! "2024-03-09T14:05:00+00:00"},"message":"record updated",
//! "status":"success"}`. Errors, all with `"status":"error"`:
//!
//! - not an object: `INVALID_DATA`, `details: {"json_path":"$.data[N]"}`;
//! - no `id`: `MANDATORY_NOT_FOUND`; an `id` that is not a non-empty
//!   string, or no such record in the module: `INVALID_DATA`; both with
//!   `details: {"api_name":"id"}`;
//! - a bad field name or a value not in the list shape: `INVALID_DATA`,
//!   `details: {"api_name":FIELD,"json_path":…}` pointing at the fault;
//! - a file id no upload answered, or one already attached (to any
//!   record, or earlier in the same entry): `INVALID_DATA`,
//!   `details: {"api_name":FIELD,"json_path":"$.data[N].FIELD[M].file_id"}`,
//!   the message saying which.
//!
//! The status is 200 when every entry succeeded, 207 when some did, 400
//! when none did. An attached file's [`StoredFile::used`] becomes true and
//! the field's list grows by `{"file_id","file_name","size"}` per file (an
//! earlier value that is not a list is replaced). The
//! Files API queue of [`Fault`]s does not apply here.
//!
//! ## Attachments API
//!
//! `POST /bigin/v2/{module}/{record_id}/Attachments` takes a multipart body
//! of exactly one part: `file` (file name read as for uploads, at most
//! [`MAX_FILE_BYTES`]) or `attachmentUrl` (an `http(s)` link of at most
//! [`MAX_LINK_BYTES`], no file name; never fetched). In the order checked:
//! `Content-Length` over [`MAX_ATTACHMENT_REQUEST_BYTES`]: 413
//! `REQUEST_ENTITY_TOO_LARGE`; token; module; no such record: 400
//! `INVALID_DATA`, `details: {"api_name":"id"}` (Zoho's answer here is
//! unconfirmed); malformed multipart, a second part or another part name:
//! 400 `INVALID_REQUEST`; a `file` part without a file name: 400
//! `failure_in_attachment_handling`; no part: 400
//! `REQUIRED_PARAM_MISSING`; a file too large: 415
//! `FILE_SIZE_MORE_THAN_ALLOWED_SIZE`; a bad link: 400 `INVALID_DATA`,
//! `details: {"api_name":"attachmentUrl"}`. Success is 200 with
//! `{"data":[{"code":"SUCCESS","details":{"Modified_Time":"…",
//! "Modified_By":{"name":"Local","id":"1"},"Created_Time":"…",
//! "id":"ATTACHMENT_ID","Created_By":{"name":"Local","id":"1"}},
//! "message":"attachment uploaded successfully","status":"success"}]}`.
//!
//! `GET` on the same path lists them, oldest first:
//! `{"data":[{"id","File_Name","Size","Created_Time","Modified_Time",
//! "Created_By","Parent_Id":{"id"}}]}`, with `"$link_url"` added for a
//! link, whose `File_Name` is the link. `Size` is a string, as in Zoho
//! CRM's listing (unconfirmed for Bigin).
//!
//! ## Token endpoint
//!
//! Takes `grant_type=refresh_token`, `client_id`, `client_secret` and
//! `refresh_token` from the form body or query string, and answers
//! `{"access_token","api_domain","token_type":"Bearer","expires_in"}`
//! where `api_domain` is this server's [`LocalServer::base_url`]. Errors
//! are HTTP 400 with `{"error":"unsupported_grant_type"}`,
//! `{"error":"invalid_client"}`, `{"error":"invalid_code"}`, or, for a
//! sixth mint within 60 seconds, `{"error":"Access Denied",
//! "error_description":"…"}`.
//!
//! # Control endpoints
//!
//! For loopback test use only; they need no token.
//!
//! - `GET /_local/stats` → [`Stats`] as JSON:
//!   `{"requests":{"POST /bigin/v2/files":2,"PUT /bigin/v2/{module}":1,…},
//!   "uploads":[{"file_count":1,
//!   "files":[{"filename":"a.txt","size":3,"content_type":"text/plain"}],
//!   "content_length":187,"chunked":false,"status":200,"code":null,
//!   "fault":null}],"stored_files":1,"token_mints":0,"records":1,
//!   "record_updates":1,"attachments":0}`. Routes with parameters are
//!   counted under their template, e.g.
//!   `"POST /bigin/v2/{module}/{record_id}/Attachments"`.
//! - `POST /_local/records` with `{"module":"Contacts","fields":{…}}`
//!   (`fields` optional) → `{"id":"…"}`; 400 with a text reason for an
//!   unknown module, an `id` among the fields, or a bad field name.
//! - `GET /_local/records/{module}/{id}` → the record as JSON,
//!   `{"id":"…",…fields}`; 404 if there is none.
//! - `POST /_local/faults` with a JSON array of [`Fault`]s, queued for the
//!   next uploads (one fault per upload request) → `{"queued":N}`, the
//!   queue's new length; 400 with a text reason for an invalid fault.
//! - `DELETE /_local/faults` → `{"queued":0}`.
//! - `POST /_local/config` with `{"expire_after_uploads":N}` (or `null`
//!   to turn it off) → `{"expire_after_uploads":N}`; `GET` reads it.

mod attachments;
mod config;
mod control;
mod disposition;
mod download;
mod file_field;
mod model;
mod records;
mod response;
mod server;
mod state;
mod timestamp;
mod token;
mod upload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

pub use crate::attachments::{MAX_ATTACHMENT_REQUEST_BYTES, MAX_LINK_BYTES};
pub use crate::config::Config;
pub use crate::model::{AttachmentRecord, Fault, PartRecord, Stats, StoredFile, UploadRecord};
pub use crate::records::{MAX_RECORDS_PER_UPDATE, MAX_UPDATE_BODY_BYTES, MODULES};
pub use crate::upload::{MAX_FILE_BYTES, MAX_FILES_PER_REQUEST, MAX_REQUEST_BYTES};

use crate::state::Shared;

/// How long dropping a server waits for its tasks before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running server with its own tokio runtime on a background thread.
/// Dropping it stops the server and closes every connection.
pub struct LocalServer {
    addr: SocketAddr,
    base_url: String,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl LocalServer {
    /// Binds `config.bind` and starts serving; returns once the socket is
    /// listening, so requests can be sent straight away.
    ///
    /// Fails if the address is not loopback and
    /// [`Config::allow_non_loopback`] is not set, or if binding or starting
    /// the runtime fails.
    pub fn start(config: Config) -> anyhow::Result<LocalServer> {
        anyhow::ensure!(
            config.allow_non_loopback || config.bind.ip().is_loopback(),
            "refusing to listen on non-loopback address {} (set allow_non_loopback to override)",
            config.bind
        );
        let listener = std::net::TcpListener::bind(config.bind)
            .with_context(|| format!("binding {}", config.bind))?;
        listener
            .set_nonblocking(true)
            .context("making the listener non-blocking")?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let base_url = format!("http://{addr}");

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bigin-local-worker")
            .enable_io()
            .enable_time()
            .build()
            .context("starting the tokio runtime")?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).context("registering the listener")?
        };

        let shared = Arc::new(Shared::new(config, base_url.clone()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("bigin-local".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                move || {
                    runtime.block_on(server::run(listener, shared, shutdown_rx));
                    // Drops every connection task still running, stalled
                    // ones included.
                    runtime.shutdown_timeout(SHUTDOWN_GRACE);
                }
            })
            .context("spawning the server thread")?;

        Ok(LocalServer {
            addr,
            base_url,
            shared,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR:PORT`, the base URL for both the API and the token
    /// endpoint.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// What the server has seen so far; the same data as
    /// `GET /_local/stats`.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// A stored file, by the id its upload answered with.
    pub fn file(&self, id: &str) -> Option<StoredFile> {
        self.shared.stored_file(id)
    }

    /// Creates a record in `module` holding `fields`, a JSON object, and
    /// returns its id; the same as `POST /_local/records`.
    ///
    /// Fails for a module not in [`MODULES`], for `fields` that is not an
    /// object, holds `id`, or has a name that is not a letter followed by
    /// letters, digits and underscores.
    pub fn create_record(&self, module: &str, fields: serde_json::Value) -> anyhow::Result<String> {
        let serde_json::Value::Object(fields) = fields else {
            anyhow::bail!("a record's fields must be a JSON object");
        };
        records::check_new_record(module, &fields).map_err(anyhow::Error::msg)?;
        Ok(self.shared.create_record(module, fields))
    }

    /// A record as `GET /bigin/v2/{module}/{id}` shows it: its fields and
    /// `id`, with attached files as `{"file_id","file_name","size"}`
    /// lists. `None` if the module has no such record.
    pub fn record(&self, module: &str, id: &str) -> Option<serde_json::Value> {
        self.shared.record(module, id)
    }

    /// The attachments of a record, oldest first; empty for an unknown
    /// record.
    pub fn attachments(&self, module: &str, id: &str) -> Vec<AttachmentRecord> {
        self.shared.attachments(module, id).unwrap_or_default()
    }

    /// Queues faults for the next upload requests, one per request, in
    /// order. A fault whose status [`Fault::validate`] would refuse is
    /// answered as 500, and an invalid `retry_after` is left out.
    pub fn push_faults(&self, faults: Vec<Fault>) {
        self.shared.push_faults(faults);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Revokes every valid access token after `n` more successful uploads
    /// (and again after each `n` that follow), until the next mint; `None`
    /// turns this off. Restarts the count.
    pub fn set_expire_after_uploads(&self, n: Option<u32>) {
        self.shared.set_expire_after_uploads(n);
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // The receivers may already be gone if the accept loop ended; there
        // is nothing left to tell then.
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            // The thread ends within `SHUTDOWN_GRACE` of the signal: the
            // accept loop stops at once and the runtime abandons the rest.
            // A panic in it has already been printed.
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

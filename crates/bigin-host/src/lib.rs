//! Runs the Bigin upload component in wasmtime with WASI HTTP.
//!
//! The host gives the guest its `BIGIN_*` settings through
//! `wasi:cli/environment`, and lets outgoing HTTP reach only the one API
//! origin those settings name: a guest cannot be talked into sending the
//! token, or anything else, to another host.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bigin_files::settings::{Origin, RawSettings, Scheme, Secret};
use wasmtime::Result;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "uploader-component",
        with: {
            "wasi:cli": wasmtime_wasi::p2::bindings::sync::cli,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:io": wasmtime_wasi::p2::bindings::sync::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::sync::http,
        },
    });
}

use bindings::UploaderComponentPre;
pub use bindings::bigin::files::types::{
    Downloaded, File, FileRef, FileTooLarge, InvalidFile, PossibleUpload, RateLimited, Settings,
    Source, TokenFailure, TokenProblem, TransportFailure, TransportKind, UploadError,
};
pub use bindings::exports::bigin::files::records::{Attachment, RecordStatus};

/// The guest's memory may grow to this; a call holds at most ten files of
/// 20 MiB plus its own working set.
const GUEST_MEMORY_LIMIT: usize = 1024 * 1024 * 1024;

/// A compiled component, ready to be instantiated for each call.
pub struct Runner {
    engine: Engine,
    pre: UploaderComponentPre<State>,
}

#[expect(
    clippy::result_large_err,
    reason = "UploadError is the generated WIT type, handed on as the component gave it"
)]
impl Runner {
    /// Compiles the component at `path` (a `.wasm` component, or a `.cwasm`
    /// made by [`Runner::precompile`] with the same wasmtime).
    pub fn load(path: &Path) -> Result<Runner> {
        let engine = engine()?;
        let component = if path.extension().is_some_and(|e| e == "cwasm") {
            // SAFETY: `deserialize_file` trusts the file to be wasmtime's own
            // output; the host only loads `.cwasm` files that `precompile`
            // wrote, and wasmtime checks its version and settings header.
            unsafe { Component::deserialize_file(&engine, path) }
        } else {
            Component::from_file(&engine, path)
        }
        .with_context(|| format!("loading the component {}", path.display()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).context("linking WASI")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .context("linking WASI HTTP")?;
        let pre = linker
            .instantiate_pre(&component)
            .context("the component's imports do not match what the host provides")?;
        let pre = UploaderComponentPre::new(pre).context("the component's exports")?;
        Ok(Runner { engine, pre })
    }

    /// Compiles a component ahead of time into wasmtime's native format.
    pub fn precompile(component: &Path, out: &Path) -> Result<()> {
        let bytes =
            std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
        let compiled = engine()?
            .precompile_component(&bytes)
            .context("compiling the component")?;
        std::fs::write(out, compiled).with_context(|| format!("writing {}", out.display()))
    }

    /// The compiled component, for inspecting its imports and exports.
    pub fn component(&self) -> &Component {
        self.pre.instance_pre().component()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Uploads `files` with `settings` given as `BIGIN_*` environment
    /// variables, as `wasmtime run --env` would give them.
    ///
    /// The outer error is a host fault (a trap, a missing export); the inner
    /// one is the component's answer.
    pub fn upload(
        &self,
        env: &RawSettings,
        files: &[File],
    ) -> Result<Result<Vec<FileRef>, UploadError>> {
        self.upload_in(env, &[], files, None)
            .map(|(outcome, _)| outcome)
    }

    /// Uploads with `dirs` preopened read-only, so files given by path are
    /// streamed from them, counting into `progress` what goes out, and
    /// reports what the call used.
    pub fn upload_in(
        &self,
        env: &RawSettings,
        dirs: &[Preopen],
        files: &[File],
        progress: Option<&Arc<Progress>>,
    ) -> Result<(Result<Vec<FileRef>, UploadError>, Usage)> {
        let (mut store, instance) =
            self.instantiate_with_env(env, &env.to_env(), dirs, progress)?;
        let outcome = instance
            .bigin_files_uploader()
            .call_upload(&mut store, files)
            .context("calling upload")?;
        let usage = Usage {
            peak_memory_bytes: store.data().limits.peak,
        };
        Ok((outcome, usage))
    }

    /// Uploads with settings passed as a value (`upload-with`).
    pub fn upload_with(
        &self,
        settings: &Settings,
        files: &[File],
    ) -> Result<Result<Vec<FileRef>, UploadError>> {
        let raw = RawSettings {
            data_centre: settings.data_centre.clone(),
            api_domain: settings.api_domain.clone(),
            accounts_url: settings.accounts_url.clone(),
            refresh_token: settings.refresh_token.clone().map(Secret::new),
            ..RawSettings::default()
        };
        let (mut store, instance) = self.instantiate_with_env(&raw, &[], &[], None)?;
        instance
            .bigin_files_uploader()
            .call_upload_with(&mut store, settings, files)
            .context("calling upload-with")
    }

    /// Downloads the file with encrypted id `id`, settings as for
    /// [`Runner::upload`].
    pub fn download(&self, env: &RawSettings, id: &str) -> Result<Result<Downloaded, UploadError>> {
        let (mut store, instance) = self.instantiate(env)?;
        instance
            .bigin_files_downloader()
            .call_download(&mut store, id)
            .context("calling download")
    }

    /// Puts uploaded ids into a record's file-upload field.
    pub fn attach(
        &self,
        env: &RawSettings,
        module: &str,
        record_id: &str,
        field: &str,
        ids: &[String],
    ) -> Result<Result<RecordStatus, UploadError>> {
        let (mut store, instance) = self.instantiate(env)?;
        instance
            .bigin_files_records()
            .call_attach(&mut store, module, record_id, field, ids)
            .context("calling attach")
    }

    /// Attaches a file or a link to a record; returns the attachment's id.
    pub fn upload_attachment(
        &self,
        env: &RawSettings,
        module: &str,
        record_id: &str,
        attachment: &Attachment,
    ) -> Result<Result<String, UploadError>> {
        let (mut store, instance) = self.instantiate(env)?;
        instance
            .bigin_files_records()
            .call_upload_attachment(&mut store, module, record_id, attachment)
            .context("calling upload-attachment")
    }

    fn instantiate(
        &self,
        env: &RawSettings,
    ) -> Result<(Store<State>, bindings::UploaderComponent)> {
        self.instantiate_with_env(env, &env.to_env(), &[], None)
    }

    fn instantiate_with_env(
        &self,
        env: &RawSettings,
        vars: &[(&'static str, String)],
        dirs: &[Preopen],
        progress: Option<&Arc<Progress>>,
    ) -> Result<(Store<State>, bindings::UploaderComponent)> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        for (key, value) in vars {
            wasi.env(key, value);
        }
        for dir in dirs {
            wasi.preopened_dir(&dir.host, &dir.guest, FsPerms::ReadOnly)
                .with_context(|| format!("preopening {}", dir.host.display()))?;
        }
        let state = State {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: Hooks {
                allowed: allowed_origins(env),
                progress: progress.cloned(),
            },
            limits: Limits {
                max: GUEST_MEMORY_LIMIT,
                peak: 0,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let instance = self
            .pre
            .instantiate(&mut store)
            .context("instantiating the component")?;
        Ok((store, instance))
    }
}

fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    Engine::new(&config).context("starting wasmtime")
}

/// The origins the guest may reach: the API origin the settings resolve
/// to and, with a refresh token, the accounts server (and, unless an API
/// domain was given, the Zoho API domains a token answer may name). Settings the guest
/// will refuse anyway allow nothing.
fn allowed_origins(env: &RawSettings) -> Vec<Origin> {
    let mut probe = env.clone();
    // The origins do not depend on the token; a placeholder lets settings
    // without one (refused by the guest) still be resolved.
    if probe.access_token.is_none() && probe.refresh_token.is_none() {
        probe.access_token = Some(Secret::new("x"));
    }
    match probe.check() {
        Ok(settings) => {
            // A token answer may name the account's own data centre, which
            // wins over a configured data centre (not a configured domain).
            let answered: Vec<Origin> = if settings.refresh.is_some() && !settings.origin_given {
                bigin_files::settings::DATA_CENTRES
                    .into_iter()
                    .map(Origin::of)
                    .collect()
            } else {
                Vec::new()
            };
            std::iter::once(settings.origin)
                .chain(settings.refresh.map(|r| r.accounts))
                .chain(answered)
                .collect()
        }
        Err(_) => Vec::new(),
    }
}

struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Hooks,
    limits: Limits,
}

/// A directory the guest may read, and the name it sees it by.
#[derive(Debug, Clone)]
pub struct Preopen {
    pub host: std::path::PathBuf,
    pub guest: String,
}

/// What one call used.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// The largest the guest's linear memory grew to, in bytes.
    pub peak_memory_bytes: usize,
}

/// Caps the guest's memory and remembers its peak.
struct Limits {
    max: usize,
    peak: usize,
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        if desired > self.max {
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Lets requests through only to the allowed origins, counting what they
/// send when asked to.
struct Hooks {
    allowed: Vec<Origin>,
    progress: Option<Arc<Progress>>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let permitted = self
            .allowed
            .iter()
            .any(|origin| same_origin(origin, request.uri()));
        if !permitted {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        drop(fut);
        let progress = self.progress.clone();
        let is_upload = request.method() == http::Method::POST
            && request.uri().path() == bigin_files::upload::FILES_PATH;
        let request = match &progress {
            Some(progress) => request.map(|body| {
                use http_body_util::BodyExt;
                Counted {
                    inner: body,
                    progress: Arc::clone(progress),
                }
                .boxed_unsync()
            }),
            None => request,
        };
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            if let Some(progress) = progress
                && is_upload
                && response.status() == http::StatusCode::OK
            {
                progress.requests_done.fetch_add(1, Ordering::Relaxed);
            }
            let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

/// What an upload has sent so far, updated as the host's HTTP client takes
/// each piece of a request body for the network.
#[derive(Debug, Default)]
pub struct Progress {
    /// Request-body bytes handed to the connection, multipart framing
    /// included.
    pub bytes_sent: AtomicU64,
    /// Upload requests Bigin answered 200.
    pub requests_done: AtomicU64,
}

/// A request body that counts its bytes as they are polled for sending.
struct Counted {
    inner: wasmtime_wasi_http::WasiBody,
    progress: Arc<Progress>,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.progress
                .bytes_sent
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn same_origin(origin: &Origin, uri: &http::Uri) -> bool {
    let scheme_matches = match origin.scheme {
        Scheme::Http => uri.scheme() == Some(&http::uri::Scheme::HTTP),
        Scheme::Https => uri.scheme() == Some(&http::uri::Scheme::HTTPS),
    };
    let default_port = match origin.scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    let Some(authority) = uri.authority() else {
        return false;
    };
    let wanted: http::uri::Authority = match origin.authority.parse() {
        Ok(a) => a,
        Err(_) => return false,
    };
    scheme_matches
        && authority.host().eq_ignore_ascii_case(wanted.host())
        && authority.port_u16().unwrap_or(default_port) == wanted.port_u16().unwrap_or(default_port)
}

/// JSON forms of the component's results, as the command line prints them.
pub mod json {
    use serde_json::{Value, json};

    use super::{Downloaded, FileRef, TokenProblem, TransportKind, UploadError};
    use crate::bindings::bigin::files::types::Failure;

    pub fn file_ref(r: &FileRef) -> Value {
        json!({"name": r.name, "id": r.id, "size": r.size, "sha256": r.sha256})
    }

    pub fn record_status(status: &super::RecordStatus) -> Value {
        json!({"record_id": status.record_id, "code": status.code, "message": status.message})
    }

    /// A downloaded file as written to `path`.
    pub fn downloaded(id: &str, file: &Downloaded, path: &std::path::Path) -> Value {
        json!({
            "id": id,
            "name": file.name,
            "content_type": file.content_type,
            "size": file.data.len(),
            "sha256": bigin_files::upload::sha256_hex(&file.data),
            "path": path.display().to_string(),
        })
    }

    /// The refs an error says were uploaded before it happened.
    pub fn uploaded(error: &UploadError) -> &[FileRef] {
        match error {
            UploadError::Unauthorized(f)
            | UploadError::Forbidden(f)
            | UploadError::NotFound(f)
            | UploadError::ServerError(f)
            | UploadError::Api(f) => &f.uploaded,
            UploadError::RateLimited(r) => &r.failure.uploaded,
            UploadError::Transport(t) => &t.failure.uploaded,
            UploadError::PossiblyUploaded(p) => &p.failure.uploaded,
            UploadError::Token(t) => &t.uploaded,
            UploadError::InvalidSettings(_)
            | UploadError::InvalidFile(_)
            | UploadError::TooLarge(_) => &[],
        }
    }

    /// `{"error": "<case>", ...}` with the case's fields.
    pub fn upload_error(error: &UploadError) -> Value {
        match error {
            UploadError::InvalidSettings(message) => {
                json!({"error": "invalid-settings", "message": message})
            }
            UploadError::InvalidFile(f) => json!({
                "error": "invalid-file", "index": f.index, "name": f.name, "reason": f.reason
            }),
            UploadError::TooLarge(f) => json!({
                "error": "too-large", "index": f.index, "name": f.name,
                "size": f.size, "limit": f.limit
            }),
            UploadError::Unauthorized(f) => failure("unauthorized", f),
            UploadError::Forbidden(f) => failure("forbidden", f),
            UploadError::NotFound(f) => failure("not-found", f),
            UploadError::ServerError(f) => failure("server-error", f),
            UploadError::Api(f) => failure("api", f),
            UploadError::RateLimited(r) => {
                let mut value = failure("rate-limited", &r.failure);
                value["retry_after"] = json!(r.retry_after);
                value
            }
            UploadError::Transport(t) => {
                let mut value = failure("transport", &t.failure);
                value["kind"] = json!(kind(t.kind));
                value["body_sent"] = json!(t.body_sent);
                value
            }
            UploadError::PossiblyUploaded(p) => {
                let mut value = failure("possibly-uploaded", &p.failure);
                value["kind"] = json!(kind(p.kind));
                value["sent"] = json!(p.sent);
                value
            }
            UploadError::Token(t) => json!({
                "error": "token",
                "problem": match t.problem {
                    TokenProblem::InvalidClient => "invalid-client",
                    TokenProblem::InvalidRefreshToken => "invalid-refresh-token",
                    TokenProblem::TooManyRequests => "too-many-requests",
                    TokenProblem::Other => "other",
                },
                "http_status": t.http_status,
                "code": t.code,
                "message": t.message,
                "files": t.files,
                "uploaded": t.uploaded.iter().map(file_ref).collect::<Vec<_>>(),
            }),
        }
    }

    fn kind(kind: TransportKind) -> &'static str {
        match kind {
            TransportKind::Timeout => "timeout",
            TransportKind::Connection => "connection",
            TransportKind::Dns => "dns",
            TransportKind::Protocol => "protocol",
        }
    }

    fn failure(case: &str, f: &Failure) -> Value {
        json!({
            "error": case,
            "http_status": f.http_status,
            "code": f.code,
            "message": f.message,
            "files": f.files,
            "uploaded": f.uploaded.iter().map(file_ref).collect::<Vec<_>>(),
        })
    }
}

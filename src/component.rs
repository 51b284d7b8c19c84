//! The generated bindings and the thin export layer: WIT values in, the
//! pure modules' results out. This is the one place that turns internal
//! errors into the WIT `upload-error`.

use std::cell::RefCell;

use crate::auth::TokenProblem;
use crate::client::{Client, TokenCache};
use crate::error::{Error, FileRef, TransportKind};
use crate::multipart::Data;
use crate::settings::{RawSettings, Secret};
use crate::transport::WasiTransport;
use crate::upload::{self, FileIn};
use crate::{download, fs, records};

wit_bindgen::generate!({
    path: "wit",
    world: "uploader-component",
    with: {
        "wasi:cli/environment@0.2.12": wasi::cli::environment,
        "wasi:cli/stdin@0.2.12": wasi::cli::stdin,
        "wasi:cli/stdout@0.2.12": wasi::cli::stdout,
        "wasi:cli/stderr@0.2.12": wasi::cli::stderr,
        "wasi:cli/exit@0.2.12": wasi::cli::exit,
        "wasi:cli/terminal-input@0.2.12": wasi::cli::terminal_input,
        "wasi:cli/terminal-output@0.2.12": wasi::cli::terminal_output,
        "wasi:cli/terminal-stdin@0.2.12": wasi::cli::terminal_stdin,
        "wasi:cli/terminal-stdout@0.2.12": wasi::cli::terminal_stdout,
        "wasi:cli/terminal-stderr@0.2.12": wasi::cli::terminal_stderr,
        "wasi:random/random@0.2.12": wasi::random::random,
        "wasi:http/outgoing-handler@0.2.12": wasi::http::outgoing_handler,
        "wasi:http/types@0.2.12": wasi::http::types,
        "wasi:clocks/wall-clock@0.2.12": wasi::clocks::wall_clock,
        "wasi:io/error@0.2.12": wasi::io::error,
        "wasi:filesystem/preopens@0.2.12": wasi::filesystem::preopens,
        "wasi:filesystem/types@0.2.12": wasi::filesystem::types,
        "wasi:io/poll@0.2.12": wasi::io::poll,
        "wasi:io/streams@0.2.12": wasi::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasi::clocks::monotonic_clock,
    },
});

use bigin::files::types as wit;
use exports::bigin::files::downloader::Guest as Downloader;
use exports::bigin::files::records::{self as wit_records, Guest as Records};
use exports::bigin::files::uploader::Guest as Uploader;

struct Component;

export!(Component);

impl Uploader for Component {
    fn upload(files: Vec<wit::File>) -> Result<Vec<wit::FileRef>, wit::UploadError> {
        run(env_settings(), &files)
    }

    fn upload_with(
        settings: wit::Settings,
        files: Vec<wit::File>,
    ) -> Result<Vec<wit::FileRef>, wit::UploadError> {
        run(value_settings(settings), &files)
    }
}

impl Downloader for Component {
    fn download(id: String) -> Result<wit::Downloaded, wit::UploadError> {
        fetch(env_settings(), &id)
    }

    fn download_with(
        settings: wit::Settings,
        id: String,
    ) -> Result<wit::Downloaded, wit::UploadError> {
        fetch(value_settings(settings), &id)
    }
}

impl Records for Component {
    fn attach(
        module: String,
        record_id: String,
        field: String,
        file_ids: Vec<String>,
    ) -> Result<wit_records::RecordStatus, wit::UploadError> {
        let ids: Vec<&str> = file_ids.iter().map(String::as_str).collect();
        let status = with_client(env_settings(), |client| {
            records::attach(client, &module, &record_id, &field, &ids)
        })?;
        Ok(wit_records::RecordStatus {
            record_id: status.record_id,
            code: status.code,
            message: status.message,
        })
    }

    fn upload_attachment(
        module: String,
        record_id: String,
        attachment: wit_records::Attachment,
    ) -> Result<String, wit::UploadError> {
        let opened;
        let attachment = match &attachment {
            wit_records::Attachment::File(f) => {
                opened = open(0, f)?;
                records::Attachment::File {
                    name: &f.name,
                    content_type: f.content_type.as_deref(),
                    data: opened.data(),
                }
            }
            wit_records::Attachment::Link(url) => records::Attachment::Link(url),
        };
        with_client(env_settings(), |client| {
            records::upload_attachment(client, &module, &record_id, attachment)
        })
    }
}

fn env_settings() -> RawSettings {
    let env = wasi::cli::environment::get_environment();
    RawSettings::from_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn value_settings(settings: wit::Settings) -> RawSettings {
    RawSettings {
        data_centre: settings.data_centre,
        api_domain: settings.api_domain,
        access_token: settings.access_token.map(Secret::new),
        refresh_token: settings.refresh_token.map(Secret::new),
        client_id: settings.client_id,
        client_secret: settings.client_secret.map(Secret::new),
        accounts_url: settings.accounts_url,
        max_retries: settings.max_retries,
        max_retry_wait_ms: settings.max_retry_wait_ms,
        connect_timeout_ms: settings.connect_timeout_ms,
        first_byte_timeout_ms: settings.first_byte_timeout_ms,
        between_bytes_timeout_ms: settings.between_bytes_timeout_ms,
        unreadable: None,
    }
}

thread_local! {
    /// Minted access tokens live as long as the component instance.
    static TOKENS: RefCell<TokenCache> = RefCell::new(TokenCache::default());
}

/// Runs `f` with a client for `raw` settings, sharing the instance's
/// token cache.
fn with_client<T>(
    raw: RawSettings,
    f: impl FnOnce(&mut Client<'_>) -> Result<T, Error>,
) -> Result<T, wit::UploadError> {
    let settings = raw.check().map_err(wit::UploadError::InvalidSettings)?;
    TOKENS.with(|tokens| {
        let mut tokens = tokens.borrow_mut();
        let mut transport = WasiTransport;
        let mut client = Client::new(&settings, &mut transport, &mut tokens);
        f(&mut client).map_err(|mut error| {
            error.redact(&settings.secrets());
            upload_error(error)
        })
    })
}

fn fetch(raw: RawSettings, id: &str) -> Result<wit::Downloaded, wit::UploadError> {
    let file = with_client(raw, |client| download::download(client, id))?;
    Ok(wit::Downloaded {
        name: file.name,
        content_type: file.content_type,
        data: file.data,
    })
}

fn run(raw: RawSettings, files: &[wit::File]) -> Result<Vec<wit::FileRef>, wit::UploadError> {
    let opened = open_all(files)?;
    let inputs: Vec<FileIn<'_>> = files
        .iter()
        .zip(&opened)
        .map(|(f, opened)| FileIn {
            name: &f.name,
            content_type: f.content_type.as_deref(),
            data: opened.data(),
        })
        .collect();
    let refs = with_client(raw, |client| upload::upload(client, &inputs))?;
    Ok(refs.into_iter().map(file_ref).collect())
}

/// A file's bytes, or the file itself when given by path.
enum Opened<'a> {
    Bytes(&'a [u8]),
    File(fs::PreopenFile),
}

impl Opened<'_> {
    fn data(&self) -> Data<'_> {
        match self {
            Opened::Bytes(bytes) => Data::Bytes(bytes),
            Opened::File(file) => Data::Source(file),
        }
    }
}

/// Opens every file given by path, before anything is sent.
fn open_all(files: &[wit::File]) -> Result<Vec<Opened<'_>>, wit::UploadError> {
    files.iter().enumerate().map(|(i, f)| open(i, f)).collect()
}

/// File `index` of a call, opened when it is given by path.
fn open(index: usize, file: &wit::File) -> Result<Opened<'_>, wit::UploadError> {
    match &file.source {
        wit::Source::Bytes(bytes) => Ok(Opened::Bytes(bytes)),
        wit::Source::Path(path) => fs::open(path).map(Opened::File).map_err(|reason| {
            wit::UploadError::InvalidFile(wit::InvalidFile {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                name: file.name.escape_debug().to_string(),
                reason,
            })
        }),
    }
}

fn file_ref(r: FileRef) -> wit::FileRef {
    wit::FileRef {
        name: r.name,
        id: r.id,
        size: r.size,
        sha256: r.sha256,
    }
}

fn upload_error(error: Error) -> wit::UploadError {
    use crate::api::ErrorClass;
    match error {
        Error::InvalidSettings(reason) => wit::UploadError::InvalidSettings(reason),
        Error::InvalidFile {
            index,
            name,
            reason,
        } => wit::UploadError::InvalidFile(wit::InvalidFile {
            index,
            name,
            reason,
        }),
        Error::TooLarge {
            index,
            name,
            size,
            limit,
        } => wit::UploadError::TooLarge(wit::FileTooLarge {
            index,
            name,
            size,
            limit,
        }),
        Error::Api {
            error,
            files,
            uploaded,
        } => {
            let retry_after = error.retry_after;
            let class = error.class;
            let failure = wit::Failure {
                files,
                uploaded: uploaded.into_iter().map(file_ref).collect(),
                http_status: Some(error.http_status),
                code: error.code,
                message: error.message,
            };
            match class {
                ErrorClass::Unauthorized => wit::UploadError::Unauthorized(failure),
                ErrorClass::Forbidden => wit::UploadError::Forbidden(failure),
                ErrorClass::RateLimited => wit::UploadError::RateLimited(wit::RateLimited {
                    retry_after,
                    failure,
                }),
                ErrorClass::NotFound => wit::UploadError::NotFound(failure),
                ErrorClass::Server => wit::UploadError::ServerError(failure),
                ErrorClass::Other => wit::UploadError::Api(failure),
            }
        }
        Error::PossiblyUploaded {
            kind,
            message,
            sent,
            files,
            uploaded,
        } => wit::UploadError::PossiblyUploaded(wit::PossibleUpload {
            kind: transport_kind(kind),
            sent,
            failure: unanswered(files, uploaded, message),
        }),
        Error::Token {
            error,
            files,
            uploaded,
        } => wit::UploadError::Token(wit::TokenFailure {
            problem: match error.problem {
                TokenProblem::InvalidClient => wit::TokenProblem::InvalidClient,
                TokenProblem::InvalidRefreshToken => wit::TokenProblem::InvalidRefreshToken,
                TokenProblem::TooManyRequests => wit::TokenProblem::TooManyRequests,
                TokenProblem::Other => wit::TokenProblem::Other,
            },
            http_status: error.http_status,
            code: error.code,
            message: error.message,
            files,
            uploaded: uploaded.into_iter().map(file_ref).collect(),
        }),
        Error::Transport {
            kind,
            body_sent,
            message,
            files,
            uploaded,
        } => wit::UploadError::Transport(wit::TransportFailure {
            kind: transport_kind(kind),
            body_sent,
            failure: unanswered(files, uploaded, message),
        }),
    }
}

/// A failure with no HTTP answer behind it.
fn unanswered(files: Vec<String>, uploaded: Vec<FileRef>, message: String) -> wit::Failure {
    wit::Failure {
        files,
        uploaded: uploaded.into_iter().map(file_ref).collect(),
        http_status: None,
        code: None,
        message,
    }
}

fn transport_kind(kind: TransportKind) -> wit::TransportKind {
    match kind {
        TransportKind::Timeout => wit::TransportKind::Timeout,
        TransportKind::Connection => wit::TransportKind::Connection,
        TransportKind::Dns => wit::TransportKind::Dns,
        TransportKind::Protocol => wit::TransportKind::Protocol,
    }
}

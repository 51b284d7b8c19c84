//! `bigin`: upload files to Bigin through the upload component.
//!
//! Prints one JSON object per line per uploaded file on stdout. On failure
//! it still prints the refs already won, then the error as one JSON object
//! on stderr, and exits with 1 (3 when the host itself failed).

#![expect(
    clippy::result_large_err,
    reason = "UploadError is the generated WIT type, handed on as the component gave it"
)]

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bigin_files::settings::RawSettings;
use bigin_files::upload::MAX_FILE_BYTES;
use bigin_host::{
    Attachment, File, FileRef, FileTooLarge, InvalidFile, Preopen, Progress, Runner, Source,
    UploadError, json,
};
use clap::{Parser, Subcommand};

/// What `--bytes` may pass in one call: the guest's memory holds it all.
const MAX_BYTES_IN_MEMORY: u64 = 512 * 1024 * 1024;

/// The component `make build` produces, found from the source tree.
const DEFAULT_COMPONENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/wasm32-wasip2/component/bigin_files.wasm"
);

#[derive(Parser)]
#[command(
    version,
    about = "Upload files to Bigin through a WebAssembly component"
)]
struct Cli {
    /// The upload component (.wasm) or its precompiled form (.cwasm).
    #[arg(long, env = "BIGIN_COMPONENT", default_value = DEFAULT_COMPONENT, global = true)]
    component: PathBuf,

    #[command(subcommand)]
    command: Command,
}

/// The record a command acts on.
#[derive(clap::Args)]
struct RecordArgs {
    /// Contacts, Pipelines, Accounts, Products, Tasks, Events or Notes.
    #[arg(long)]
    module: String,
    /// The record's id.
    #[arg(long)]
    record: String,
}

/// Where requests go.
#[derive(clap::Args)]
struct Target {
    /// The account's data centre: us, eu, au, in, cn, jp, sa or ca.
    #[arg(long, env = "BIGIN_DATA_CENTRE")]
    data_centre: Option<String>,
    /// An API origin that wins over the data centre, such as
    /// http://127.0.0.1:8080 for the local server.
    #[arg(long, env = "BIGIN_API_DOMAIN")]
    api_domain: Option<String>,
}

impl Target {
    /// A `BIGIN_*` variable that is set but cannot be read, such as a
    /// retry count that is not a number.
    fn unreadable(&self) -> Option<String> {
        env_settings().unreadable
    }

    /// Every `BIGIN_*` setting from the environment, with the flags on top;
    /// a variable that cannot be read ends the command as invalid settings.
    fn settings(self) -> RawSettings {
        let mut raw = env_settings();
        raw.data_centre = self.data_centre.or(raw.data_centre);
        raw.api_domain = self.api_domain.or(raw.api_domain);
        raw
    }
}

/// The `BIGIN_*` variables of this process.
fn env_settings() -> RawSettings {
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("BIGIN_"))
        .collect();
    RawSettings::from_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

#[derive(Subcommand)]
enum Command {
    /// Upload files; tokens and other settings come from BIGIN_* variables.
    Upload {
        #[command(flatten)]
        target: Target,
        /// Read the files into memory and pass their bytes, instead of
        /// preopening their directories for the component to stream from.
        #[arg(long)]
        bytes: bool,
        /// The files to upload, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Download files by id into a directory; the token comes from
    /// BIGIN_ACCESS_TOKEN.
    Download {
        #[command(flatten)]
        target: Target,
        /// The directory to write into; an existing file is not replaced.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// The encrypted ids, as `upload` printed them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Put uploaded ids into a record's file-upload field.
    Attach {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        on: RecordArgs,
        /// The file-upload field's API name.
        #[arg(long)]
        field: String,
        /// Encrypted ids, as `upload` printed them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Attach a file or a link to a record (Attachments API).
    AttachFile {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        on: RecordArgs,
        /// An http or https link to attach instead of a file.
        #[arg(long, conflicts_with = "file")]
        link: Option<String>,
        /// The file to attach.
        #[arg(required_unless_present = "link")]
        file: Option<PathBuf>,
    },
    /// Compile the component ahead of time into a .cwasm for faster starts.
    Precompile {
        /// Where to write the compiled component.
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let unreadable = match &cli.command {
        Command::Upload { target, .. }
        | Command::Download { target, .. }
        | Command::Attach { target, .. }
        | Command::AttachFile { target, .. } => target.unreadable(),
        Command::Precompile { .. } => None,
    };
    if let Some(problem) = unreadable {
        return upload_failure(&[], &UploadError::InvalidSettings(problem));
    }
    match cli.command {
        Command::Upload {
            target,
            bytes,
            files,
        } => upload(&cli.component, &target.settings(), &files, bytes),
        Command::Download { target, out, ids } => {
            download(&cli.component, &target.settings(), &out, &ids)
        }
        Command::Attach {
            target,
            on: RecordArgs { module, record },
            field,
            ids,
        } => {
            let settings = target.settings();
            with_runner(&cli.component, |runner| {
                let status = runner.attach(&settings, &module, &record, &field, &ids);
                status.map(|r| r.map(|s| json::record_status(&s)))
            })
        }
        Command::AttachFile {
            target,
            on: RecordArgs { module, record },
            link,
            file,
        } => {
            let settings = target.settings();
            let attachment = match (link, file) {
                (Some(url), _) => Attachment::Link(url),
                (None, Some(path)) => match read_files(std::slice::from_ref(&path)) {
                    Ok(mut files) => match files.pop() {
                        Some(file) => Attachment::File(file),
                        None => return host_failure(&"no file was read"),
                    },
                    Err(Refusal::Upload(error)) => return upload_failure(&[], &error),
                    Err(Refusal::Host(message)) => return host_failure(&message),
                },
                (None, None) => return host_failure(&"give a file or --link"),
            };
            with_runner(&cli.component, |runner| {
                let id = runner.upload_attachment(&settings, &module, &record, &attachment);
                id.map(|r| {
                    r.map(|id| serde_json::json!({"record_id": record, "attachment_id": id}))
                })
            })
        }
        Command::Precompile { out } => match Runner::precompile(&cli.component, &out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => host_failure(&format!("{e:#}")),
        },
    }
}

fn upload(component: &Path, settings: &RawSettings, paths: &[PathBuf], bytes: bool) -> ExitCode {
    let prepared = if bytes {
        read_files(paths).map(|files| (files, Vec::new()))
    } else {
        preopen_files(paths)
    };
    let (files, dirs) = match prepared {
        Ok(prepared) => prepared,
        Err(Refusal::Upload(error)) => return upload_failure(&[], &error),
        Err(Refusal::Host(message)) => return host_failure(&message),
    };
    let runner = match Runner::load(component) {
        Ok(runner) => runner,
        Err(e) => return host_failure(&format!("{e:#}")),
    };
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = Arc::new(Progress::default());
    let bar = ProgressBar::start(Arc::clone(&progress), total, files.len());
    let outcome = runner
        .upload_in(settings, &dirs, &files, Some(&progress))
        .map(|(outcome, _)| outcome);
    drop(bar);
    match outcome {
        Ok(Ok(refs)) => {
            print_refs(&refs);
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => upload_failure(json::uploaded(&error), &error),
        Err(e) => host_failure(&format!("{e:#}")),
    }
}

fn download(component: &Path, settings: &RawSettings, out: &Path, ids: &[String]) -> ExitCode {
    let runner = match Runner::load(component) {
        Ok(runner) => runner,
        Err(e) => return host_failure(&format!("{e:#}")),
    };
    for id in ids {
        let file = match runner.download(settings, id) {
            Ok(Ok(file)) => file,
            Ok(Err(error)) => return upload_failure(&[], &error),
            Err(e) => return host_failure(&format!("{e:#}")),
        };
        let path = out.join(&file.name);
        // `create_new` keeps an existing file; the name is already a plain
        // file name, so the path stays inside `out`.
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&file.data));
        if let Err(e) = written {
            return host_failure(&format!("{}: {e}", path.display()));
        }
        // A closed stdout is no reason to stop the remaining downloads.
        let _ = writeln!(std::io::stdout(), "{}", json::downloaded(id, &file, &path));
    }
    ExitCode::SUCCESS
}

/// Loads the component, runs one call and prints its JSON answer.
fn with_runner(
    component: &Path,
    call: impl FnOnce(&Runner) -> wasmtime::Result<Result<serde_json::Value, UploadError>>,
) -> ExitCode {
    let runner = match Runner::load(component) {
        Ok(runner) => runner,
        Err(e) => return host_failure(&format!("{e:#}")),
    };
    match call(&runner) {
        Ok(Ok(value)) => {
            // The call took effect; a closed stdout does not undo it.
            let _ = writeln!(std::io::stdout(), "{value}");
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => upload_failure(&[], &error),
        Err(e) => host_failure(&format!("{e:#}")),
    }
}

/// A one-line progress display on stderr, shown only when stderr is a
/// terminal and the upload has run for a moment; pipes and CI see nothing.
struct ProgressBar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressBar {
    /// How long an upload runs before the line appears.
    const DELAY: Duration = Duration::from_millis(750);
    const TICK: Duration = Duration::from_millis(200);

    fn start(progress: Arc<Progress>, total: u64, files: usize) -> ProgressBar {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return ProgressBar { stop, thread: None };
        }
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut shown = false;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Self::TICK);
                let elapsed = started.elapsed();
                if elapsed < Self::DELAY {
                    continue;
                }
                shown = true;
                let sent = progress.bytes_sent.load(Ordering::Relaxed);
                // Requests carry ten files each, in order.
                let done =
                    (progress.requests_done.load(Ordering::Relaxed) as usize * 10).min(files);
                let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
                let rate = mib(sent) / elapsed.as_secs_f64();
                eprint!(
                    "\r{:.1}/{:.1} MiB sent, {done}/{files} files uploaded, {rate:.1} MiB/s   ",
                    mib(sent),
                    mib(total)
                );
            }
            if shown {
                eprint!("\r\x1b[2K");
            }
        });
        ProgressBar {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

enum Refusal {
    Upload(UploadError),
    Host(String),
}

/// Reads the files, refusing one over the limit without reading more of it
/// than the limit and a byte (a device or pipe has no size to go by), and a
/// set too large for the guest's memory before reading any.
fn read_files(paths: &[PathBuf]) -> Result<Vec<File>, Refusal> {
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    if total > MAX_BYTES_IN_MEMORY {
        return Err(Refusal::Host(format!(
            "{total} bytes are too many to pass as bytes in one call (at most \
             {MAX_BYTES_IN_MEMORY}); leave out --bytes to stream them"
        )));
    }
    let mut files = Vec::with_capacity(paths.len());
    for (index, path) in paths.iter().enumerate() {
        let name = file_name(index, path)?;
        let unreadable = |e: std::io::Error| invalid_file(index, path, &e.to_string());
        let mut data = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut data))
            .map_err(unreadable)?;
        if data.len() as u64 > MAX_FILE_BYTES {
            let size = std::fs::metadata(path)
                .map(|m| m.len())
                .unwrap_or(0)
                .max(data.len() as u64);
            return Err(Refusal::Upload(UploadError::TooLarge(FileTooLarge {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                name,
                size,
                limit: MAX_FILE_BYTES,
            })));
        }
        files.push(File {
            name,
            content_type: None,
            source: Source::Bytes(data),
        });
    }
    Ok(files)
}

/// A file the user named that cannot be used, as the component would say.
fn invalid_file(index: usize, path: &Path, reason: &str) -> Refusal {
    Refusal::Upload(UploadError::InvalidFile(InvalidFile {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        name: path.display().to_string(),
        reason: reason.to_owned(),
    }))
}

/// Gives each file's directory to the component, read-only, as `/in0`,
/// `/in1`, ..., and names the files by path there; the host reads none of
/// them.
fn preopen_files(paths: &[PathBuf]) -> Result<(Vec<File>, Vec<Preopen>), Refusal> {
    let mut dirs: Vec<Preopen> = Vec::new();
    let mut files = Vec::with_capacity(paths.len());
    for (index, path) in paths.iter().enumerate() {
        let name = file_name(index, path)?;
        let full =
            std::fs::canonicalize(path).map_err(|e| invalid_file(index, path, &e.to_string()))?;
        let parent = full
            .parent()
            .ok_or_else(|| invalid_file(index, path, "has no directory"))?
            .to_path_buf();
        let guest = match dirs.iter().find(|d| d.host == parent) {
            Some(dir) => dir.guest.clone(),
            None => {
                let guest = format!("/in{}", dirs.len());
                dirs.push(Preopen {
                    host: parent,
                    guest: guest.clone(),
                });
                guest
            }
        };
        // The name the file has on disk, which `canonicalize` kept.
        let on_disk = full
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(name.as_str())
            .to_owned();
        files.push(File {
            name,
            content_type: None,
            source: Source::Path(format!("{guest}/{on_disk}")),
        });
    }
    Ok((files, dirs))
}

fn file_name(index: usize, path: &Path) -> Result<String, Refusal> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| invalid_file(index, path, "no file name, or one that is not valid UTF-8"))
}

fn print_refs(refs: &[FileRef]) {
    let mut out = std::io::stdout().lock();
    for r in refs {
        // A closed stdout (`| head`) is no reason to fail the upload.
        let _ = writeln!(out, "{}", json::file_ref(r));
    }
}

fn upload_failure(uploaded: &[FileRef], error: &UploadError) -> ExitCode {
    print_refs(uploaded);
    eprintln!("{}", json::upload_error(error));
    ExitCode::from(1)
}

fn host_failure(message: &dyn std::fmt::Display) -> ExitCode {
    eprintln!(
        "{}",
        serde_json::json!({"error": "host", "message": message.to_string()})
    );
    ExitCode::from(3)
}

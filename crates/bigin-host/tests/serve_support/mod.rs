//! What the `wasmtime serve` tests share: the composed component and
//! wasmtime found (or a clear failure naming the `make` target), a fixture
//! that runs both servers on loopback, and a small blocking HTTP client.

pub mod cdp;

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bigin_local::{Config, LocalServer};
use sha2::{Digest as _, Sha256};

/// The token `bigin-local` accepts by default.
pub const TOKEN: &str = "local-dev-token";

/// How long `wasmtime serve` may take to compile the component and listen.
const START_LIMIT: Duration = Duration::from_secs(120);

/// How long one HTTP exchange may take, 20 MiB bodies included.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(120);

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The composed component: `$BIGIN_SERVE_COMPONENT`, else where the
/// Makefile puts it. Panics with the fix when it is missing.
pub fn component() -> PathBuf {
    let path = std::env::var_os("BIGIN_SERVE_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/serve/bigin_serve.wasm"));
    assert!(
        path.is_file(),
        "the composed serve component {} is missing: run `make serve-component` \
         (`make test` builds it first)",
        path.display()
    );
    path
}

/// `wasmtime`: `$WASMTIME`, else the first on `PATH`, else cargo's own
/// `bin` folder (where `cargo install` put it). Panics with the fix when
/// there is none.
pub fn wasmtime() -> PathBuf {
    if let Some(path) = std::env::var_os("WASMTIME") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "WASMTIME={} is not a file", path.display());
        return path;
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin/wasmtime"));
    find_on_path("wasmtime")
        .or(cargo_bin.filter(|path| path.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "wasmtime is not on PATH: run `make wasmtime` (it installs \
                 wasmtime-cli 48.0.8 with cargo; `make test` does it first)"
            )
        })
}

/// The first executable called `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Kills the child on drop, so a failing test leaves nothing running.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // It may have exited already; either way it is gone after this.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bigin-local` in this process and `wasmtime serve` running the composed
/// component against it, both on 127.0.0.1.
pub struct Serve {
    // Declared first so that it is dropped first: the front stops before
    // the server it talks to.
    _child: ChildGuard,
    /// The Bigin-compatible server the component uploads to.
    pub local: LocalServer,
    /// Where `wasmtime serve` listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Serve {
    /// Both servers, the component holding the token `bigin-local` takes.
    pub fn start() -> anyhow::Result<Serve> {
        Serve::start_with(TOKEN, &[])
    }

    /// Both servers, the component holding `token` and given the upload
    /// settings `env` (such as `BIGIN_MAX_RETRIES`) besides.
    pub fn start_with(token: &str, env: &[(&str, &str)]) -> anyhow::Result<Serve> {
        let local = LocalServer::start(Config::default()).context("starting bigin-local")?;
        // Port 0: wasmtime binds a free port and prints the address, so no
        // port is guessed and none can be taken in between.
        let base_url = local.base_url();
        let settings = [
            ("BIGIN_ACCESS_TOKEN", token),
            ("BIGIN_API_DOMAIN", &base_url),
        ];
        let mut command = Command::new(wasmtime());
        command
            .arg("serve")
            .args(["-Scli", "--addr", "127.0.0.1:0"]);
        for (name, value) in settings.iter().chain(env) {
            // `--env NAME` hands the guest wasmtime's own value, which keeps
            // the token off the command line; the guest sees no others.
            command.env(name, value).arg(format!("--env={name}"));
        }
        let mut child = command
            .arg(component())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting wasmtime serve")?;
        let stdout = child.stdout.take().context("wasmtime's stdout")?;
        let stderr = child.stderr.take().context("wasmtime's stderr")?;
        let child = ChildGuard(child);

        let log = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines_rx) = mpsc::channel();
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn Read + Send>, None),
            (Box::new(stderr), Some(lines_tx)),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut log) = log.lock() {
                        log.push_str(&line);
                        log.push('\n');
                    }
                    if let Some(tx) = &tx {
                        // The receiver leaves once it has the address.
                        let _ = tx.send(line);
                    }
                }
            });
        }

        let deadline = Instant::now() + START_LIMIT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("Serving HTTP on http://") {
                        break rest
                            .trim_end_matches('/')
                            .parse::<SocketAddr>()
                            .with_context(|| format!("reading the address in {line:?}"))?;
                    }
                }
                Err(_) => bail!(
                    "wasmtime serve did not start within {START_LIMIT:?}; it said:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                ),
            }
        };
        ensure!(addr.ip().is_loopback(), "wasmtime serve bound {addr}");
        Ok(Serve {
            _child: child,
            local,
            addr,
            log,
        })
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything wasmtime and the component printed so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends one request to the front.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        request(self.addr, method, path, headers, Body::Bytes(body))
    }

    /// Posts `files` (name, bytes) as a form, as `curl -F file=@...` does.
    pub fn post_files(&self, files: &[(&str, &[u8])]) -> anyhow::Result<Answer> {
        let (content_type, body) = multipart(files);
        self.request(
            "POST",
            "/upload",
            &[("content-type", content_type.as_str())],
            &body,
        )
    }
}

/// The boundary of every form built here; pinned, so bodies are
/// reproducible.
pub const BOUNDARY: &str = "------------------------serve-test-9f2c1e";

/// A `multipart/form-data` body with one `file` part per `(name, bytes)`,
/// encoded as browsers and curl do (WHATWG HTML: `"`, CR and LF in names
/// percent-encoded, everything else raw UTF-8).
pub fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, data) in files {
        let name = name
            .replace('"', "%22")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// What a request sends after its head.
pub enum Body<'a> {
    /// These bytes, with a matching `Content-Length`.
    Bytes(&'a [u8]),
    /// Nothing, whatever the headers given say: for answers that must come
    /// before the body is read.
    Withheld,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("answer {} is not JSON: {}", self.status, self.text()))
    }
}

/// One HTTP/1.1 exchange on a fresh connection. The body is written from a
/// second thread while this one reads, so an answer sent before the body
/// is read (and the connection then closed) is still seen.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
) -> anyhow::Result<Answer> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(EXCHANGE_LIMIT))?;
    stream.set_write_timeout(Some(EXCHANGE_LIMIT))?;

    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let bytes: &[u8] = match body {
        Body::Bytes(bytes) => {
            head.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
            bytes
        }
        Body::Withheld => &[],
    };
    head.push_str("\r\n");

    let mut writer = stream.try_clone()?;
    let answer = std::thread::scope(|scope| {
        let sent = scope.spawn(move || -> std::io::Result<()> {
            writer.write_all(head.as_bytes())?;
            // Small writes, so that an early answer ends the upload soon.
            for chunk in bytes.chunks(256 * 1024) {
                writer.write_all(chunk)?;
            }
            writer.flush()
        });
        let answer = read_answer(&stream);
        // Unblocks the writer if the server stopped reading.
        let _ = stream.shutdown(Shutdown::Both);
        // A write may fail once the server has answered and closed; the
        // answer is what counts.
        let _ = sent.join();
        answer
    })?;
    Ok(answer)
}

fn read_answer(stream: &TcpStream) -> anyhow::Result<Answer> {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .context("reading the status line")?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).context("reading a header")?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("bad header {line:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v): &(String, String)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("bad chunk size {size:?}"))?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else if let Some(length) = find("content-length") {
        let length: usize = length.parse().context("bad Content-Length")?;
        body.resize(length, 0);
        reader.read_exact(&mut body).context("reading the body")?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The answer's `files` as (name, id, size, sha256).
pub fn files_of(answer: &serde_json::Value) -> anyhow::Result<Vec<(String, String, u64, String)>> {
    let files = answer["files"]
        .as_array()
        .with_context(|| format!("no files in {answer}"))?;
    files
        .iter()
        .map(|f| {
            Ok((
                f["name"].as_str().context("name")?.to_owned(),
                f["id"].as_str().context("id")?.to_owned(),
                f["size"].as_u64().context("size")?,
                f["sha256"].as_str().context("sha256")?.to_owned(),
            ))
        })
        .collect()
}

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh, empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> anyhow::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Leftovers in the temporary directory are harmless.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! Headless Chromium driven over the Chrome DevTools Protocol.
//!
//! The protocol goes over `--remote-debugging-pipe`: Chromium reads
//! commands from its file descriptor 3 and writes answers and events to
//! descriptor 4, each message JSON ended by a NUL byte. That needs no
//! debugging port (nothing listens) and no WebSocket client; a shell
//! `exec` wires the child's stdin and stdout to those descriptors.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::TempDir;

/// How long one protocol command may take.
const CALL_LIMIT: Duration = Duration::from_secs(30);

/// Chromium: `$CHROMIUM`, else `chromium` on `PATH`. Panics with the fix
/// when there is none.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "CHROMIUM={} is not a file", path.display());
        return path;
    }
    super::find_on_path("chromium").unwrap_or_else(|| {
        panic!(
            "chromium is not on PATH: run `make chromium` (it runs `apt-get install -y \
             chromium`; `make test` does it first)"
        )
    })
}

/// A headless Chromium with a fresh profile. Dropping it kills its whole
/// process group (the browser and its helpers) and removes the profile.
pub struct Browser {
    to: ChildStdin,
    from: Receiver<Value>,
    next_id: u64,
    stderr: Arc<Mutex<String>>,
    group: GroupGuard,
    _profile: TempDir,
}

impl Browser {
    /// Starts `binary` headless; it can reach nothing but loopback.
    pub fn launch(binary: &Path) -> anyhow::Result<Browser> {
        let profile = TempDir::new("bigin-serve-chromium")?;
        let mut child = Command::new("sh")
            // fd 3 <- our stdin pipe, fd 4 -> our stdout pipe, then the
            // browser's own stdin and stdout go nowhere.
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                // No proxy, and no address but 127.0.0.1 resolves (the
                // rules cover IP literals too): nothing else may be reached.
                "--no-proxy-server",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--window-size=1000,760",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let to = child.stdin.take().context("chromium's pipe in")?;
        let out = child.stdout.take().context("chromium's pipe out")?;
        let mut err = child.stderr.take().context("chromium's stderr")?;
        let group = GroupGuard(child);

        let (tx, from) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = BufReader::new(out);
            loop {
                let mut message = Vec::new();
                match out.read_until(0, &mut message) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                message.pop_if(|b| *b == 0);
                let Ok(value) = serde_json::from_slice::<Value>(&message) else {
                    continue;
                };
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        std::thread::spawn({
            let stderr = Arc::clone(&stderr);
            move || {
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = err.read(&mut buf) {
                    if let Ok(mut text) = stderr.lock() {
                        text.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            }
        });

        Ok(Browser {
            to,
            from,
            next_id: 1,
            stderr,
            group,
            _profile: profile,
        })
    }

    /// Sends a command (to a page when `session` is given) and waits for
    /// its result; events met on the way are dropped.
    pub fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message)?;
        bytes.push(0);
        self.to
            .write_all(&bytes)
            .and_then(|()| self.to.flush())
            .with_context(|| format!("sending {method}; chromium said:\n{}", self.stderr()))?;

        let deadline = Instant::now() + CALL_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(answer) = self.from.recv_timeout(left) else {
                bail!(
                    "no answer to {method} within {CALL_LIMIT:?}; chromium said:\n{}",
                    self.stderr()
                );
            };
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                bail!("{method} failed: {error}");
            }
            return Ok(answer["result"].clone());
        }
    }

    /// Opens a new page and attaches to it.
    pub fn new_page(&mut self) -> anyhow::Result<Page<'_>> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"]
            .as_str()
            .context("no targetId")?
            .to_owned();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        let session = attached["sessionId"]
            .as_str()
            .context("no sessionId")?
            .to_owned();
        Ok(Page {
            browser: self,
            session,
        })
    }

    /// Asks the browser to quit, and waits a little for it.
    pub fn close(mut self) -> anyhow::Result<()> {
        // The browser may quit before it answers.
        let _ = self.call(None, "Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.group.0.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Dropping kills what is left.
        Ok(())
    }

    /// What Chromium printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// One page (a target with its session).
pub struct Page<'a> {
    browser: &'a mut Browser,
    session: String,
}

impl Page<'_> {
    /// Sends a command to this page.
    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let session = self.session.clone();
        self.browser.call(Some(&session), method, params)
    }

    /// Evaluates `expression` in the page and returns its value.
    pub fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            bail!("{expression} threw: {exception}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Polls `expression` until it yields something other than `null` or
    /// `false`, for at most `limit`.
    pub fn wait_for(&mut self, expression: &str, limit: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(expression)?;
            if !value.is_null() && value != json!(false) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!("{expression} still {value} after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node id of the first element matching `selector`.
    pub fn query(&mut self, selector: &str) -> anyhow::Result<u64> {
        let document = self.call("DOM.getDocument", json!({}))?;
        let root = document["root"]["nodeId"]
            .as_u64()
            .context("no document node")?;
        let found = self.call(
            "DOM.querySelector",
            json!({"nodeId": root, "selector": selector}),
        )?;
        match found["nodeId"].as_u64() {
            Some(id) if id != 0 => Ok(id),
            _ => bail!("nothing matches {selector}"),
        }
    }

    /// Clicks the middle of the element matching `selector` with the mouse,
    /// as a person would.
    pub fn click(&mut self, selector: &str) -> anyhow::Result<()> {
        let node = self.query(selector)?;
        let model = self.call("DOM.getBoxModel", json!({"nodeId": node}))?;
        let quad: Vec<f64> = model["model"]["content"]
            .as_array()
            .context("no box model")?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        anyhow::ensure!(quad.len() == 8, "odd box model {model}");
        let x = (quad[0] + quad[2] + quad[4] + quad[6]) / 4.0;
        let y = (quad[1] + quad[3] + quad[5] + quad[7]) / 4.0;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )?;
        }
        Ok(())
    }

    /// A PNG of what the page shows.
    pub fn screenshot(&mut self) -> anyhow::Result<Vec<u8>> {
        use base64::Engine as _;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = shot["data"].as_str().context("no screenshot data")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
    }
}

/// How many distinct colours a PNG's pixels have: a blank page has one.
pub fn distinct_colours(png_bytes: &[u8]) -> anyhow::Result<usize> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info()?;
    let mut pixels = vec![0; reader.output_buffer_size().context("image too large")?];
    let frame = reader.next_frame(&mut pixels)?;
    let channels = frame.color_type.samples();
    let mut colours: Vec<&[u8]> = pixels[..frame.buffer_size()].chunks(channels).collect();
    colours.sort_unstable();
    colours.dedup();
    Ok(colours.len())
}

/// Kills a child's whole process group on drop: Chromium starts helper
/// processes, and none may outlive the test.
struct GroupGuard(Child);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // The child leads its own group (`process_group(0)`), so the group
        // id is its pid; `kill` with a negative id signals the group.
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

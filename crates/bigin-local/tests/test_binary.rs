//! The `bigin-local` binary: its start-up line, request log, and clean exit
//! on SIGTERM.

mod common;

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use common::{Part, TOKEN, upload, uploaded_ids};

const BIN: &str = env!("CARGO_BIN_EXE_bigin-local");

/// Kills the child on drop so that a failing test leaves nothing running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to `limit` for the child to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> anyhow::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("bigin-local did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn prints_its_address_logs_requests_and_exits_on_sigterm() -> anyhow::Result<()> {
    let child = Command::new(BIN)
        .args(["--port", "0", "--client-secret", "s3cret-value"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting bigin-local")?;
    let mut guard = Guard(child);
    let stdout = guard.0.stdout.take().context("stdout")?;
    let mut stderr = guard.0.stderr.take().context("stderr")?;

    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = err_tx.send(text);
    });

    let line = lines_rx
        .recv_timeout(Duration::from_secs(20))
        .context("no start-up line")??;
    let url = line
        .strip_prefix("bigin-local listening on http://")
        .with_context(|| format!("unexpected line {line:?}"))?;
    let addr: SocketAddr = url.parse()?;
    assert!(addr.ip().is_loopback());

    let ids = uploaded_ids(&upload(addr, TOKEN, &[Part::file("a.txt", b"a")])?)?;
    assert_eq!(ids.len(), 1);
    let form = "grant_type=refresh_token&client_id=local-client&client_secret=s3cret-value\
                &refresh_token=local-refresh-token";
    let minted = common::request(addr, "POST", &format!("/oauth/v2/token?{form}"), &[], b"")?;
    assert_eq!(minted.status, 200);

    let status = Command::new("kill")
        .args(["-TERM", &guard.0.id().to_string()])
        .status()
        .context("running kill")?;
    assert!(status.success());
    let exit = wait_exit(&mut guard.0, Duration::from_secs(10))?;
    assert!(exit.success(), "{exit}");

    let log = err_rx.recv_timeout(Duration::from_secs(10))?;
    assert!(log.contains("POST /bigin/v2/files 200 files=1"), "{log}");
    assert!(log.contains("POST /oauth/v2/token 200"), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
    assert!(!log.contains("s3cret-value"), "{log}");
    assert!(
        lines_rx.recv_timeout(Duration::from_secs(5)).is_err(),
        "more than one stdout line"
    );
    Ok(())
}

#[test]
fn refuses_a_non_loopback_bind() -> anyhow::Result<()> {
    let child = Command::new(BIN)
        .args(["--bind", "0.0.0.0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut guard = Guard(child);
    let exit = wait_exit(&mut guard.0, Duration::from_secs(10))?;
    assert!(!exit.success());
    let mut stdout = String::new();
    guard
        .0
        .stdout
        .take()
        .context("stdout")?
        .read_to_string(&mut stdout)?;
    assert!(stdout.is_empty(), "{stdout}");
    Ok(())
}

//! `make bench`: the `bigin` command beside curl, against the same local
//! server on loopback, with the same files; medians of several runs, and
//! the ratio to curl for each scenario.
//!
//! Both sides are whole processes started the same way, so each time
//! includes process start: curl's is small, `bigin`'s includes loading the
//! precompiled component. The guest's peak memory and the first call's time
//! are measured in-process, where the host can see them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bigin_files::settings::{RawSettings, Secret};
use bigin_host::{File, Preopen, Runner, Source};

const TOKEN: &str = "local-dev-token";
const RUNS: usize = 5;
const MIB: usize = 1024 * 1024;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// The local server as a child process, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(bin: &Path) -> Result<Server, String> {
    let mut child = Command::new(bin)
        .args(["--port", "0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout from the server")?;
    // The first line names the address; reading it is bounded by the
    // server's own start, and a dead server ends the read with nothing.
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the server's address: {e}"))?;
    let url = line
        .trim()
        .strip_prefix("bigin-local listening on ")
        .ok_or_else(|| format!("unexpected first line from the server: {line:?}"))?
        .to_owned();
    Ok(Server { child, url })
}

fn run() -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let release = root.join("target/release");
    let component = root.join("target/wasm32-wasip2/component/bigin_files.wasm");
    if !component.exists() {
        return Err(format!(
            "{} is missing: run `make component`",
            component.display()
        ));
    }
    Command::new("curl")
        .arg("--version")
        .output()
        .map_err(|e| format!("curl is needed to compare against: {e}"))?;

    let work = std::env::temp_dir().join(format!("bigin-bench-{}", std::process::id()));
    std::fs::create_dir_all(work.join("small")).map_err(|e| e.to_string())?;
    let _cleanup = Cleanup(work.clone());
    let cwasm = work.join("bigin_files.cwasm");
    Runner::precompile(&component, &cwasm).map_err(|e| format!("{e:#}"))?;

    let big = work.join("big-20MiB.bin");
    std::fs::write(&big, pattern(20 * MIB)).map_err(|e| e.to_string())?;
    let mut small = Vec::new();
    for i in 0..100 {
        let path = work.join("small").join(format!("s{i:03}.bin"));
        std::fs::write(&path, pattern(16 * 1024)).map_err(|e| e.to_string())?;
        small.push(path);
    }

    let server = start_server(&release.join("bigin-local"))?;
    let bigin = |args: &[&str], files: &[PathBuf]| {
        let mut cmd = Command::new(release.join("bigin"));
        cmd.arg("--component")
            .arg(&cwasm)
            .arg("upload")
            .args(args)
            .args(files)
            .env("BIGIN_ACCESS_TOKEN", TOKEN)
            .env("BIGIN_API_DOMAIN", &server.url);
        cmd
    };
    let curl = |groups: &[&[PathBuf]]| {
        let mut cmd = Command::new("curl");
        for (i, group) in groups.iter().enumerate() {
            if i > 0 {
                cmd.arg("--next");
            }
            cmd.args(["-sS", "--fail", "-o", "/dev/null", "-H"])
                .arg(format!("Authorization: Zoho-oauthtoken {TOKEN}"));
            for path in group.iter() {
                cmd.arg("-F").arg(format!("file=@{}", path.display()));
            }
            cmd.arg(format!("{}/bigin/v2/files", server.url));
        }
        cmd
    };

    let big_files = [big.clone()];
    let small_groups: Vec<&[PathBuf]> = small.chunks(10).collect();
    let a = compare(
        "(a) one 20 MiB file from a path",
        || bigin(&[], &big_files),
        || curl(&[&big_files]),
    )?;
    let b = compare(
        "(b) one 20 MiB file given as bytes",
        || bigin(&["--bytes"], &big_files),
        || curl(&[&big_files]),
    )?;
    let c = compare(
        "(c) 100 files of 16 KiB (ten requests each)",
        || bigin(&[], &small),
        || curl(&small_groups),
    )?;

    let runner = Runner::load(&cwasm).map_err(|e| format!("{e:#}"))?;
    let settings = RawSettings {
        api_domain: Some(server.url.clone()),
        access_token: Some(Secret::new(TOKEN)),
        ..RawSettings::default()
    };
    let dirs = [Preopen {
        host: work.clone(),
        guest: "/in".into(),
    }];
    let by_path = File {
        name: "big-20MiB.bin".into(),
        content_type: None,
        source: Source::Path("/in/big-20MiB.bin".into()),
    };
    let as_bytes = File {
        name: "big-20MiB.bin".into(),
        content_type: None,
        source: Source::Bytes(pattern(20 * MIB)),
    };
    let peak = |file: &File| -> Result<usize, String> {
        let (outcome, usage) = runner
            .upload_in(&settings, &dirs, std::slice::from_ref(file), None)
            .map_err(|e| format!("{e:#}"))?;
        outcome.map_err(|e| format!("{e:?}"))?;
        Ok(usage.peak_memory_bytes)
    };
    let started = Instant::now();
    let peak_path = peak(&by_path)?;
    let in_process_path = started.elapsed();
    let started = Instant::now();
    let peak_bytes = peak(&as_bytes)?;
    let in_process_bytes = started.elapsed();
    // What the guest and the host's HTTP stack take without process start
    // and component loading: where (a) and (b) spend their time.
    println!(
        "in-process upload of 20 MiB: {:.1} ms from a path, {:.1} ms as bytes",
        in_process_path.as_secs_f64() * 1000.0,
        in_process_bytes.as_secs_f64() * 1000.0
    );
    println!(
        "guest peak memory: {:.2} MiB from a path, {:.2} MiB as bytes (payload 20 MiB)",
        peak_path as f64 / MIB as f64,
        peak_bytes as f64 / MIB as f64
    );

    let component_bytes = std::fs::metadata(&component)
        .map_err(|e| e.to_string())?
        .len();
    println!(
        "component: {component_bytes} bytes ({:.1} KiB)",
        component_bytes as f64 / 1024.0
    );

    let tiny = File {
        name: "first.txt".into(),
        content_type: None,
        source: Source::Bytes(b"first call".to_vec()),
    };
    let mut first = Vec::new();
    for _ in 0..RUNS {
        // A fresh runner each time: the precompiled component is loaded
        // first, then what is timed is instantiation plus one upload.
        let fresh = Runner::load(&cwasm).map_err(|e| format!("{e:#}"))?;
        let started = Instant::now();
        fresh
            .upload(&settings, std::slice::from_ref(&tiny))
            .map_err(|e| format!("{e:#}"))?
            .map_err(|e| format!("{e:?}"))?;
        first.push(started.elapsed());
    }
    let first_ms = median(&mut first).as_secs_f64() * 1000.0;
    println!("instantiate + first call (precompiled): {first_ms:.2} ms");

    println!(
        "bench: big_path_ratio={a:.2} big_bytes_ratio={b:.2} small_ratio={c:.2} \
         guest_peak_path_bytes={peak_path} guest_peak_bytes_bytes={peak_bytes} \
         component_bytes={component_bytes} first_call_ms={first_ms:.2}"
    );
    Ok(())
}

/// Runs both commands `RUNS` times, alternating, and prints the medians.
fn compare(
    label: &str,
    ours: impl Fn() -> Command,
    theirs: impl Fn() -> Command,
) -> Result<f64, String> {
    let mut our_times = Vec::new();
    let mut their_times = Vec::new();
    for _ in 0..RUNS {
        our_times.push(time(ours())?);
        their_times.push(time(theirs())?);
    }
    let ours = median(&mut our_times);
    let theirs = median(&mut their_times);
    let ratio = ours.as_secs_f64() / theirs.as_secs_f64();
    println!(
        "{label}: bigin {:.1} ms, curl {:.1} ms, ratio {ratio:.2}",
        ours.as_secs_f64() * 1000.0,
        theirs.as_secs_f64() * 1000.0
    );
    Ok(ratio)
}

fn time(mut cmd: Command) -> Result<Duration, String> {
    let started = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(elapsed)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

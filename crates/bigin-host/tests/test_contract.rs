//! The built component matches the documented WIT world, and the command
//! line prints what the README says.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;

/// The interfaces named on `import` lines of the world in wit/files.wit.
fn world_imports() -> BTreeSet<String> {
    let wit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit/files.wit"))
        .expect("reading wit/files.wit");
    let world = wit
        .split("world uploader-component")
        .nth(1)
        .expect("the world is declared");
    world
        .lines()
        .filter_map(|l| l.trim().strip_prefix("import "))
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect()
}

#[test]
fn the_component_imports_exactly_the_documented_world() {
    let runner = runner();
    let ty = runner.component().component_type();
    let imports: BTreeSet<String> = ty
        .imports(runner.engine())
        .map(|(n, _)| n.to_owned())
        .collect();
    let exports: BTreeSet<String> = ty
        .exports(runner.engine())
        .map(|(n, _)| n.to_owned())
        .collect();

    // Interfaces whose types the world's imports use come along with them.
    let implied: BTreeSet<String> = [
        "wasi:io/error@0.2.12",
        "wasi:io/poll@0.2.12",
        "wasi:io/streams@0.2.12",
        "wasi:clocks/monotonic-clock@0.2.12",
        "wasi:http/types@0.2.12",
        "wasi:filesystem/types@0.2.12",
        "bigin:files/types@0.1.0",
    ]
    .map(String::from)
    .into();
    let documented: BTreeSet<String> = world_imports().union(&implied).cloned().collect();
    assert_eq!(imports, documented);
    assert_eq!(
        exports,
        [
            "bigin:files/uploader@0.1.0",
            "bigin:files/downloader@0.1.0",
            "bigin:files/records@0.1.0",
        ]
        .map(String::from)
        .into()
    );
}

/// The `bigin` command aimed at `server` with the built component; `token`
/// as its access token.
fn bigin(server: &bigin_local::LocalServer, token: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bigin"));
    cmd.env("BIGIN_ACCESS_TOKEN", token)
        .env("BIGIN_API_DOMAIN", server.base_url())
        .env("BIGIN_COMPONENT", component_path());
    cmd
}

#[test]
fn the_command_line_prints_one_json_line_per_file() {
    let server = server();
    let dir = std::env::temp_dir().join(format!("bigin-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.txt");
    let b = dir.join("b c.bin");
    std::fs::write(&a, "alpha").unwrap();
    std::fs::write(&b, pattern(5000, 1)).unwrap();
    let out = bigin(&server, TOKEN)
        .arg("upload")
        .arg(&a)
        .arg(&b)
        .output()
        .expect("running bigin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["name"], "a.txt");
    assert_eq!(lines[1]["name"], "b c.bin");
    assert_eq!(lines[0]["size"], 5);
    assert_eq!(lines[0]["sha256"], sha256_hex(b"alpha"));
    let keys: Vec<_> = lines[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["name", "id", "size", "sha256"]);

    let id = lines[1]["id"].as_str().unwrap();
    let back = dir.join("back");
    std::fs::create_dir_all(&back).unwrap();
    let out = bigin(&server, TOKEN)
        .args(["download", "--out"])
        .arg(&back)
        .arg(id)
        .output()
        .expect("running bigin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(back.join("b c.bin")).unwrap(),
        std::fs::read(&b).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_command_line_reports_errors_as_json_without_the_token() {
    let server = server();
    let dir = std::env::temp_dir().join(format!("bigin-cli-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.txt");
    std::fs::write(&a, "alpha").unwrap();
    let token = "leak-check-token-0c9d";
    let out = bigin(&server, token)
        .arg("upload")
        .arg(&a)
        .output()
        .expect("running bigin");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stderr.contains(token) && !stdout.contains(token));
    let error: serde_json::Value = serde_json::from_str(stderr.trim()).expect("a JSON error");
    assert_eq!(error["error"], "unauthorized");
    assert_eq!(error["code"], "INVALID_TOKEN");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_command_line_refuses_what_it_cannot_use_as_json() {
    let server = server();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = bigin(&server, TOKEN);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("running bigin");
        let error: serde_json::Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|_| panic!("a JSON error: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), error)
    };
    let (code, error) = run(&["upload", "/no/such/file.txt"], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(error["error"], "invalid-file");
    let (code, error) = run(
        &["upload", "/no/such/file.txt"],
        &[("BIGIN_MAX_RETRIES", "lots")],
    );
    assert_eq!(code, Some(1));
    assert_eq!(error["error"], "invalid-settings");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("BIGIN_MAX_RETRIES")
    );
    assert_eq!(server.stats().requests.values().sum::<u64>(), 0);
}

#[test]
fn a_closed_stdout_does_not_stop_downloads() {
    let server = server();
    let refs = runner()
        .upload(
            &settings(&server),
            &[file("one.txt", "1"), file("two.txt", "2")],
        )
        .unwrap()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("bigin-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = bigin(&server, TOKEN)
        .args(["download", "--out"])
        .arg(&dir)
        .args([&refs[0].id, &refs[1].id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running bigin");
    // Close the reading end at once, as `| head -0` would.
    drop(child.stdout.take());
    let status = child.wait().expect("bigin ends");
    assert!(status.success(), "exit {status:?}");
    assert_eq!(std::fs::read(dir.join("two.txt")).unwrap(), b"2");
    std::fs::remove_dir_all(&dir).unwrap();
}

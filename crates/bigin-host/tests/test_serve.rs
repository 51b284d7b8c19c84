//! The `wasmtime serve` front (examples/serve composed with the upload
//! component), over real HTTP: `bigin-local` on 127.0.0.1:0 stands in for
//! Bigin, `wasmtime serve` runs the composed component on another free
//! loopback port, and a headless Chromium drives the page.
//!
//! These tests need `wasmtime` (`make wasmtime`), the composed component
//! (`make serve-component`) and Chromium (`make chromium`); `make test`
//! provides all three first. A missing one fails the test, naming its
//! target.

mod serve_support;

use std::time::Duration;

use anyhow::Context as _;
use bigin_local::Fault;
use serde_json::json;
use serve_support::cdp::{self, Browser};
use serve_support::{Body, Serve, TempDir, files_of, request, sha256_hex};

const MIB: usize = 1024 * 1024;

/// The per-file limit, 20 MiB.
const LIMIT: usize = 20 * MIB;

/// Asserts every `(name, id, size, sha256)` matches what `bigin-local`
/// stored under that id, and the bytes that were sent.
fn assert_stored(
    serve: &Serve,
    answered: &[(String, String, u64, String)],
    sent: &[(&str, &[u8])],
) {
    assert_eq!(answered.len(), sent.len(), "{answered:?}");
    for ((name, id, size, sha256), (sent_name, sent_data)) in answered.iter().zip(sent) {
        let stored = serve
            .local
            .file(id)
            .unwrap_or_else(|| panic!("bigin-local has no file {id}"));
        assert_eq!(&stored.name, sent_name);
        assert_eq!(name, sent_name);
        assert_eq!(*size, sent_data.len() as u64);
        assert_eq!(sha256, &sha256_hex(sent_data));
        assert_eq!(sha256_hex(&stored.bytes), sha256_hex(sent_data), "{name}");
    }
}

fn bigin_uploads(serve: &Serve) -> u64 {
    serve
        .local
        .stats()
        .requests
        .get("POST /bigin/v2/files")
        .copied()
        .unwrap_or(0)
}

#[test]
fn a_form_with_two_files_stores_both_byte_for_byte() -> anyhow::Result<()> {
    let serve = Serve::start()?;
    let binary: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let sent: [(&str, &[u8]); 2] = [("notes.txt", b"first file\n"), ("blob.bin", &binary)];
    let answer = serve.post_files(&sent)?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_stored(&serve, &files_of(&answer.json()?)?, &sent);
    assert_eq!(
        bigin_uploads(&serve),
        1,
        "both files share one Bigin request"
    );
    Ok(())
}

#[test]
fn a_raw_put_uploads_one_file_under_its_decoded_name() -> anyhow::Result<()> {
    let serve = Serve::start()?;
    let data = b"id,total\n1,20\n";
    let answer = serve.request(
        "PUT",
        "/upload/report%20v2.csv",
        &[("content-type", "text/csv")],
        data,
    )?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let files = files_of(&answer.json()?)?;
    assert_stored(&serve, &files, &[("report v2.csv", data)]);
    let stored = serve.local.file(&files[0].1).context("stored")?;
    assert_eq!(stored.content_type.as_deref(), Some("text/csv"));
    Ok(())
}

#[test]
fn eleven_files_go_up_in_two_bigin_requests() -> anyhow::Result<()> {
    let serve = Serve::start()?;
    let names: Vec<String> = (0..11).map(|i| format!("file-{i:02}.txt")).collect();
    let bodies: Vec<Vec<u8>> = (0..11).map(|i| format!("body {i}").into_bytes()).collect();
    let sent: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&bodies)
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let answer = serve.post_files(&sent)?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_stored(&serve, &files_of(&answer.json()?)?, &sent);
    let counts: Vec<usize> = serve
        .local
        .stats()
        .uploads
        .iter()
        .map(|u| u.file_count)
        .collect();
    assert_eq!(counts, [10, 1]);
    Ok(())
}

#[test]
fn a_file_over_20_mib_is_refused_and_nothing_reaches_bigin() -> anyhow::Result<()> {
    let serve = Serve::start()?;
    let big = vec![b'x'; LIMIT + 1];
    let answer = serve.post_files(&[("big.bin", &big)])?;
    assert_eq!(answer.status, 413, "{}", answer.text());
    let body = answer.json()?;
    assert_eq!(body["error"], "file-too-large");
    assert_eq!(body["uploaded"], json!([]));

    // A declared length over the limit is refused before any of the body
    // is read: here none is ever sent.
    let length = (LIMIT + 1).to_string();
    let answer = request(
        serve.addr,
        "PUT",
        "/upload/big.bin",
        &[("content-length", &length)],
        Body::Withheld,
    )?;
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert_eq!(answer.json()?["error"], "content-too-large");

    assert_eq!(bigin_uploads(&serve), 0);
    assert!(serve.local.stats().uploads.is_empty());
    Ok(())
}

#[test]
fn a_file_of_exactly_20_mib_is_uploaded() -> anyhow::Result<()> {
    let serve = Serve::start()?;
    let data: Vec<u8> = (0..LIMIT).map(|i| (i % 251) as u8).collect();
    let sent: [(&str, &[u8]); 1] = [("exact.bin", &data)];
    let answer = serve.post_files(&sent)?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_stored(&serve, &files_of(&answer.json()?)?, &sent);
    Ok(())
}

#[test]
fn a_non_ascii_name_survives_both_routes() -> anyhow::Result<()> {
    let serve = Serve::start()?;
    let name = "naïve résumé – 数据 \"v2\".txt";
    let sent: [(&str, &[u8]); 1] = [(name, b"unicode")];
    let answer = serve.post_files(&sent)?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_stored(&serve, &files_of(&answer.json()?)?, &sent);

    let path =
        "/upload/na%C3%AFve%20r%C3%A9sum%C3%A9%20%E2%80%93%20%E6%95%B0%E6%8D%AE%20%22v2%22.txt";
    let answer = serve.request("PUT", path, &[], b"unicode")?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_stored(&serve, &files_of(&answer.json()?)?, &sent);
    Ok(())
}

#[test]
fn a_malformed_body_is_refused_with_400() -> anyhow::Result<()> {
    let serve = Serve::start()?;
    let (content_type, mut body) = serve_support::multipart(&[("a.txt", b"data")]);
    // Cut off before the closing boundary.
    body.truncate(body.len() - 20);
    let answer = serve.request("POST", "/upload", &[("content-type", &content_type)], &body)?;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()?["error"], "malformed-multipart");

    let answer = serve.request(
        "POST",
        "/upload",
        &[("content-type", &content_type)],
        b"this is not a form",
    )?;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()?["error"], "malformed-multipart");
    assert_eq!(bigin_uploads(&serve), 0);
    Ok(())
}

#[test]
fn paths_methods_and_content_types_are_checked() -> anyhow::Result<()> {
    let serve = Serve::start()?;

    let page = serve.request("GET", "/", &[], b"")?;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(page.text().contains("type=\"file\""));

    let answer = serve.request("GET", "/nothing-here", &[], b"")?;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()?["error"], "unknown-path");

    let answer = serve.request("GET", "/upload", &[], b"")?;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("POST"));

    let answer = serve.request("POST", "/upload", &[("content-type", "text/plain")], b"hi")?;
    assert_eq!(answer.status, 415, "{}", answer.text());
    assert_eq!(answer.json()?["error"], "unsupported-media-type");

    let (content_type, body) = serve_support::multipart(&[]);
    let answer = serve.request("POST", "/upload", &[("content-type", &content_type)], &body)?;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()?["error"], "no-file");

    // A browser on another site's page may not spend the token.
    let (content_type, body) = serve_support::multipart(&[("a.txt", b"a")]);
    let answer = serve.request(
        "POST",
        "/upload",
        &[
            ("content-type", &content_type),
            ("origin", "http://evil.invalid"),
        ],
        &body,
    )?;
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert_eq!(answer.json()?["error"], "cross-origin");

    assert_eq!(bigin_uploads(&serve), 0);
    Ok(())
}

#[test]
fn a_rejected_token_gives_401_without_the_token() -> anyhow::Result<()> {
    let token = "not-the-right-token-5f1d8c";
    let serve = Serve::start_with(token, &[])?;
    let answer = serve.post_files(&[("a.txt", b"a")])?;
    assert_eq!(answer.status, 401, "{}", answer.text());
    let body = answer.json()?;
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(body["code"], "INVALID_TOKEN");
    assert_eq!(body["uploaded"], json!([]));
    let text = answer.text();
    assert!(!text.contains(token), "{text}");
    assert!(!serve.log().contains(token), "{}", serve.log());
    Ok(())
}

#[test]
fn bigin_failures_keep_their_case_code_and_earlier_refs() -> anyhow::Result<()> {
    // No retries: each queued fault is the answer the front maps.
    let serve = Serve::start_with(serve_support::TOKEN, &[("BIGIN_MAX_RETRIES", "0")])?;

    serve.local.push_faults(vec![Fault::Status {
        status: 429,
        code: "TOO_MANY_REQUESTS".into(),
        message: None,
        retry_after: Some("7".into()),
    }]);
    let answer = serve.post_files(&[("a.txt", b"a")])?;
    assert_eq!(answer.status, 429, "{}", answer.text());
    assert_eq!(answer.header("retry-after"), Some("7"));
    let body = answer.json()?;
    assert_eq!(body["error"], "rate-limited");
    assert_eq!(body["code"], "TOO_MANY_REQUESTS");
    assert_eq!(body["retry_after"], 7);

    serve
        .local
        .push_faults(vec![Fault::status(500, "INTERNAL_ERROR")]);
    let answer = serve.post_files(&[("a.txt", b"a")])?;
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert_eq!(answer.json()?["error"], "server-error");

    // Ten files fill a batch and go up; the eleventh has a name Bigin
    // cannot take (a line break), so the answer is 400 with the ten refs.
    let names: Vec<String> = (0..11)
        .map(|i| match i {
            10 => "bad\nname.txt".to_owned(),
            _ => format!("ok-{i}.txt"),
        })
        .collect();
    let sent: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let answer = serve.post_files(&sent)?;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let body = answer.json()?;
    assert_eq!(body["error"], "invalid-file");
    let refs = body["uploaded"].as_array().context("uploaded")?;
    assert_eq!(refs.len(), 10, "{body}");
    for r in refs {
        let id = r["id"].as_str().context("id")?;
        assert!(serve.local.file(id).is_some(), "{id} was not stored");
    }
    Ok(())
}

#[test]
fn a_browser_uploads_through_the_page() -> anyhow::Result<()> {
    let serve = Serve::start()?;
    let dir = TempDir::new("bigin-serve-pick")?;
    let picked = [
        ("browser note ✓.txt", b"picked in a browser\n".to_vec()),
        (
            "pixels.bin",
            (0..50_000u32).map(|i| (i % 253) as u8).collect(),
        ),
    ];
    let mut paths = Vec::new();
    for (name, data) in &picked {
        let path = dir.0.join(name);
        std::fs::write(&path, data)?;
        paths.push(path.display().to_string());
    }

    let mut browser = Browser::launch(&cdp::chromium())?;
    let shot = {
        let mut page = browser.new_page()?;
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1000, "height": 760, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        page.call("Page.navigate", json!({"url": serve.url("/")}))?;
        page.wait_for(
            "document.readyState === 'complete' && !!document.getElementById('files')",
            Duration::from_secs(30),
        )?;
        let input = page.query("#files")?;
        page.call(
            "DOM.setFileInputFiles",
            json!({"nodeId": input, "files": paths}),
        )?;
        page.click("#send")?;
        let status = page.wait_for(
            "(t => /^(Uploaded|Failed)/.test(t) && t)(
                document.getElementById('status').textContent)",
            Duration::from_secs(60),
        )?;
        assert_eq!(status, "Uploaded 2 file(s).", "{}", serve.log());
        let rows = page.eval(
            "[...document.querySelectorAll('#results tbody tr')]
                .map(r => [...r.cells].map(c => c.textContent))",
        )?;
        let rows = rows.as_array().context("rows")?;
        assert_eq!(rows.len(), 2, "{rows:?}");
        for (row, (name, data)) in rows.iter().zip(&picked) {
            assert_eq!(row[0], *name);
            let id = row[2].as_str().context("id cell")?;
            let stored = serve
                .local
                .file(id)
                .with_context(|| format!("bigin-local has no file {id}"))?;
            assert_eq!(&stored.name, name);
            assert_eq!(sha256_hex(&stored.bytes), sha256_hex(data));
        }
        page.screenshot()?
    };
    browser.close()?;

    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-browser-upload.png");
    std::fs::write(&path, &shot)?;
    let colours = cdp::distinct_colours(&shot)?;
    assert!(
        colours > 1,
        "the screenshot {} is blank ({colours} colour)",
        path.display()
    );
    eprintln!("screenshot: {} ({colours} colours)", path.display());
    Ok(())
}

//! Queued faults, the control endpoints, and token revocation after N
//! uploads.

mod common;

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use bigin_local::{Config, Fault, LocalServer};
use common::{
    GOOD_REFRESH, Part, TOKEN, multipart, multipart_type, request, token_request, upload,
    uploaded_ids,
};

fn server() -> anyhow::Result<LocalServer> {
    LocalServer::start(Config::default())
}

fn upload_head(body_len: usize) -> String {
    format!(
        "POST /bigin/v2/files HTTP/1.1\r\nHost: x\r\nAuthorization: Zoho-oauthtoken {TOKEN}\r\n\
         Content-Type: {}\r\nContent-Length: {body_len}\r\n\r\n",
        multipart_type()
    )
}

#[test]
fn status_fault_answers_once_and_stores_nothing() -> anyhow::Result<()> {
    let server = server()?;
    server.push_faults(vec![Fault::Status {
        status: 429,
        code: "TOO_MANY_REQUESTS".into(),
        message: None,
        retry_after: Some("2".into()),
    }]);
    let parts = [Part::file("a.txt", b"a"), Part::file("b.txt", b"bb")];
    let reply = upload(server.addr(), TOKEN, &parts)?;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (429, "TOO_MANY_REQUESTS")
    );
    assert_eq!(reply.header("retry-after"), Some("2"));
    assert_eq!(reply.json()?["status"], "error");

    let stats = server.stats();
    assert_eq!(stats.stored_files, 0);
    let record = &stats.uploads[0];
    assert_eq!(record.fault.as_deref(), Some("status"));
    assert_eq!(record.status, Some(429));
    assert_eq!(record.code.as_deref(), Some("TOO_MANY_REQUESTS"));
    assert_eq!(record.file_count, 2);

    // Consumed: the next upload goes through.
    assert_eq!(
        uploaded_ids(&upload(server.addr(), TOKEN, &parts)?)?.len(),
        2
    );
    Ok(())
}

#[test]
fn status_faults_cover_the_documented_errors_in_order() -> anyhow::Result<()> {
    let server = server()?;
    let expected = [
        (401, "INVALID_TOKEN"),
        (401, "OAUTH_SCOPE_MISMATCH"),
        (500, "INTERNAL_ERROR"),
        (404, "INVALID_URL_PATTERN"),
        (400, "VIRUS_DETECTED"),
    ];
    server.push_faults(
        expected
            .iter()
            .map(|(s, c)| Fault::status(*s, *c))
            .collect(),
    );
    for (status, code) in expected {
        let reply = upload(server.addr(), TOKEN, &[Part::file("a.txt", b"a")])?;
        assert_eq!((reply.status, reply.code().as_str()), (status, code));
        assert_eq!(reply.header("retry-after"), None);
    }
    assert_eq!(server.stats().stored_files, 0);
    Ok(())
}

#[test]
fn reset_mid_body_closes_without_an_answer() -> anyhow::Result<()> {
    let server = server()?;
    server.push_faults(vec![Fault::ResetMidBody]);
    let body = vec![b'z'; 200_000];
    let mut stream = common::connect(server.addr())?;
    stream.write_all(upload_head(body.len()).as_bytes())?;
    // The server may close while we write; only what it answers matters.
    let _ = stream.write_all(&body[..100_000]);
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => assert!(
            received.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&received)
        ),
        Err(error) => assert!(!common::is_timeout(&error), "no close: {error}"),
    }

    let record = &server.stats().uploads[0];
    assert_eq!(record.fault.as_deref(), Some("reset_mid_body"));
    assert_eq!(record.status, None);
    assert_eq!(server.stats().stored_files, 0);
    // The server itself is fine.
    assert_eq!(
        uploaded_ids(&upload(server.addr(), TOKEN, &[Part::file("a.txt", b"a")])?)?.len(),
        1
    );
    Ok(())
}

#[test]
fn stall_holds_the_connection_until_shutdown() -> anyhow::Result<()> {
    let server = server()?;
    server.push_faults(vec![Fault::Stall]);
    let body = multipart(&[Part::file("a.txt", b"a")]);
    let mut stream = common::connect(server.addr())?;
    stream.write_all(upload_head(body.len()).as_bytes())?;
    stream.write_all(&body)?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => panic!("stalled request answered {n} bytes"),
        Err(error) => assert!(common::is_timeout(&error), "{error}"),
    }
    assert!(common::wait_until(Duration::from_secs(5), || {
        server
            .stats()
            .uploads
            .first()
            .is_some_and(|r| r.fault.as_deref() == Some("stall"))
    }));
    assert_eq!(server.stats().stored_files, 0);

    // Other connections are still served meanwhile.
    let stats = request(server.addr(), "GET", "/_local/stats", &[], b"")?;
    assert_eq!(stats.status, 200);

    let started = Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    match stream.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "answered after shutdown"),
        Err(error) => assert!(!common::is_timeout(&error), "still open: {error}"),
    }
    Ok(())
}

#[test]
fn early_answers_before_the_body() -> anyhow::Result<()> {
    let server = server()?;
    server.push_faults(vec![Fault::early(413, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE")]);
    let mut stream = common::connect(server.addr())?;
    // Announce a body and hold it back: the answer must not wait for it.
    stream.write_all(upload_head(5_000_000).as_bytes())?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let reply = read_one_reply(&mut stream)?;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (413, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE")
    );
    assert_eq!(reply.header("connection"), Some("close"));
    let record = &server.stats().uploads[0];
    assert_eq!(
        (record.fault.as_deref(), record.status),
        (Some("early"), Some(413))
    );
    // Then the body is read and thrown away, and the connection closes, so
    // a client still sending never meets a reset that eats the answer.
    stream.write_all(&vec![b'x'; 5_000_000])?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    assert!(rest.is_empty(), "nothing follows the answer");
    Ok(())
}

/// Reads one answer whose length its `Content-Length` gives, without
/// waiting for the connection to close.
fn read_one_reply(stream: &mut std::net::TcpStream) -> anyhow::Result<common::Reply> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Ok(reply) = common::parse_reply(&raw) {
            let length: usize = reply
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if reply.body.len() >= length {
                return Ok(reply);
            }
        }
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "the connection closed before a whole answer");
        raw.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn faults_and_config_over_the_control_endpoints() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let json = [("Content-Type", "application/json")];

    let queued = request(
        addr,
        "POST",
        "/_local/faults",
        &json,
        br#"[{"kind":"status","status":503,"code":"INTERNAL_ERROR"},{"kind":"stall"}]"#,
    )?;
    assert_eq!(queued.status, 200);
    assert_eq!(queued.json()?["queued"], 2);
    let cleared = request(addr, "DELETE", "/_local/faults", &[], b"")?;
    assert_eq!(cleared.json()?["queued"], 0);
    assert_eq!(
        uploaded_ids(&upload(addr, TOKEN, &[Part::file("a.txt", b"a")])?)?.len(),
        1
    );

    let bad = request(
        addr,
        "POST",
        "/_local/faults",
        &json,
        br#"[{"kind":"status","status":99,"code":"X"}]"#,
    )?;
    assert_eq!(bad.status, 400);
    let bad = request(
        addr,
        "POST",
        "/_local/faults",
        &json,
        br#"{"kind":"stall"}"#,
    )?;
    assert_eq!(bad.status, 400);

    request(
        addr,
        "POST",
        "/_local/faults",
        &json,
        br#"[{"kind":"status","status":429,"code":"RATE_LIMIT_EXCEEDED","retry_after":"7"}]"#,
    )?;
    let limited = upload(addr, TOKEN, &[Part::file("a.txt", b"a")])?;
    assert_eq!(
        (limited.status, limited.header("retry-after")),
        (429, Some("7"))
    );

    let config = request(
        addr,
        "POST",
        "/_local/config",
        &json,
        br#"{"expire_after_uploads":1}"#,
    )?;
    assert_eq!(
        config.json()?,
        serde_json::json!({"expire_after_uploads": 1})
    );
    assert_eq!(
        uploaded_ids(&upload(addr, TOKEN, &[Part::file("a.txt", b"a")])?)?.len(),
        1
    );
    assert_eq!(
        upload(addr, TOKEN, &[Part::file("a.txt", b"a")])?.status,
        401
    );
    let config = request(
        addr,
        "POST",
        "/_local/config",
        &json,
        br#"{"expire_after_uploads":null}"#,
    )?;
    assert_eq!(
        config.json()?["expire_after_uploads"],
        serde_json::Value::Null
    );
    let unknown = request(addr, "POST", "/_local/config", &json, br#"{"nope":1}"#)?;
    assert_eq!(unknown.status, 400);

    let stats = request(addr, "GET", "/_local/stats", &[], b"")?.json()?;
    assert_eq!(stats["stored_files"], 2);
    assert_eq!(stats["requests"]["POST /bigin/v2/files"], 4);
    assert_eq!(stats["uploads"][1]["status"], 429);
    assert_eq!(stats["uploads"][1]["files"][0]["filename"], "a.txt");
    assert_eq!(
        stats["uploads"][1]["content_length"]
            .as_u64()
            .map(|n| n > 0),
        Some(true)
    );
    assert_eq!(stats["token_mints"], 0);
    let typed: bigin_local::Stats = serde_json::from_value(stats)?;
    assert_eq!(typed, server.stats());
    Ok(())
}

#[test]
fn tokens_expire_after_n_uploads_until_a_mint() -> anyhow::Result<()> {
    let server = LocalServer::start(Config {
        expire_after_uploads: Some(2),
        ..Config::default()
    })?;
    let addr = server.addr();
    let file = [Part::file("a.txt", b"a")];
    for _ in 0..2 {
        assert_eq!(upload(addr, TOKEN, &file)?.status, 200);
    }
    let expired = upload(addr, TOKEN, &file)?;
    assert_eq!(
        (expired.status, expired.code().as_str()),
        (401, "INVALID_TOKEN")
    );

    let minted = token_request(addr, GOOD_REFRESH)?.json()?;
    let token = minted["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(upload(addr, &token, &file)?.status, 200);
    // The static token stays revoked; the minted one lasts two uploads.
    assert_eq!(upload(addr, TOKEN, &file)?.status, 401);
    assert_eq!(upload(addr, &token, &file)?.status, 200);
    assert_eq!(upload(addr, &token, &file)?.status, 401);

    server.set_expire_after_uploads(None);
    let minted = token_request(addr, GOOD_REFRESH)?.json()?;
    let token = minted["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for _ in 0..3 {
        assert_eq!(upload(addr, &token, &file)?.status, 200);
    }
    Ok(())
}

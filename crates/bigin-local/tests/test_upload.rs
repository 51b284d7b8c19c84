//! Uploads and downloads over real loopback HTTP.

mod common;

use anyhow::Context as _;
use bigin_local::{Config, LocalServer, MAX_FILE_BYTES, MAX_FILES_PER_REQUEST, MAX_REQUEST_BYTES};
use common::{Part, TOKEN, download, multipart, multipart_type, request, upload, uploaded_ids};

fn server() -> anyhow::Result<LocalServer> {
    LocalServer::start(Config::default())
}

#[test]
fn uploads_two_files_and_downloads_them() -> anyhow::Result<()> {
    let server = server()?;
    let parts = [
        Part::file("notes.txt", b"first file"),
        Part {
            disposition: "name=\"file\"; filename=\"pic.png\"".into(),
            content_type: Some("image/png"),
            data: b"\x89PNG\r\n--not-a-boundary",
        },
    ];
    let reply = upload(server.addr(), TOKEN, &parts)?;
    let ids = uploaded_ids(&reply)?;
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        assert!(
            id.len() >= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }

    let json = reply.json()?;
    let first = &json["data"][0];
    assert_eq!(first["code"], "SUCCESS");
    assert_eq!(first["status"], "success");
    assert_eq!(first["details"]["name"], "notes.txt");
    assert_eq!(first["message"], "notes.txt uploaded Successfully");
    assert_eq!(json["data"][1]["details"]["name"], "pic.png");

    let stored = server.file(&ids[1]).context("second file stored")?;
    assert_eq!(stored.name, "pic.png");
    assert_eq!(stored.content_type.as_deref(), Some("image/png"));
    assert_eq!(stored.bytes, b"\x89PNG\r\n--not-a-boundary");
    assert!(!stored.used);

    let got = download(server.addr(), TOKEN, &ids[1])?;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"\x89PNG\r\n--not-a-boundary");
    assert_eq!(got.header("content-type"), Some("image/png;charset=UTF-8"));
    assert_eq!(
        got.header("content-disposition"),
        Some("attachment; filename=\"pic.png\"; filename*=UTF-8''pic.png")
    );

    let stats = server.stats();
    assert_eq!(stats.stored_files, 2);
    assert_eq!(stats.requests.get("POST /bigin/v2/files"), Some(&1));
    assert_eq!(stats.requests.get("GET /bigin/v2/files"), Some(&1));
    let record = &stats.uploads[0];
    assert_eq!(record.status, Some(200));
    assert_eq!(record.file_count, 2);
    assert_eq!(record.files[0].filename, "notes.txt");
    assert_eq!(record.files[0].size, 10);
    assert_eq!(record.files[1].content_type.as_deref(), Some("image/png"));
    assert!(!record.chunked);
    assert!(record.content_length.is_some());
    Ok(())
}

#[test]
fn accepts_an_empty_file() -> anyhow::Result<()> {
    let server = server()?;
    let ids = uploaded_ids(&upload(
        server.addr(),
        TOKEN,
        &[Part::file("empty.txt", b"")],
    )?)?;
    let stored = server.file(&ids[0]).context("stored")?;
    assert!(stored.bytes.is_empty());
    Ok(())
}

#[test]
fn refuses_more_than_ten_files() -> anyhow::Result<()> {
    let server = server()?;
    let names: Vec<String> = (0..=MAX_FILES_PER_REQUEST)
        .map(|i| format!("f{i}.txt"))
        .collect();
    let parts: Vec<Part<'_>> = names.iter().map(|n| Part::file(n, b"x")).collect();
    let reply = upload(server.addr(), TOKEN, &parts)?;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "INVALID_REQUEST")
    );
    assert_eq!(server.stats().stored_files, 0);

    let ten = upload(server.addr(), TOKEN, &parts[..MAX_FILES_PER_REQUEST])?;
    assert_eq!(uploaded_ids(&ten)?.len(), MAX_FILES_PER_REQUEST);
    Ok(())
}

#[test]
fn refuses_the_whole_request_when_one_file_is_too_large() -> anyhow::Result<()> {
    let server = server()?;
    let limit = usize::try_from(MAX_FILE_BYTES)?;
    let at_limit = vec![b'a'; limit];
    let over_limit = vec![b'b'; limit + 1];
    let reply = upload(
        server.addr(),
        TOKEN,
        &[
            Part::file("ok.bin", &at_limit),
            Part::file("big.bin", &over_limit),
        ],
    )?;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (415, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE")
    );
    let stats = server.stats();
    assert_eq!(stats.stored_files, 0);
    assert_eq!(stats.uploads[0].file_count, 2);
    assert!(stats.uploads[0].files[1].size > MAX_FILE_BYTES);

    // A file of exactly the limit is fine on its own.
    let ids = uploaded_ids(&upload(
        server.addr(),
        TOKEN,
        &[Part::file("ok.bin", &at_limit)],
    )?)?;
    assert_eq!(server.file(&ids[0]).map(|f| f.bytes.len()), Some(limit));
    Ok(())
}

#[test]
fn refuses_an_oversized_content_length_before_reading() -> anyhow::Result<()> {
    let server = server()?;
    let head = format!(
        "POST /bigin/v2/files HTTP/1.1\r\nHost: x\r\nAuthorization: Zoho-oauthtoken {TOKEN}\r\n\
         Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
        multipart_type(),
        MAX_REQUEST_BYTES + 1
    );
    // No body is sent: the answer must come without it.
    let reply = common::send_raw(server.addr(), head.as_bytes(), b"")?;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.code(), "REQUEST_ENTITY_TOO_LARGE");
    Ok(())
}

#[test]
fn refuses_missing_and_wrong_tokens() -> anyhow::Result<()> {
    let server = server()?;
    let wrong = upload(server.addr(), "not-a-token", &[Part::file("a.txt", b"a")])?;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.json()?,
        serde_json::json!({"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"})
    );
    let content_type = multipart_type();
    let body = multipart(&[Part::file("a.txt", b"a")]);
    let missing = request(
        server.addr(),
        "POST",
        "/bigin/v2/files",
        &[("Content-Type", &content_type)],
        &body,
    )?;
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (401, "INVALID_TOKEN")
    );
    let bearer = request(
        server.addr(),
        "POST",
        "/bigin/v2/files",
        &[
            ("Content-Type", &content_type),
            ("Authorization", &format!("Bearer {TOKEN}")),
        ],
        &body,
    )?;
    assert_eq!(bearer.status, 401);
    assert_eq!(server.stats().stored_files, 0);
    Ok(())
}

#[test]
fn refuses_bad_parts() -> anyhow::Result<()> {
    let server = server()?;
    let cases: [(Vec<Part<'_>>, u16, &str); 5] = [
        (vec![], 400, "failure_in_attachment_handling"),
        (
            vec![Part::raw("name=\"file\"", b"x")],
            400,
            "failure_in_attachment_handling",
        ),
        (
            vec![Part::raw("name=\"file\"; filename=\"\"", b"x")],
            400,
            "failure_in_attachment_handling",
        ),
        (
            vec![Part::file("a.txt", b"a"), Part::raw("name=\"note\"", b"hi")],
            400,
            "INVALID_REQUEST",
        ),
        (
            vec![Part::raw("name=\"file\"; filename=\"a.txt", b"x")],
            400,
            "INVALID_REQUEST",
        ),
    ];
    for (parts, status, code) in cases {
        let reply = upload(server.addr(), TOKEN, &parts)?;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (status, code),
            "{parts_len} parts",
            parts_len = parts.len()
        );
    }
    assert_eq!(server.stats().stored_files, 0);
    Ok(())
}

#[test]
fn refuses_malformed_bodies() -> anyhow::Result<()> {
    let server = server()?;
    let auth = format!("Zoho-oauthtoken {TOKEN}");
    let send = |content_type: &str, body: &[u8]| {
        request(
            server.addr(),
            "POST",
            "/bigin/v2/files",
            &[("Authorization", &auth), ("Content-Type", content_type)],
            body,
        )
    };
    let truncated = multipart(&[Part::file("a.txt", b"abc")]);
    let truncated = &truncated[..truncated.len() - 10];
    for (content_type, body) in [
        ("application/json", &b"{}"[..]),
        ("multipart/form-data", &b"--x\r\n"[..]),
        (&multipart_type()[..], b"no boundary here at all"),
        (&multipart_type()[..], truncated),
    ] {
        let reply = send(content_type, body)?;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, "INVALID_REQUEST"),
            "{content_type}"
        );
    }
    assert_eq!(server.stats().stored_files, 0);
    Ok(())
}

#[test]
fn reads_escaped_and_extended_filenames() -> anyhow::Result<()> {
    let server = server()?;
    let parts = [
        Part::raw(r#"name="file"; filename="say \"hi\" \\ now.txt""#, b"1"),
        Part::raw(
            "name=\"file\"; filename=\"fallback.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
            b"2",
        ),
        Part::raw("name=\"file\"; filename=\"日本.txt\"", b"3"),
    ];
    let reply = upload(server.addr(), TOKEN, &parts)?;
    let ids = uploaded_ids(&reply)?;
    let names: Vec<String> = ids
        .iter()
        .filter_map(|id| server.file(id).map(|f| f.name))
        .collect();
    assert_eq!(names, [r#"say "hi" \ now.txt"#, "résumé.txt", "日本.txt"]);

    let got = download(server.addr(), TOKEN, &ids[0])?;
    assert_eq!(
        got.header("content-disposition"),
        Some(
            r#"attachment; filename="say \"hi\" \\ now.txt"; filename*=UTF-8''say%20%22hi%22%20%5C%20now.txt"#
        )
    );
    let got = download(server.addr(), TOKEN, &ids[2])?;
    assert_eq!(
        got.header("content-disposition"),
        Some("attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt")
    );
    // No part sent a Content-Type.
    assert_eq!(
        got.header("content-type"),
        Some("application/octet-stream;charset=UTF-8")
    );
    Ok(())
}

#[test]
fn refuses_line_breaks_in_filenames() -> anyhow::Result<()> {
    let server = server()?;
    let reply = upload(
        server.addr(),
        TOKEN,
        &[Part::raw(
            "name=\"file\"; filename*=UTF-8''evil%0D%0AX-Injected: 1",
            b"x",
        )],
    )?;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (400, "INVALID_REQUEST")
    );
    let reply = upload(
        server.addr(),
        TOKEN,
        &[Part::raw("name=\"file\"; filename=\"bad\u{7f}\"", b"x")],
    )?;
    assert_eq!(reply.status, 400);
    Ok(())
}

#[test]
fn records_chunked_uploads() -> anyhow::Result<()> {
    let server = server()?;
    let body = multipart(&[Part::file("c.txt", b"chunky")]);
    let mut raw = format!(
        "POST /bigin/v2/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: Zoho-oauthtoken {TOKEN}\r\nContent-Type: {}\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        multipart_type()
    )
    .into_bytes();
    for chunk in body.chunks(7) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = common::send_raw(server.addr(), &raw, b"")?;
    assert_eq!(uploaded_ids(&reply)?.len(), 1);
    let record = &server.stats().uploads[0];
    assert!(record.chunked);
    assert_eq!(record.content_length, None);
    Ok(())
}

#[test]
fn answers_download_errors() -> anyhow::Result<()> {
    let server = server()?;
    let unknown = download(server.addr(), TOKEN, "0123abcd")?;
    assert_eq!(unknown.status, 204);
    assert!(unknown.body.is_empty());

    let auth = format!("Zoho-oauthtoken {TOKEN}");
    for target in [
        "/bigin/v2/files",
        "/bigin/v2/files?id=",
        "/bigin/v2/files?other=1",
    ] {
        let missing = request(
            server.addr(),
            "GET",
            target,
            &[("Authorization", &auth)],
            b"",
        )?;
        assert_eq!(
            (missing.status, missing.code().as_str()),
            (400, "REQUIRED_PARAM_MISSING"),
            "{target}"
        );
    }
    let unauthorized = download(server.addr(), "nope", "0123abcd")?;
    assert_eq!(unauthorized.status, 401);
    Ok(())
}

#[test]
fn answers_wrong_methods_and_paths() -> anyhow::Result<()> {
    let server = server()?;
    let auth = format!("Zoho-oauthtoken {TOKEN}");
    for method in ["PUT", "DELETE", "PATCH"] {
        let reply = request(
            server.addr(),
            method,
            "/bigin/v2/files",
            &[("Authorization", &auth)],
            b"",
        )?;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, "INVALID_REQUEST_METHOD"),
            "{method}"
        );
    }
    // `/bigin/v2/{anything}` is a module path (an unknown module is
    // `INVALID_MODULE`, see test_records.rs), so the near miss here is a
    // path too deep for any route.
    for path in [
        "/bigin/v2/files/x/y/z",
        "/bigin/v1/files",
        "/crm/v8/files",
        "/",
    ] {
        let reply = request(server.addr(), "GET", path, &[("Authorization", &auth)], b"")?;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (404, "INVALID_URL_PATTERN"),
            "{path}"
        );
    }
    assert_eq!(server.stats().requests.get("other"), Some(&4));
    Ok(())
}

#[test]
fn serves_keep_alive_requests_on_one_connection() -> anyhow::Result<()> {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};

    let server = server()?;
    let mut stream = common::connect(server.addr())?;
    let body = multipart(&[Part::file("k.txt", b"keep")]);
    let head = format!(
        "POST /bigin/v2/files HTTP/1.1\r\nHost: x\r\nAuthorization: Zoho-oauthtoken {TOKEN}\r\n\
         Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
        multipart_type(),
        body.len()
    );
    let mut reader = BufReader::new(stream.try_clone()?);
    for _ in 0..2 {
        stream.write_all(head.as_bytes())?;
        stream.write_all(&body)?;
        let mut length = None;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
        let mut answer = vec![0; length.context("no Content-Length")?];
        reader.read_exact(&mut answer)?;
    }
    assert_eq!(server.stats().stored_files, 2);
    Ok(())
}

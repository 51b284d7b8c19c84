//! The upload component in wasmtime against the local server: the cases of
//! `make run`, plus splitting, refusals and answers mapped to error cases.

mod common;

use bigin_files::upload::MAX_FILE_BYTES;
use bigin_host::{File, UploadError};
use bigin_local::Fault;
use common::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82";

#[test]
fn the_main_job_uploads_every_kind_of_file() {
    let server = server();
    let readme =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("the README");
    let mut files = vec![
        file("README.md", readme),
        file("pixel.png", PNG),
        file("Résumé \"final\" ünïcödé.txt", "Für Zoë"),
        file("empty.txt", ""),
        file("NOTES", "no extension"),
    ];
    for i in 1..=12 {
        files.push(file(&format!("batch-{i:02}.txt"), format!("small {i}")));
    }
    files.push(file(
        "exactly-20MiB.bin",
        pattern(MAX_FILE_BYTES as usize, 7),
    ));

    let refs = runner()
        .upload(&settings(&server), &files)
        .expect("the host runs the component")
        .expect("the upload succeeds");

    assert_eq!(refs.len(), files.len());
    for (sent, got) in files.iter().zip(&refs) {
        assert_eq!(got.name, sent.name, "refs come back in input order");
        assert_eq!(got.size, bytes_of(sent).len() as u64);
        assert_eq!(got.sha256, sha256_hex(bytes_of(sent)));
        let stored = server.file(&got.id).expect("the server stored the file");
        assert_eq!(stored.name, sent.name, "the name survives a strict parser");
        assert!(
            stored.bytes == bytes_of(sent),
            "bytes of {} differ",
            sent.name
        );
    }
    let content_type = |name: &str| {
        let i = files.iter().position(|f| f.name == name).unwrap();
        server
            .file(&refs[i].id)
            .unwrap()
            .content_type
            .unwrap_or_default()
    };
    assert_eq!(content_type("pixel.png"), "image/png");
    assert_eq!(content_type("NOTES"), "application/octet-stream");
    assert_eq!(content_type("README.md"), "text/markdown");
    assert_eq!(content_type("empty.txt"), "text/plain");

    let stats = server.stats();
    let counts: Vec<_> = stats.uploads.iter().map(|u| u.file_count).collect();
    assert_eq!(counts, vec![10, 8], "18 files go as two requests");
    for upload in &stats.uploads {
        assert!(!upload.chunked, "uploads are never chunked");
        assert!(upload.content_length.is_some(), "an exact Content-Length");
        assert_eq!(upload.status, Some(200));
    }
}

#[test]
fn one_byte_over_the_limit_is_refused_before_anything_is_sent() {
    let server = server();
    let files = vec![
        file("fine.txt", "ok"),
        file("too-big.bin", vec![0u8; MAX_FILE_BYTES as usize + 1]),
    ];
    let error = runner()
        .upload(&settings(&server), &files)
        .expect("the host runs the component")
        .expect_err("the upload is refused");
    match error {
        UploadError::TooLarge(t) => {
            assert_eq!((t.index, t.name.as_str()), (1, "too-big.bin"));
            assert_eq!((t.size, t.limit), (MAX_FILE_BYTES + 1, MAX_FILE_BYTES));
        }
        other => panic!("expected too-large, got {other:?}"),
    }
    assert!(server.stats().uploads.is_empty(), "the server saw nothing");
    assert_eq!(server.stats().requests.values().sum::<u64>(), 0);
}

#[test]
fn a_name_with_a_line_break_is_refused_and_never_sent() {
    let server = server();
    for name in ["evil\r\nContent-Type: text/html", "two\nlines.txt"] {
        let error = runner()
            .upload(&settings(&server), &[file("ok.txt", "x"), file(name, "y")])
            .expect("the host runs the component")
            .expect_err("the name is refused");
        match error {
            UploadError::InvalidFile(f) => {
                assert_eq!(f.index, 1);
                assert!(f.reason.contains("line break"), "{}", f.reason);
                assert!(!f.name.contains('\n'), "the name is shown escaped");
            }
            other => panic!("expected invalid-file, got {other:?}"),
        }
    }
    assert!(server.stats().uploads.is_empty());
}

#[test]
fn eleven_files_go_as_two_requests_in_order() {
    let server = server();
    let files: Vec<File> = (0..11)
        .map(|i| file(&format!("{:02}-{}.txt", 10 - i, "x"), format!("file {i}")))
        .collect();
    let refs = runner()
        .upload(&settings(&server), &files)
        .unwrap()
        .expect("the upload succeeds");
    let names: Vec<_> = refs.iter().map(|r| r.name.as_str()).collect();
    let sent: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, sent);
    let stats = server.stats();
    let split: Vec<_> = stats.uploads.iter().map(|u| u.file_count).collect();
    assert_eq!(split, vec![10, 1]);
    let second: Vec<_> = stats.uploads[1].files.iter().map(|p| &p.filename).collect();
    assert_eq!(second, vec![&files[10].name]);
}

#[test]
fn an_invalid_token_is_unauthorized_and_never_shown() {
    let server = server();
    let token = "secret-token-that-must-not-leak-7f3a";
    let error = runner()
        .upload(&settings_with_token(&server, token), &[file("a.txt", "a")])
        .unwrap()
        .expect_err("the token is refused");
    let shown = format!("{error:?} {}", bigin_host::json::upload_error(&error));
    assert!(!shown.contains(token), "the token leaked: {shown}");
    match error {
        UploadError::Unauthorized(f) => {
            assert_eq!(f.http_status, Some(401));
            assert_eq!(f.code.as_deref(), Some("INVALID_TOKEN"));
            assert_eq!(f.files, vec!["a.txt".to_owned()]);
            assert!(f.uploaded.is_empty());
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
}

#[test]
fn an_unknown_code_is_kept_verbatim() {
    let server = server();
    server.push_faults(vec![Fault::status(400, "BRAND_NEW_CODE_42")]);
    let error = runner()
        .upload(&settings(&server), &[file("a.txt", "a")])
        .unwrap()
        .expect_err("the fault answers 400");
    match error {
        UploadError::Api(f) => {
            assert_eq!(f.http_status, Some(400));
            assert_eq!(f.code.as_deref(), Some("BRAND_NEW_CODE_42"));
            assert_eq!(f.files, vec!["a.txt".to_owned()]);
        }
        other => panic!("expected api, got {other:?}"),
    }
}

#[test]
fn a_failed_second_request_keeps_the_first_requests_refs() {
    let server = server();
    // The token stops working after one successful upload request, so the
    // first request of ten lands and the second is refused.
    server.set_expire_after_uploads(Some(1));
    let files: Vec<File> = (0..12)
        .map(|i| file(&format!("f{i:02}.txt"), format!("{i}")))
        .collect();
    let error = runner()
        .upload(&settings(&server), &files)
        .unwrap()
        .expect_err("the second request is refused");
    match error {
        UploadError::Unauthorized(f) => {
            assert_eq!(f.http_status, Some(401));
            assert_eq!(f.files, vec!["f10.txt".to_owned(), "f11.txt".to_owned()]);
            let won: Vec<_> = f.uploaded.iter().map(|r| r.name.as_str()).collect();
            let first: Vec<_> = files[..10].iter().map(|f| f.name.as_str()).collect();
            assert_eq!(won, first);
            for r in &f.uploaded {
                assert!(server.file(&r.id).is_some(), "{} landed", r.name);
            }
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert_eq!(server.stats().uploads.len(), 2);
}

#[test]
fn settings_that_cannot_work_are_refused_before_any_request() {
    let server = server();
    let mut no_token = settings(&server);
    no_token.access_token = None;
    let mut plain_http = settings(&server);
    plain_http.api_domain = Some("http://bigin.example".into());
    let mut unknown_dc = settings(&server);
    unknown_dc.api_domain = None;
    unknown_dc.data_centre = Some("mars".into());
    for (settings, expect) in [
        (no_token, "no access token"),
        (plain_http, "plain http"),
        (unknown_dc, "unknown data centre"),
    ] {
        match runner().upload(&settings, &[file("a.txt", "a")]).unwrap() {
            Err(UploadError::InvalidSettings(message)) => {
                assert!(message.contains(expect), "{message}")
            }
            other => panic!("expected invalid-settings, got {other:?}"),
        }
    }
    assert_eq!(server.stats().requests.values().sum::<u64>(), 0);
}

#[test]
fn no_files_is_an_empty_answer_and_no_request() {
    let server = server();
    let refs = runner().upload(&settings(&server), &[]).unwrap().unwrap();
    assert!(refs.is_empty());
    assert!(server.stats().uploads.is_empty());
}

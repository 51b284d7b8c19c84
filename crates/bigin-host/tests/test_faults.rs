//! Each fault the local server can inject, through the built component in
//! wasmtime: which files got ids, which error case, and how many requests
//! reached the server (nothing that landed sent twice, nothing lost).

mod common;

use std::time::{Duration, Instant};

use bigin_files::settings::{RawSettings, Secret};
use bigin_host::{File, TokenProblem, TransportKind, UploadError};
use bigin_local::{Config, Fault, LocalServer};
use common::*;

fn upload_requests(server: &LocalServer) -> usize {
    server.stats().uploads.len()
}

fn files(n: usize) -> Vec<File> {
    (0..n)
        .map(|i| file(&format!("f{i:02}.txt"), format!("file {i}")))
        .collect()
}

/// Settings that mint tokens from the local server's refresh token.
fn refresh_settings(server: &LocalServer) -> RawSettings {
    RawSettings {
        api_domain: Some(server.base_url()),
        accounts_url: Some(server.base_url()),
        refresh_token: Some(Secret::new("local-refresh-token")),
        client_id: Some("local-client".into()),
        client_secret: Some(Secret::new("local-secret")),
        ..RawSettings::default()
    }
}

fn fault_429(retry_after: Option<&str>) -> Fault {
    Fault::Status {
        status: 429,
        code: "TOO_MANY_REQUESTS".into(),
        message: None,
        retry_after: retry_after.map(Into::into),
    }
}

#[test]
fn a_429_with_retry_after_is_waited_out_then_lands_once() {
    let server = server();
    server.push_faults(vec![fault_429(Some("1"))]);
    let started = Instant::now();
    let refs = runner()
        .upload(&settings(&server), &files(2))
        .unwrap()
        .expect("the retry lands");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(refs.len(), 2);
    assert_eq!(upload_requests(&server), 2);
    assert_eq!(server.stats().stored_files, 2);
}

#[test]
fn a_429_without_retry_after_backs_off_then_lands_once() {
    let server = server();
    server.push_faults(vec![fault_429(None), fault_429(None)]);
    let refs = runner()
        .upload(&settings(&server), &files(1))
        .unwrap()
        .expect("the third try lands");
    assert_eq!(refs.len(), 1);
    assert_eq!(upload_requests(&server), 3);
    assert_eq!(server.stats().stored_files, 1);
}

#[test]
fn a_retry_after_beyond_the_wait_budget_is_rate_limited_at_once() {
    let server = server();
    server.push_faults(vec![fault_429(Some("120"))]);
    match runner().upload(&settings(&server), &files(1)).unwrap() {
        Err(UploadError::RateLimited(r)) => {
            assert_eq!(r.retry_after, Some(120));
            assert_eq!(r.failure.code.as_deref(), Some("TOO_MANY_REQUESTS"));
            assert_eq!(r.failure.files, vec!["f00.txt".to_owned()]);
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert_eq!(upload_requests(&server), 1);
}

#[test]
fn an_expired_token_is_minted_again_and_the_request_resent_once() {
    let server = server();
    // Every token dies after one successful upload request: the second of
    // two requests meets a 401 INVALID_TOKEN.
    server.set_expire_after_uploads(Some(1));
    let refs = runner()
        .upload(&refresh_settings(&server), &files(12))
        .unwrap()
        .expect("a fresh token carries the second request");
    assert_eq!(refs.len(), 12);
    let stats = server.stats();
    let outcomes: Vec<_> = stats.uploads.iter().map(|u| u.status).collect();
    assert_eq!(outcomes, vec![Some(200), Some(401), Some(200)]);
    assert_eq!(stats.token_mints, 2);
    assert_eq!(stats.stored_files, 12);
}

#[test]
fn a_static_token_that_expired_is_unauthorized_without_a_refresh_token() {
    let server = server();
    server.set_expire_after_uploads(Some(1));
    match runner().upload(&settings(&server), &files(12)).unwrap() {
        Err(UploadError::Unauthorized(f)) => {
            assert_eq!(f.code.as_deref(), Some("INVALID_TOKEN"));
            assert_eq!(f.uploaded.len(), 10, "the first request's refs are kept");
            assert_eq!(f.files, vec!["f10.txt".to_owned(), "f11.txt".to_owned()]);
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert_eq!(upload_requests(&server), 2);
}

#[test]
fn a_scope_mismatch_is_never_retried_and_says_which_scope() {
    let server = server();
    server.push_faults(vec![Fault::status(401, "OAUTH_SCOPE_MISMATCH")]);
    match runner()
        .upload(&refresh_settings(&server), &files(1))
        .unwrap()
    {
        Err(UploadError::Unauthorized(f)) => {
            assert_eq!(f.code.as_deref(), Some("OAUTH_SCOPE_MISMATCH"));
            assert!(
                f.message.contains("ZohoBigin.Files.CREATE"),
                "{}",
                f.message
            );
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert_eq!(upload_requests(&server), 1);
    assert_eq!(server.stats().token_mints, 1, "no second mint");
}

#[test]
fn a_500_is_retried_and_lands_once() {
    let server = server();
    server.push_faults(vec![Fault::status(500, "INTERNAL_ERROR")]);
    let refs = runner()
        .upload(&settings(&server), &files(3))
        .unwrap()
        .expect("the retry lands");
    assert_eq!(refs.len(), 3);
    assert_eq!(upload_requests(&server), 2);
    assert_eq!(server.stats().stored_files, 3);
}

#[test]
fn a_500_that_persists_is_a_server_error_after_the_retries() {
    let server = server();
    server.push_faults(vec![Fault::status(500, "INTERNAL_ERROR"); 2]);
    let mut settings = settings(&server);
    settings.max_retries = Some(1);
    match runner().upload(&settings, &files(1)).unwrap() {
        Err(UploadError::ServerError(f)) => {
            assert_eq!(f.http_status, Some(500));
            assert_eq!(f.code.as_deref(), Some("INTERNAL_ERROR"));
        }
        other => panic!("expected server-error, got {other:?}"),
    }
    assert_eq!(upload_requests(&server), 2, "one try and one retry");
}

#[test]
fn a_reset_in_the_middle_of_the_body_is_resent_and_lands_once() {
    let server = server();
    server.push_faults(vec![Fault::ResetMidBody]);
    // Large enough that the reset comes while the body is still going out.
    let data = pattern(20 << 20, 9);
    let refs = runner()
        .upload(&settings(&server), &[file("big.bin", data.clone())])
        .unwrap()
        .expect("the resend lands");
    assert_eq!(refs[0].sha256, sha256_hex(&data));
    assert_eq!(upload_requests(&server), 2);
    assert_eq!(server.stats().stored_files, 1);
}

#[test]
fn a_stall_after_the_body_is_possibly_uploaded_and_not_resent() {
    let server = server();
    server.push_faults(vec![Fault::Pass, Fault::Stall]);
    let mut settings = settings(&server);
    settings.first_byte_timeout_ms = Some(500);
    let started = Instant::now();
    match runner().upload(&settings, &files(12)).unwrap() {
        Err(UploadError::PossiblyUploaded(p)) => {
            assert_eq!(p.kind, TransportKind::Timeout);
            assert_eq!(p.sent, vec!["f10.txt".to_owned(), "f11.txt".to_owned()]);
            assert_eq!(p.failure.files, p.sent);
            assert_eq!(p.failure.uploaded.len(), 10, "nothing lost");
        }
        other => panic!("expected possibly-uploaded, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout bounds the wait"
    );
    assert_eq!(upload_requests(&server), 2, "not sent twice");
}

#[test]
fn an_early_413_before_the_body_is_read_is_reported() {
    // Small enough to sit in socket buffers, and large enough that most of
    // it is still to be written when the answer comes.
    for size in [16, 20 << 20] {
        let server = server();
        server.push_faults(vec![Fault::early(413, "REQUEST_ENTITY_TOO_LARGE")]);
        let outcome = runner()
            .upload(&settings(&server), &[file("early.bin", pattern(size, 3))])
            .unwrap();
        match outcome {
            Err(UploadError::Api(f)) => {
                assert_eq!(f.http_status, Some(413));
                assert_eq!(f.code.as_deref(), Some("REQUEST_ENTITY_TOO_LARGE"));
            }
            other => panic!("{size} bytes: expected the 413, got {other:?}"),
        }
        assert_eq!(upload_requests(&server), 1, "not resent");
    }
}

#[test]
fn a_wrong_data_centre_is_not_found_with_a_hint() {
    let server = server();
    server.push_faults(vec![Fault::status(404, "INVALID_URL_PATTERN")]);
    match runner().upload(&settings(&server), &files(1)).unwrap() {
        Err(UploadError::NotFound(f)) => {
            assert_eq!(f.code.as_deref(), Some("INVALID_URL_PATTERN"));
            assert!(f.message.contains("data centre"), "{}", f.message);
        }
        other => panic!("expected not-found, got {other:?}"),
    }
    assert_eq!(upload_requests(&server), 1);
}

#[test]
fn token_endpoint_refusals_are_their_own_cases() {
    let server = server();
    let mut bad_client = refresh_settings(&server);
    bad_client.client_secret = Some(Secret::new("wrong-secret"));
    let mut bad_refresh = refresh_settings(&server);
    bad_refresh.refresh_token = Some(Secret::new("revoked-refresh"));
    for (settings, problem) in [
        (bad_client, TokenProblem::InvalidClient),
        (bad_refresh, TokenProblem::InvalidRefreshToken),
    ] {
        match runner().upload(&settings, &files(1)).unwrap() {
            Err(UploadError::Token(t)) => {
                assert_eq!(t.problem, problem);
                assert_eq!(t.files, vec!["f00.txt".to_owned()]);
            }
            other => panic!("expected token {problem:?}, got {other:?}"),
        }
    }
    assert_eq!(upload_requests(&server), 0);
}

#[test]
fn a_sixth_mint_in_a_minute_is_too_many_requests() {
    let server = server();
    // Each call is a new component instance, so each mints its own token.
    for _ in 0..5 {
        runner()
            .upload(&refresh_settings(&server), &files(1))
            .unwrap()
            .expect("five mints a minute are allowed");
    }
    match runner()
        .upload(&refresh_settings(&server), &files(1))
        .unwrap()
    {
        Err(UploadError::Token(t)) => assert_eq!(t.problem, TokenProblem::TooManyRequests),
        other => panic!("expected too-many-requests, got {other:?}"),
    }
    assert_eq!(server.stats().token_mints, 5);
}

#[test]
fn a_token_lifetime_in_expires_in_sec_is_read() {
    let server = LocalServer::start(Config {
        answer_expires_in_sec: true,
        ..Config::default()
    })
    .expect("starting the local server");
    let refs = runner()
        .upload(&refresh_settings(&server), &files(12))
        .unwrap()
        .expect("the minted token is used for both requests");
    assert_eq!(refs.len(), 12);
    assert_eq!(server.stats().token_mints, 1, "reused within the instance");
}

#[test]
fn no_secret_ever_comes_out() {
    let server = server();
    let secrets = [
        "access-7c1e-secret",
        "refresh-93ad-secret",
        "client-5b0f-secret",
    ];
    let mut settings = refresh_settings(&server);
    settings.access_token = Some(Secret::new(secrets[0]));
    settings.refresh_token = Some(Secret::new(secrets[1]));
    settings.client_secret = Some(Secret::new(secrets[2]));
    let mut seen = String::new();
    // A server that echoes what it was sent, in its message and its code.
    let echo = Fault::Status {
        status: 400,
        code: format!("BAD_{}", secrets[0]),
        message: Some(format!("you sent {} and {}", secrets[0], secrets[2])),
        retry_after: None,
    };
    let faults = [
        vec![],
        vec![echo],
        vec![Fault::status(401, "OAUTH_SCOPE_MISMATCH")],
        vec![fault_429(Some("600"))],
        vec![Fault::status(400, "SOMETHING")],
    ];
    for queued in faults {
        server.push_faults(queued);
        let outcome = runner().upload(&settings, &files(1)).unwrap();
        seen.push_str(&format!("{outcome:?}\n{settings:?}\n"));
        if let Err(e) = &outcome {
            seen.push_str(&bigin_host::json::upload_error(e).to_string());
        }
        server.clear_faults();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bigin"))
        .args(["upload", "--api-domain", &server.base_url()])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .env("BIGIN_ACCESS_TOKEN", secrets[0])
        .env("BIGIN_REFRESH_TOKEN", secrets[1])
        .env("BIGIN_CLIENT_ID", "local-client")
        .env("BIGIN_CLIENT_SECRET", secrets[2])
        .env("BIGIN_ACCOUNTS_URL", server.base_url())
        .env("BIGIN_COMPONENT", component_path())
        .output()
        .expect("running bigin");
    seen.push_str(&String::from_utf8_lossy(&out.stdout));
    seen.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(seen.contains("token"), "the scan saw the outcomes: {seen}");
    for secret in secrets {
        assert!(!seen.contains(secret), "{secret} leaked:\n{seen}");
    }
}

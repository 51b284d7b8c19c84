//! The accounts-server token endpoint.

mod common;

use std::time::Duration;

use anyhow::Context as _;
use bigin_local::{Config, LocalServer};
use common::{GOOD_REFRESH, Part, request, token_request, upload};

#[test]
fn mints_a_token_that_uploads() -> anyhow::Result<()> {
    let server = LocalServer::start(Config::default())?;
    let reply = token_request(server.addr(), GOOD_REFRESH)?;
    assert_eq!(reply.status, 200);
    let json = reply.json()?;
    assert_eq!(json["api_domain"], server.base_url());
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 3600);
    assert!(json.get("expires_in_sec").is_none());
    let token = json["access_token"].as_str().context("access_token")?;
    assert_ne!(token, common::TOKEN);

    assert_eq!(
        upload(server.addr(), token, &[Part::file("a.txt", b"a")])?.status,
        200
    );
    let again = token_request(server.addr(), GOOD_REFRESH)?.json()?;
    assert_ne!(again["access_token"], json["access_token"]);
    assert_eq!(server.stats().token_mints, 2);
    assert_eq!(
        server.stats().requests.get("POST /oauth/v2/token"),
        Some(&2)
    );
    Ok(())
}

#[test]
fn accepts_parameters_in_the_query_string() -> anyhow::Result<()> {
    let server = LocalServer::start(Config::default())?;
    let reply = request(
        server.addr(),
        "POST",
        &format!("/oauth/v2/token?{}", GOOD_REFRESH),
        &[],
        b"",
    )?;
    assert_eq!(reply.status, 200);
    Ok(())
}

#[test]
fn answers_expires_in_sec_and_expires_tokens() -> anyhow::Result<()> {
    let server = LocalServer::start(Config {
        answer_expires_in_sec: true,
        token_lifetime: Duration::from_millis(300),
        ..Config::default()
    })?;
    let json = token_request(server.addr(), GOOD_REFRESH)?.json()?;
    assert_eq!(json["expires_in_sec"], 0);
    assert!(json.get("expires_in").is_none());
    let token = json["access_token"].as_str().context("access_token")?;
    assert_eq!(
        upload(server.addr(), token, &[Part::file("a.txt", b"a")])?.status,
        200
    );
    std::thread::sleep(Duration::from_millis(400));
    let expired = upload(server.addr(), token, &[Part::file("a.txt", b"a")])?;
    assert_eq!(
        (expired.status, expired.code().as_str()),
        (401, "INVALID_TOKEN")
    );
    Ok(())
}

#[test]
fn refuses_bad_requests_like_zoho() -> anyhow::Result<()> {
    let server = LocalServer::start(Config::default())?;
    let cases = [
        (
            "grant_type=authorization_code&client_id=local-client&client_secret=local-secret&code=x",
            "unsupported_grant_type",
        ),
        (
            "client_id=local-client&client_secret=local-secret&refresh_token=local-refresh-token",
            "unsupported_grant_type",
        ),
        (
            "grant_type=refresh_token&client_id=other&client_secret=local-secret&refresh_token=local-refresh-token",
            "invalid_client",
        ),
        (
            "grant_type=refresh_token&client_id=local-client&client_secret=wrong&refresh_token=local-refresh-token",
            "invalid_client",
        ),
        (
            "grant_type=refresh_token&client_id=local-client&client_secret=local-secret&refresh_token=revoked",
            "invalid_code",
        ),
        (
            "grant_type=refresh_token&client_id=local-client&client_secret=local-secret",
            "invalid_code",
        ),
    ];
    for (form, error) in cases {
        let reply = token_request(server.addr(), form)?;
        assert_eq!(reply.status, 400, "{form}");
        assert_eq!(
            reply.json()?,
            serde_json::json!({ "error": error }),
            "{form}"
        );
    }
    assert_eq!(server.stats().token_mints, 0);
    Ok(())
}

#[test]
fn refuses_every_refresh_without_a_refresh_token() -> anyhow::Result<()> {
    let server = LocalServer::start(Config {
        refresh_token: None,
        ..Config::default()
    })?;
    let reply = token_request(server.addr(), GOOD_REFRESH)?;
    assert_eq!(reply.json()?["error"], "invalid_code");
    Ok(())
}

#[test]
fn refuses_a_sixth_mint_within_a_minute() -> anyhow::Result<()> {
    let server = LocalServer::start(Config::default())?;
    for _ in 0..5 {
        assert_eq!(token_request(server.addr(), GOOD_REFRESH)?.status, 200);
    }
    let reply = token_request(server.addr(), GOOD_REFRESH)?;
    assert_eq!(reply.status, 400);
    let json = reply.json()?;
    assert_eq!(json["error"], "Access Denied");
    assert_eq!(
        json["error_description"],
        "You have made too many requests continuously. Please try again after some time."
    );
    assert_eq!(server.stats().token_mints, 5);
    Ok(())
}

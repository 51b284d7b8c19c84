//! A small HTTP/1.1 client over `std::net::TcpStream` for the integration
//! tests, with a timeout on every connect, read and write.
//!
//! Hand-written rather than a client crate so that tests can send exactly
//! the bytes they mean, broken ones included.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Connect, read and write timeout for every request.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// The default static token of [`bigin_local::Config`].
pub const TOKEN: &str = "local-dev-token";

/// The boundary every multipart body here uses.
pub const BOUNDARY: &str = "bigin-local-test-boundary";

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "response body is not JSON: {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `code` of a Bigin error body.
    pub fn code(&self) -> String {
        self.json()
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// Opens a connection with every timeout set.
pub fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).context("connecting")?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Sends one request with `Connection: close` and reads the response to
/// the end of the connection. `headers` come after `Host`, `Connection`
/// and `Content-Length`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Reply> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    send_raw(addr, head.as_bytes(), body)
}

/// Writes `head` and `body` as given and reads the response to the end of
/// the connection.
pub fn send_raw(addr: SocketAddr, head: &[u8], body: &[u8]) -> anyhow::Result<Reply> {
    let mut stream = connect(addr)?;
    stream.write_all(head).context("writing the head")?;
    stream.write_all(body).context("writing the body")?;
    read_reply(&mut stream)
}

/// Reads a whole response from a connection the server will close.
pub fn read_reply(stream: &mut TcpStream) -> anyhow::Result<Reply> {
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .context("reading the response")?;
    parse_reply(&raw)
}

pub fn parse_reply(raw: &[u8]) -> anyhow::Result<Reply> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("no end of head in {:?}", String::from_utf8_lossy(raw)))?;
    let head = std::str::from_utf8(&raw[..split]).context("head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .context("no status code")?
        .parse()
        .context("bad status code")?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// One multipart part: its `Content-Disposition` parameters after
/// `form-data; `, an optional `Content-Type`, and its content.
pub struct Part<'a> {
    pub disposition: String,
    pub content_type: Option<&'a str>,
    pub data: &'a [u8],
}

impl<'a> Part<'a> {
    /// A `file` part named `filename`, of type `text/plain`.
    pub fn file(filename: &str, data: &'a [u8]) -> Self {
        Self {
            disposition: format!("name=\"file\"; filename=\"{filename}\""),
            content_type: Some("text/plain"),
            data,
        }
    }

    /// A part with raw disposition parameters.
    pub fn raw(disposition: &str, data: &'a [u8]) -> Self {
        Self {
            disposition: disposition.to_owned(),
            content_type: None,
            data,
        }
    }
}

/// A multipart/form-data body with [`BOUNDARY`].
pub fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(b"Content-Disposition: form-data; ");
        body.extend_from_slice(part.disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = part.content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `Content-Type` for [`multipart`] bodies.
pub fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// Uploads `parts` with `token`.
pub fn upload(addr: SocketAddr, token: &str, parts: &[Part<'_>]) -> anyhow::Result<Reply> {
    let auth = format!("Zoho-oauthtoken {token}");
    let content_type = multipart_type();
    request(
        addr,
        "POST",
        "/bigin/v2/files",
        &[("Authorization", &auth), ("Content-Type", &content_type)],
        &multipart(parts),
    )
}

/// Downloads `id` with `token`.
pub fn download(addr: SocketAddr, token: &str, id: &str) -> anyhow::Result<Reply> {
    let auth = format!("Zoho-oauthtoken {token}");
    request(
        addr,
        "GET",
        &format!("/bigin/v2/files?id={id}"),
        &[("Authorization", &auth)],
        b"",
    )
}

/// POSTs a form to the token endpoint.
pub fn token_request(addr: SocketAddr, form: &str) -> anyhow::Result<Reply> {
    request(
        addr,
        "POST",
        "/oauth/v2/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
}

/// The form that mints a token with the default configuration.
pub const GOOD_REFRESH: &str = "grant_type=refresh_token&client_id=local-client\
    &client_secret=local-secret&refresh_token=local-refresh-token";

/// The ids of a successful upload's answer, in order.
pub fn uploaded_ids(reply: &Reply) -> anyhow::Result<Vec<String>> {
    if reply.status != 200 {
        bail!(
            "upload answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    let json = reply.json()?;
    let data = json["data"].as_array().context("no data array")?;
    data.iter()
        .map(|entry| {
            entry["details"]["id"]
                .as_str()
                .map(str::to_owned)
                .context("entry without id")
        })
        .collect()
}

/// Polls `check` every 20 ms until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

/// Whether an I/O error means "nothing arrived before the timeout".
pub fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

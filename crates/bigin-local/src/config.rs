//! Server configuration.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How a [`LocalServer`](crate::LocalServer) behaves. Start from
/// [`Config::default`] and change what a test needs.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:0` (a free port).
    pub bind: SocketAddr,
    /// Lets `bind` be a non-loopback address. Default `false`: this server
    /// has no security worth the name and is meant for tests on one host.
    pub allow_non_loopback: bool,
    /// Access tokens valid from the start, without expiry. Default
    /// `["local-dev-token"]`.
    pub access_tokens: Vec<String>,
    /// The one OAuth client the token endpoint knows. Default
    /// `local-client`.
    pub client_id: String,
    /// That client's secret. Default `local-secret`.
    pub client_secret: String,
    /// The refresh token the token endpoint accepts; `None` refuses every
    /// refresh. Default `local-refresh-token`.
    pub refresh_token: Option<String>,
    /// How long a minted access token stays valid. Default one hour, as at
    /// Zoho.
    pub token_lifetime: Duration,
    /// Answer `expires_in_sec` instead of `expires_in` from the token
    /// endpoint, as some Zoho accounts servers do.
    pub answer_expires_in_sec: bool,
    /// After this many successful uploads every valid access token is
    /// revoked, until the next mint. Default `None` (never).
    pub expire_after_uploads: Option<u32>,
    /// Print one line per request to stderr (method, path, status, file
    /// count; never query strings or headers). Default `false`.
    pub log_requests: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            allow_non_loopback: false,
            access_tokens: vec!["local-dev-token".to_owned()],
            client_id: "local-client".to_owned(),
            client_secret: "local-secret".to_owned(),
            refresh_token: Some("local-refresh-token".to_owned()),
            token_lifetime: Duration::from_secs(3600),
            answer_expires_in_sec: false,
            expire_after_uploads: None,
            log_requests: false,
        }
    }
}

impl fmt::Debug for Config {
    // Tokens and the client secret are credentials, even local ones: say
    // whether they are set, never what they are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("allow_non_loopback", &self.allow_non_loopback)
            .field(
                "access_tokens",
                &format_args!("[{} redacted]", self.access_tokens.len()),
            )
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("token_lifetime", &self.token_lifetime)
            .field("answer_expires_in_sec", &self.answer_expires_in_sec)
            .field("expire_after_uploads", &self.expire_after_uploads)
            .field("log_requests", &self.log_requests)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let debug = format!("{:?}", Config::default());
        assert!(!debug.contains("local-dev-token"), "{debug}");
        assert!(!debug.contains("local-secret"), "{debug}");
        assert!(!debug.contains("local-refresh-token"), "{debug}");
        assert!(debug.contains("local-client"), "{debug}");
    }
}

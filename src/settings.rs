//! Where requests go and how they are signed: data centres, an API-domain
//! override, and the access token, which never shows in `Debug` output.

use std::fmt;

/// The environment variables [`Settings::from_env`] reads.
pub const ENV_ACCESS_TOKEN: &str = "BIGIN_ACCESS_TOKEN";
pub const ENV_DATA_CENTRE: &str = "BIGIN_DATA_CENTRE";
pub const ENV_API_DOMAIN: &str = "BIGIN_API_DOMAIN";

/// A Bigin data centre: the API domain and the accounts server of an
/// account go together (reference: Data centres).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataCentre {
    pub code: &'static str,
    pub api_host: &'static str,
    pub accounts_host: &'static str,
}

pub const DATA_CENTRES: [DataCentre; 8] = [
    dc("us", "www.zohoapis.com", "accounts.zoho.com"),
    dc("eu", "www.zohoapis.eu", "accounts.zoho.eu"),
    dc("au", "www.zohoapis.com.au", "accounts.zoho.com.au"),
    dc("in", "www.zohoapis.in", "accounts.zoho.in"),
    dc("cn", "www.zohoapis.com.cn", "accounts.zoho.com.cn"),
    dc("jp", "www.zohoapis.jp", "accounts.zoho.jp"),
    dc("sa", "www.zohoapis.sa", "accounts.zoho.sa"),
    dc("ca", "www.zohoapis.ca", "accounts.zohocloud.ca"),
];

const fn dc(code: &'static str, api_host: &'static str, accounts_host: &'static str) -> DataCentre {
    DataCentre {
        code,
        api_host,
        accounts_host,
    }
}

/// The data centre used when none is named.
pub const DEFAULT_DATA_CENTRE: &str = "us";

impl DataCentre {
    /// Looks a data centre up by its code, case-insensitively.
    pub fn find(code: &str) -> Option<DataCentre> {
        let code = code.trim();
        DATA_CENTRES
            .into_iter()
            .find(|dc| dc.code.eq_ignore_ascii_case(code))
    }
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Where API requests go: a scheme and an authority (`host[:port]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: Scheme,
    pub authority: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}", self.authority)
    }
}

impl Origin {
    /// Parses an origin such as `https://www.zohoapis.eu` or
    /// `http://127.0.0.1:8080`. A trailing `/` is allowed; a path, query,
    /// user info, or plain `http` to anything but loopback is not, because
    /// the token would travel in the clear.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let text = text.trim();
        let (scheme, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!(
                "the API domain `{text}` must start with https:// (or http:// for loopback)"
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty()
            || authority.contains(['/', '?', '#', '@', ' '])
            || !authority.is_ascii()
        {
            return Err(format!(
                "the API domain `{text}` must be an origin like https://www.zohoapis.com, with no path"
            ));
        }
        let host = host_of(authority);
        if host.is_empty() {
            return Err(format!("the API domain `{text}` has no host"));
        }
        if scheme == Scheme::Http && !is_loopback(host) {
            return Err(format!(
                "the API domain `{text}` uses plain http, which is allowed only for loopback"
            ));
        }
        Ok(Origin {
            scheme,
            authority: authority.to_ascii_lowercase(),
        })
    }

    /// The origin of a data centre's API.
    pub fn of(dc: DataCentre) -> Origin {
        Origin {
            scheme: Scheme::Https,
            authority: dc.api_host.to_owned(),
        }
    }
}

/// The host part of `host[:port]` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") || host == "::1" {
        return true;
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// An OAuth access token. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The token itself, for the one place that builds the header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Defaults for retries and timeouts.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
pub const DEFAULT_MAX_RETRY_WAIT_MS: u64 = 30_000;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Bigin scans uploads for viruses before it answers.
pub const DEFAULT_FIRST_BYTE_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_BETWEEN_BYTES_TIMEOUT_MS: u64 = 30_000;

/// The settings as given, before they are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSettings {
    pub data_centre: Option<String>,
    pub api_domain: Option<String>,
    pub access_token: Option<Secret>,
    pub refresh_token: Option<Secret>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub accounts_url: Option<String>,
    pub max_retries: Option<u32>,
    pub max_retry_wait_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub first_byte_timeout_ms: Option<u64>,
    pub between_bytes_timeout_ms: Option<u64>,
    /// A variable that could not be read, reported by [`RawSettings::check`].
    pub unreadable: Option<String>,
}

/// How to get an access token from a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub accounts: Origin,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
}

/// Retry bounds for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries of one request.
    pub max_retries: u32,
    /// Total waiting between retries in one call, in nanoseconds.
    pub max_wait_ns: u64,
}

/// Per-request timeouts, in nanoseconds as `wasi:clocks` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect_ns: u64,
    pub first_byte_ns: u64,
    pub between_bytes_ns: u64,
}

/// Checked settings: where to send, what to sign with, how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub origin: Origin,
    /// Whether `origin` was given as an API domain, which then also wins
    /// over the `api_domain` a token answer names.
    pub origin_given: bool,
    pub access_token: Option<Secret>,
    pub refresh: Option<Refresh>,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
}

impl Settings {
    /// The secrets these settings hold, to be kept out of every message.
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets: Vec<&str> = self.access_token.iter().map(Secret::expose).collect();
        if let Some(refresh) = &self.refresh {
            secrets.push(refresh.client_secret.expose());
            secrets.push(refresh.refresh_token.expose());
        }
        secrets.retain(|s| !s.is_empty());
        secrets
    }
}

const MS: u64 = 1_000_000;

impl RawSettings {
    /// Reads the `BIGIN_*` variables from `vars`; empty values count as
    /// unset.
    pub fn from_env<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> RawSettings {
        let mut raw = RawSettings::default();
        for (key, value) in vars {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let number = |raw: &mut RawSettings| match value.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    raw.unreadable = Some(format!("{key} must be a whole number, not `{value}`"));
                    None
                }
            };
            match key {
                ENV_ACCESS_TOKEN => raw.access_token = Some(Secret::new(value)),
                ENV_DATA_CENTRE => raw.data_centre = Some(value.to_owned()),
                ENV_API_DOMAIN => raw.api_domain = Some(value.to_owned()),
                "BIGIN_REFRESH_TOKEN" => raw.refresh_token = Some(Secret::new(value)),
                "BIGIN_CLIENT_ID" => raw.client_id = Some(value.to_owned()),
                "BIGIN_CLIENT_SECRET" => raw.client_secret = Some(Secret::new(value)),
                "BIGIN_ACCOUNTS_URL" => raw.accounts_url = Some(value.to_owned()),
                "BIGIN_MAX_RETRIES" => {
                    raw.max_retries = number(&mut raw).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                }
                "BIGIN_MAX_RETRY_WAIT_MS" => raw.max_retry_wait_ms = number(&mut raw),
                "BIGIN_CONNECT_TIMEOUT_MS" => raw.connect_timeout_ms = number(&mut raw),
                "BIGIN_FIRST_BYTE_TIMEOUT_MS" => raw.first_byte_timeout_ms = number(&mut raw),
                "BIGIN_BETWEEN_BYTES_TIMEOUT_MS" => raw.between_bytes_timeout_ms = number(&mut raw),
                _ => {}
            }
        }
        raw
    }

    /// The `BIGIN_*` variables that [`RawSettings::from_env`] reads back
    /// into these settings, for a host that passes them to the component.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        let mut put = |key: &'static str, value: Option<String>| {
            if let Some(value) = value {
                vars.push((key, value));
            }
        };
        let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_owned());
        put(ENV_ACCESS_TOKEN, secret(&self.access_token));
        put(ENV_DATA_CENTRE, self.data_centre.clone());
        put(ENV_API_DOMAIN, self.api_domain.clone());
        put("BIGIN_REFRESH_TOKEN", secret(&self.refresh_token));
        put("BIGIN_CLIENT_ID", self.client_id.clone());
        put("BIGIN_CLIENT_SECRET", secret(&self.client_secret));
        put("BIGIN_ACCOUNTS_URL", self.accounts_url.clone());
        put("BIGIN_MAX_RETRIES", self.max_retries.map(|n| n.to_string()));
        put(
            "BIGIN_MAX_RETRY_WAIT_MS",
            self.max_retry_wait_ms.map(|n| n.to_string()),
        );
        put(
            "BIGIN_CONNECT_TIMEOUT_MS",
            self.connect_timeout_ms.map(|n| n.to_string()),
        );
        put(
            "BIGIN_FIRST_BYTE_TIMEOUT_MS",
            self.first_byte_timeout_ms.map(|n| n.to_string()),
        );
        put(
            "BIGIN_BETWEEN_BYTES_TIMEOUT_MS",
            self.between_bytes_timeout_ms.map(|n| n.to_string()),
        );
        vars
    }

    /// Checks the settings. The API domain wins over the data centre; with
    /// neither, the US data centre is used, and likewise for the accounts
    /// server.
    pub fn check(self) -> Result<Settings, String> {
        if let Some(problem) = self.unreadable {
            return Err(problem);
        }
        let access_token = match self.access_token {
            Some(token) if !token.expose().is_empty() => Some(header_safe(token, "access token")?),
            _ => None,
        };
        let dc = match self.data_centre.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(code) => Some(DataCentre::find(code).ok_or_else(|| {
                let known: Vec<_> = DATA_CENTRES.iter().map(|dc| dc.code).collect();
                format!(
                    "unknown data centre `{}`: use one of {}",
                    code.escape_debug(),
                    known.join(", ")
                )
            })?),
        };
        let dc =
            dc.unwrap_or_else(|| DataCentre::find(DEFAULT_DATA_CENTRE).unwrap_or(DATA_CENTRES[0]));
        let (origin, origin_given) = match self.api_domain.as_deref().map(str::trim) {
            Some(domain) if !domain.is_empty() => (Origin::parse(domain)?, true),
            _ => (Origin::of(dc), false),
        };
        let refresh = match self.refresh_token {
            Some(token) if !token.expose().is_empty() => {
                let client_id = self
                    .client_id
                    .filter(|id| !id.trim().is_empty())
                    .ok_or("a refresh token needs a client id (BIGIN_CLIENT_ID)")?;
                let client_secret = self
                    .client_secret
                    .filter(|s| !s.expose().is_empty())
                    .ok_or("a refresh token needs a client secret (BIGIN_CLIENT_SECRET)")?;
                let accounts = match self.accounts_url.as_deref().map(str::trim) {
                    Some(url) if !url.is_empty() => {
                        Origin::parse(url).map_err(|e| e.replace("API domain", "accounts URL"))?
                    }
                    _ => Origin {
                        scheme: Scheme::Https,
                        authority: dc.accounts_host.to_owned(),
                    },
                };
                Some(Refresh {
                    accounts,
                    client_id: client_id.trim().to_owned(),
                    client_secret,
                    refresh_token: token,
                })
            }
            _ => None,
        };
        if access_token.is_none() && refresh.is_none() {
            return Err(format!(
                "no access token: set {ENV_ACCESS_TOKEN}, or BIGIN_REFRESH_TOKEN with \
                 BIGIN_CLIENT_ID and BIGIN_CLIENT_SECRET, or pass them in the settings"
            ));
        }
        let ms = |value: Option<u64>, default: u64| value.unwrap_or(default).saturating_mul(MS);
        Ok(Settings {
            origin,
            origin_given,
            access_token,
            refresh,
            retry: RetryPolicy {
                max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
                max_wait_ns: ms(self.max_retry_wait_ms, DEFAULT_MAX_RETRY_WAIT_MS),
            },
            timeouts: Timeouts {
                connect_ns: ms(self.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT_MS).max(MS),
                first_byte_ns: ms(self.first_byte_timeout_ms, DEFAULT_FIRST_BYTE_TIMEOUT_MS)
                    .max(MS),
                between_bytes_ns: ms(
                    self.between_bytes_timeout_ms,
                    DEFAULT_BETWEEN_BYTES_TIMEOUT_MS,
                )
                .max(MS),
            },
        })
    }
}

/// Refuses a token a header could not carry, without showing it.
fn header_safe(token: Secret, what: &str) -> Result<Secret, String> {
    if token.expose().bytes().all(|b| b.is_ascii_graphic()) {
        Ok(token)
    } else {
        Err(format!(
            "the {what} holds spaces or characters a header cannot carry"
        ))
    }
}

/// Replaces every secret in `message` so an echo from a server cannot leak
/// one into an error.
pub fn redact(message: &str, secrets: &[&str]) -> String {
    let mut message = message.to_owned();
    for secret in secrets {
        if !secret.is_empty() {
            message = message.replace(secret, "<redacted>");
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(dc: Option<&str>, domain: Option<&str>, token: Option<&str>) -> RawSettings {
        RawSettings {
            data_centre: dc.map(Into::into),
            api_domain: domain.map(Into::into),
            access_token: token.map(Secret::new),
            ..RawSettings::default()
        }
    }

    #[test]
    fn refresh_needs_a_client_and_finds_its_accounts_server() {
        let mut r = raw(Some("ca"), None, None);
        r.refresh_token = Some(Secret::new("rt"));
        assert!(r.clone().check().unwrap_err().contains("client id"));
        r.client_id = Some("cid".into());
        assert!(r.clone().check().unwrap_err().contains("client secret"));
        r.client_secret = Some(Secret::new("cs"));
        let s = r.clone().check().unwrap();
        let refresh = s.refresh.as_ref().unwrap();
        assert_eq!(
            refresh.accounts.to_string(),
            "https://accounts.zohocloud.ca"
        );
        assert_eq!(s.access_token, None);
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("\"cs\"") && !shown.contains("\"rt\""),
            "{shown}"
        );
        r.accounts_url = Some("http://10.1.2.3".into());
        assert!(r.check().unwrap_err().contains("accounts URL"));
    }

    #[test]
    fn retry_and_timeouts_have_defaults_and_read_the_environment() {
        let s = raw(None, None, Some("t")).check().unwrap();
        assert_eq!(s.retry.max_retries, DEFAULT_MAX_RETRIES);
        assert_eq!(s.timeouts.connect_ns, DEFAULT_CONNECT_TIMEOUT_MS * MS);
        let r = RawSettings::from_env([
            (ENV_ACCESS_TOKEN, "t"),
            ("BIGIN_MAX_RETRIES", "0"),
            ("BIGIN_FIRST_BYTE_TIMEOUT_MS", "250"),
        ]);
        let s = r.check().unwrap();
        assert_eq!(s.retry.max_retries, 0);
        assert_eq!(s.timeouts.first_byte_ns, 250 * MS);
        let bad = RawSettings::from_env([(ENV_ACCESS_TOKEN, "t"), ("BIGIN_MAX_RETRIES", "lots")]);
        assert!(bad.check().unwrap_err().contains("BIGIN_MAX_RETRIES"));
    }

    #[test]
    fn the_environment_round_trips() {
        let raw = RawSettings {
            data_centre: Some("eu".into()),
            api_domain: Some("http://127.0.0.1:5".into()),
            access_token: Some(Secret::new("a")),
            refresh_token: Some(Secret::new("r")),
            client_id: Some("c".into()),
            client_secret: Some(Secret::new("s")),
            accounts_url: Some("http://127.0.0.1:6".into()),
            max_retries: Some(2),
            max_retry_wait_ms: Some(3),
            connect_timeout_ms: Some(4),
            first_byte_timeout_ms: Some(5),
            between_bytes_timeout_ms: Some(6),
            unreadable: None,
        };
        let vars = raw.to_env();
        let back = RawSettings::from_env(vars.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(back, raw);
    }

    #[test]
    fn redact_removes_every_secret() {
        assert_eq!(
            redact("bad token abc and abc", &["abc", ""]),
            "bad token <redacted> and <redacted>"
        );
    }

    #[test]
    fn every_data_centre_resolves() {
        for (code, host) in [
            ("US", "www.zohoapis.com"),
            ("eu", "www.zohoapis.eu"),
            ("au", "www.zohoapis.com.au"),
            ("in", "www.zohoapis.in"),
            ("cn", "www.zohoapis.com.cn"),
            ("jp", "www.zohoapis.jp"),
            ("sa", "www.zohoapis.sa"),
            ("Ca", "www.zohoapis.ca"),
        ] {
            let s = raw(Some(code), None, Some("t")).check().unwrap();
            assert_eq!(s.origin.to_string(), format!("https://{host}"));
        }
        assert_eq!(
            DataCentre::find("ca").map(|d| d.accounts_host),
            Some("accounts.zohocloud.ca")
        );
    }

    #[test]
    fn defaults_to_us_and_domain_wins() {
        let s = raw(None, None, Some("t")).check().unwrap();
        assert_eq!(s.origin.to_string(), "https://www.zohoapis.com");
        let s = raw(Some("eu"), Some("http://127.0.0.1:9/"), Some("t"))
            .check()
            .unwrap();
        assert_eq!(s.origin.to_string(), "http://127.0.0.1:9");
    }

    #[test]
    fn refuses_bad_settings() {
        assert!(
            raw(None, None, None)
                .check()
                .unwrap_err()
                .contains("no access token")
        );
        assert!(raw(None, None, Some("a b")).check().is_err());
        assert!(
            raw(Some("mars"), None, Some("t"))
                .check()
                .unwrap_err()
                .contains("mars")
        );
        for bad in [
            "http://www.zohoapis.com",
            "http://10.0.0.1",
            "ftp://x",
            "https://x/path",
            "https://user@x",
            "https://",
        ] {
            assert!(raw(None, Some(bad), Some("t")).check().is_err(), "{bad}");
        }
        for good in [
            "http://localhost:1",
            "http://[::1]:8080",
            "https://x.example:8443",
        ] {
            assert!(raw(None, Some(good), Some("t")).check().is_ok(), "{good}");
        }
    }

    #[test]
    fn token_never_in_debug() {
        let s = raw(None, None, Some("sekrit-token-123")).check().unwrap();
        let shown = format!("{s:?} {:?}", raw(None, None, Some("sekrit-token-123")));
        assert!(!shown.contains("sekrit"), "{shown}");
    }

    #[test]
    fn env_reading_skips_empty_values() {
        let r = RawSettings::from_env([
            (ENV_ACCESS_TOKEN, " tok "),
            (ENV_DATA_CENTRE, ""),
            ("OTHER", "x"),
        ]);
        assert_eq!(r.access_token.as_ref().map(Secret::expose), Some("tok"));
        assert_eq!(r.data_centre, None);
    }
}

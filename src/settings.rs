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

/// The settings as given, before they are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSettings {
    pub data_centre: Option<String>,
    pub api_domain: Option<String>,
    pub access_token: Option<Secret>,
}

/// Checked settings: where to send and what to sign with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub origin: Origin,
    pub access_token: Secret,
}

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
            match key {
                ENV_ACCESS_TOKEN => raw.access_token = Some(Secret::new(value)),
                ENV_DATA_CENTRE => raw.data_centre = Some(value.to_owned()),
                ENV_API_DOMAIN => raw.api_domain = Some(value.to_owned()),
                _ => {}
            }
        }
        raw
    }

    /// Checks the settings. The API domain wins over the data centre; with
    /// neither, the US data centre is used.
    pub fn check(self) -> Result<Settings, String> {
        let token = match self.access_token {
            Some(token) if !token.expose().trim().is_empty() => token,
            _ => {
                return Err(format!(
                    "no access token: set {ENV_ACCESS_TOKEN} or pass one in the settings"
                ));
            }
        };
        if !token.expose().bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the access token holds spaces or characters a header cannot carry".into());
        }
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
        let origin = match self.api_domain.as_deref().map(str::trim) {
            Some(domain) if !domain.is_empty() => Origin::parse(domain)?,
            _ => Origin::of(dc.unwrap_or_else(|| {
                DataCentre::find(DEFAULT_DATA_CENTRE).unwrap_or(DATA_CENTRES[0])
            })),
        };
        Ok(Settings {
            origin,
            access_token: token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(dc: Option<&str>, domain: Option<&str>, token: Option<&str>) -> RawSettings {
        RawSettings {
            data_centre: dc.map(Into::into),
            api_domain: domain.map(Into::into),
            access_token: token.map(Secret::new),
        }
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

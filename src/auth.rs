//! OAuth with Zoho's accounts server: the refresh-token grant and its
//! answers, plus the HTTP date of a `Retry-After`.

use serde::Deserialize;

use crate::settings::{Origin, Refresh, Secret, redact};

/// The token endpoint on the accounts server.
pub const TOKEN_PATH: &str = "/oauth/v2/token";

/// Used when an answer gives neither `expires_in` nor `expires_in_sec`:
/// Zoho's access tokens live one hour.
const DEFAULT_LIFETIME_SECS: u64 = 3600;

/// Why minting failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    InvalidClient,
    InvalidRefreshToken,
    TooManyRequests,
    Other,
}

/// A refused or unreadable token answer. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub problem: TokenProblem,
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
}

impl TokenError {
    pub fn other(message: &str) -> Self {
        TokenError {
            problem: TokenProblem::Other,
            http_status: None,
            code: None,
            message: message.to_owned(),
        }
    }
}

/// A freshly minted access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    pub access_token: Secret,
    /// The API origin the account lives on, when the answer says.
    pub api_origin: Option<Origin>,
    pub expires_in_secs: u64,
}

#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    api_domain: Option<String>,
    expires_in: Option<u64>,
    expires_in_sec: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The form body of a refresh-token grant. Only this body carries the
/// client secret and the refresh token.
pub fn token_form(refresh: &Refresh) -> String {
    format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
        form_encode(&refresh.client_id),
        form_encode(refresh.client_secret.expose()),
        form_encode(refresh.refresh_token.expose()),
    )
}

/// Which refresh settings a cached token belongs to, without keeping the
/// secrets themselves a second time in plain sight.
pub fn cache_key(refresh: &Refresh) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in [
        refresh.accounts.to_string().as_str(),
        &refresh.client_id,
        refresh.client_secret.expose(),
        refresh.refresh_token.expose(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the accounts server's answer. Zoho sends some errors with status
/// 200, so the body decides; `secrets` are scrubbed from any message.
pub fn parse_answer(status: u16, body: &[u8], secrets: &[&str]) -> Result<Minted, TokenError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| TokenError {
        problem: TokenProblem::Other,
        http_status: Some(status),
        code: None,
        message: format!("the token answer is not the expected JSON ({e})"),
    })?;
    if let Some(code) = answer.error {
        let description = answer.error_description.unwrap_or_default();
        let problem = match code.as_str() {
            "invalid_client" => TokenProblem::InvalidClient,
            "invalid_code" | "invalid_grant" => TokenProblem::InvalidRefreshToken,
            _ if description
                .to_ascii_lowercase()
                .contains("too many requests") =>
            {
                TokenProblem::TooManyRequests
            }
            _ => TokenProblem::Other,
        };
        let message = match problem {
            TokenProblem::InvalidClient => "the client id or secret was refused".to_owned(),
            TokenProblem::InvalidRefreshToken => {
                "the refresh token is wrong or was revoked".to_owned()
            }
            TokenProblem::TooManyRequests => {
                "too many tokens minted: the accounts server allows five a minute".to_owned()
            }
            TokenProblem::Other if description.is_empty() => code.clone(),
            TokenProblem::Other => description,
        };
        return Err(TokenError {
            problem,
            http_status: Some(status),
            code: Some(redact(&code, secrets)),
            message: redact(&message, secrets),
        });
    }
    let token = answer
        .access_token
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| TokenError {
            problem: TokenProblem::Other,
            http_status: Some(status),
            code: None,
            message: "the token answer has no usable access_token".into(),
        })?;
    let api_origin = match answer.api_domain.as_deref() {
        Some(domain) => Some(Origin::parse(domain).map_err(|e| TokenError {
            problem: TokenProblem::Other,
            http_status: Some(status),
            code: None,
            message: format!("the token answer's api_domain cannot be used: {e}"),
        })?),
        None => None,
    };
    Ok(Minted {
        access_token: Secret::new(token),
        api_origin,
        expires_in_secs: answer
            .expires_in
            .or(answer.expires_in_sec)
            .unwrap_or(DEFAULT_LIFETIME_SECS),
    })
}

/// `application/x-www-form-urlencoded` (WHATWG URL, section 5.2).
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Parses an IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`, RFC 9110
/// section 5.6.7) into seconds since the Unix epoch. The obsolete forms are
/// not read.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day as i64);
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_token_and_its_lifetime_either_way() {
        let m = parse_answer(
            200,
            br#"{"access_token":"a","api_domain":"https://www.zohoapis.eu","token_type":"Bearer","expires_in":3600}"#,
            &[],
        )
        .unwrap();
        assert_eq!(m.expires_in_secs, 3600);
        assert_eq!(m.api_origin.unwrap().to_string(), "https://www.zohoapis.eu");
        let m = parse_answer(200, br#"{"access_token":"a","expires_in_sec":120}"#, &[]).unwrap();
        assert_eq!((m.expires_in_secs, m.api_origin), (120, None));
    }

    #[test]
    fn errors_are_sorted_and_scrubbed() {
        let e = parse_answer(200, br#"{"error":"invalid_client"}"#, &[]).unwrap_err();
        assert_eq!(e.problem, TokenProblem::InvalidClient);
        let e = parse_answer(400, br#"{"error":"invalid_code"}"#, &[]).unwrap_err();
        assert_eq!(e.problem, TokenProblem::InvalidRefreshToken);
        let e = parse_answer(
            400,
            br#"{"error":"Access Denied","error_description":"You have made too many requests continuously."}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.problem, TokenProblem::TooManyRequests);
        let e = parse_answer(
            400,
            br#"{"error":"odd","error_description":"echo s3cr3t"}"#,
            &["s3cr3t"],
        )
        .unwrap_err();
        assert_eq!(e.message, "echo <redacted>");
        let e = parse_answer(
            200,
            br#"{"access_token":"a","api_domain":"http://evil.example"}"#,
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("api_domain"));
    }

    #[test]
    fn the_form_encodes_secrets() {
        let refresh = Refresh {
            accounts: Origin::parse("https://accounts.zoho.com").unwrap(),
            client_id: "1000.ID".into(),
            client_secret: Secret::new("a&b=c d"),
            refresh_token: Secret::new("1000.r/t"),
        };
        assert_eq!(
            token_form(&refresh),
            "grant_type=refresh_token&client_id=1000.ID&client_secret=a%26b%3Dc+d&refresh_token=1000.r%2Ft"
        );
        assert_eq!(cache_key(&refresh).len(), 64);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        assert_eq!(parse_http_date("tomorrow"), None);
        assert_eq!(parse_http_date("Wed, 21 Oct 2015 07:28:00 PST"), None);
    }
}

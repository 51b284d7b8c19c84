//! Sending one logical request to Bigin: sign it, retry what is safe to
//! retry within the call's bounds, and mint a fresh access token once when
//! Bigin says the one in use expired.
//!
//! What is retried: a 429 (after `Retry-After`, else capped exponential
//! backoff with jitter), a 5xx, and a connection fault before the whole
//! body was sent. A fault after the whole body was sent is not retried for
//! a request that is not idempotent (an upload may have landed); the caller
//! reports it as possibly uploaded.

use crate::api;
use crate::auth::{self, Minted, TokenError};
use crate::settings::{Origin, Secret, Settings};
use crate::upload::{Method, Payload, Request, Response, Transport, TransportError};

/// The first backoff step and the largest one.
const BACKOFF_BASE_NS: u64 = 500_000_000;
const BACKOFF_CAP_NS: u64 = 8_000_000_000;

/// A token is minted again this long before Zoho says it expires, so it
/// does not expire on the way.
const EXPIRY_MARGIN_NS: u64 = 60_000_000_000;

/// What to send; the client adds the `Authorization` header.
pub struct Spec<'a> {
    pub method: Method,
    pub path_and_query: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Payload<'a>>,
    pub max_answer_bytes: usize,
    /// Whether sending it twice does no harm, so it may be resent after a
    /// fault that came once its body was sent.
    pub idempotent: bool,
}

impl<'a> Spec<'a> {
    /// A `multipart/form-data` POST that creates something, so it is not
    /// resent once its body went out.
    pub fn post_multipart(
        path_and_query: &'a str,
        body: &'a crate::multipart::Body<'a>,
        max_answer_bytes: usize,
    ) -> Self {
        Spec {
            method: Method::Post,
            path_and_query,
            headers: vec![
                ("content-type", body.content_type()),
                ("accept", "application/json".into()),
            ],
            body: Some(Payload::Multipart(body)),
            max_answer_bytes,
            idempotent: false,
        }
    }
}

/// Why no usable answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    Transport(TransportError),
    Token(TokenError),
}

/// Access tokens minted during the component instance's life, reused while
/// they last.
#[derive(Default)]
pub struct TokenCache {
    entry: Option<Cached>,
}

struct Cached {
    /// Which refresh settings minted it, so other settings never use it.
    key: String,
    token: Secret,
    api_origin: Option<Origin>,
    expires_at_ns: u64,
}

/// One call's client: the retry budget is shared by all its requests.
pub struct Client<'a> {
    settings: &'a Settings,
    transport: &'a mut dyn Transport,
    cache: &'a mut TokenCache,
    /// The API origin in force: a token answer's `api_domain` wins over the
    /// configured one.
    origin: Origin,
    waited_ns: u64,
    /// Set once the static access token was refused, so minted ones are
    /// used from then on.
    static_refused: bool,
}

impl<'a> Client<'a> {
    pub fn new(
        settings: &'a Settings,
        transport: &'a mut dyn Transport,
        cache: &'a mut TokenCache,
    ) -> Self {
        Client {
            origin: settings.origin.clone(),
            settings,
            transport,
            cache,
            waited_ns: 0,
            static_refused: false,
        }
    }

    /// 128 random bits from the transport.
    pub fn random(&mut self) -> [u64; 2] {
        self.transport.random()
    }

    /// Sends `spec` signed, with retries; mints again and resends once on a
    /// 401 that says the token expired, when a refresh token is set.
    pub fn send(&mut self, spec: &Spec<'_>) -> Result<Response, CallError> {
        let mut reminted = false;
        loop {
            let token = self.token()?;
            let origin = self.origin.clone();
            let response = self
                .retrying(&origin, spec, Some(&token))
                .map_err(CallError::Transport)?;
            if response.status == 401 && !reminted && self.settings.refresh.is_some() {
                let code = api::error_from(401, &response.body, None).code;
                if matches!(
                    code.as_deref(),
                    Some("INVALID_TOKEN" | "AUTHENTICATION_FAILURE")
                ) {
                    reminted = true;
                    self.static_refused = true;
                    self.cache.entry = None;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// The token to sign with: the static one until it is refused, else a
    /// cached minted one, else a newly minted one.
    fn token(&mut self) -> Result<Secret, CallError> {
        if let Some(token) = &self.settings.access_token
            && (!self.static_refused || self.settings.refresh.is_none())
        {
            return Ok(token.clone());
        }
        let Some(refresh) = &self.settings.refresh else {
            // Unreachable by `RawSettings::check`, which demands one or the
            // other; kept as an error rather than a panic.
            return Err(CallError::Token(TokenError::other("no token to sign with")));
        };
        let key = auth::cache_key(refresh);
        let now = self.transport.now_ns();
        if let Some(cached) = &self.cache.entry
            && cached.key == key
            && now < cached.expires_at_ns
        {
            if let Some(origin) = &cached.api_origin
                && !self.settings.origin_given
            {
                self.origin = origin.clone();
            }
            return Ok(cached.token.clone());
        }
        let minted = self.mint()?;
        let lifetime_ns = minted.expires_in_secs.saturating_mul(1_000_000_000);
        let token = minted.access_token.clone();
        if let Some(origin) = &minted.api_origin
            && !self.settings.origin_given
        {
            self.origin = origin.clone();
        }
        self.cache.entry = Some(Cached {
            key,
            token: minted.access_token,
            api_origin: minted.api_origin,
            expires_at_ns: now.saturating_add(lifetime_ns.saturating_sub(EXPIRY_MARGIN_NS)),
        });
        Ok(token)
    }

    fn mint(&mut self) -> Result<Minted, CallError> {
        let Some(refresh) = &self.settings.refresh else {
            return Err(CallError::Token(TokenError::other("no refresh token")));
        };
        let form = auth::token_form(refresh);
        let spec = Spec {
            method: Method::Post,
            path_and_query: auth::TOKEN_PATH,
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("accept", "application/json".into()),
            ],
            body: Some(Payload::Bytes(form.as_bytes())),
            max_answer_bytes: 64 * 1024,
            // Minting twice only spends one of the five mints a minute.
            idempotent: true,
        };
        let accounts = refresh.accounts.clone();
        let response = self
            .retrying(&accounts, &spec, None)
            .map_err(CallError::Transport)?;
        auth::parse_answer(response.status, &response.body, &self.settings.secrets())
            .map_err(CallError::Token)
    }

    /// Sends to `origin`, retrying 429s, 5xx answers and faults that are
    /// safe to retry, within the per-request count and the call's total
    /// wait.
    fn retrying(
        &mut self,
        origin: &Origin,
        spec: &Spec<'_>,
        token: Option<&Secret>,
    ) -> Result<Response, TransportError> {
        let mut retries = 0u32;
        loop {
            let mut headers = spec.headers.clone();
            if let Some(token) = token {
                headers.push((
                    "authorization",
                    format!("Zoho-oauthtoken {}", token.expose()),
                ));
            }
            let request = Request {
                method: spec.method,
                origin,
                path_and_query: spec.path_and_query,
                headers,
                body: spec.body,
                max_answer_bytes: spec.max_answer_bytes,
                timeouts: self.settings.timeouts,
            };
            let outcome = self.transport.send(request);
            let wait = match &outcome {
                Ok(response) if response.status == 429 => Some(
                    self.retry_after(response)
                        .unwrap_or_else(|| self.backoff(retries)),
                ),
                // A 502 or 504 comes from a gateway that may have passed
                // the request on, so only an idempotent request is resent.
                Ok(response) if matches!(response.status, 500 | 503) => Some(self.backoff(retries)),
                Ok(response) if response.status >= 500 && spec.idempotent => {
                    Some(self.backoff(retries))
                }
                Ok(_) => None,
                Err(fault) if !fault.body_sent || spec.idempotent => Some(self.backoff(retries)),
                Err(_) => None,
            };
            let within_budget = |wait: u64| {
                retries < self.settings.retry.max_retries
                    && self.waited_ns.saturating_add(wait) <= self.settings.retry.max_wait_ns
            };
            match wait {
                Some(wait) if within_budget(wait) => {
                    self.transport.sleep_ns(wait);
                    self.waited_ns += wait;
                    retries += 1;
                }
                _ => return outcome,
            }
        }
    }

    /// `Retry-After` as nanoseconds to wait: delay-seconds or an HTTP date
    /// (RFC 9110 section 10.2.3).
    fn retry_after(&mut self, response: &Response) -> Option<u64> {
        let value = response.header("retry-after")?;
        let seconds = match api::retry_after_seconds(value) {
            Some(seconds) => seconds,
            None => {
                let at = auth::parse_http_date(value)?;
                at.saturating_sub(self.transport.unix_secs())
            }
        };
        Some(seconds.saturating_mul(1_000_000_000))
    }

    /// Capped exponential backoff with jitter: a random wait between half
    /// the step and the whole of it, so clients that failed together do
    /// not come back together.
    fn backoff(&mut self, retries: u32) -> u64 {
        let step = BACKOFF_BASE_NS
            .saturating_mul(1u64 << retries.min(16))
            .min(BACKOFF_CAP_NS);
        let half = step / 2;
        half + self.transport.random()[0] % (half + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TransportKind;
    use crate::settings::RawSettings;

    /// Answers from a script; records requests, sleeps and the clock.
    struct Scripted {
        answers: Vec<Result<Response, TransportError>>,
        sent: Vec<(String, Vec<(&'static str, String)>)>,
        slept: Vec<u64>,
        now: u64,
    }

    impl Transport for Scripted {
        fn send(&mut self, request: Request<'_>) -> Result<Response, TransportError> {
            self.sent.push((
                format!("{}{}", request.origin, request.path_and_query),
                request.headers.clone(),
            ));
            self.answers.remove(0)
        }
        fn random(&mut self) -> [u64; 2] {
            [7, 7]
        }
        fn now_ns(&mut self) -> u64 {
            self.now
        }
        fn sleep_ns(&mut self, ns: u64) {
            self.slept.push(ns);
            self.now += ns;
        }
        fn unix_secs(&mut self) -> u64 {
            1_445_412_460 // 2015-10-21T07:27:40Z
        }
    }

    fn scripted(answers: Vec<Result<Response, TransportError>>) -> Scripted {
        Scripted {
            answers,
            sent: vec![],
            slept: vec![],
            now: 0,
        }
    }

    fn answer(
        status: u16,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, TransportError> {
        Ok(Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: body.as_bytes().to_vec(),
        })
    }

    fn fault(body_sent: bool) -> Result<Response, TransportError> {
        Err(TransportError {
            kind: TransportKind::Connection,
            body_sent,
            message: "reset".into(),
        })
    }

    fn settings(refresh: bool) -> Settings {
        let mut raw = RawSettings {
            api_domain: Some("http://127.0.0.1:1".into()),
            access_token: (!refresh).then(|| Secret::new("static")),
            ..RawSettings::default()
        };
        if refresh {
            raw.refresh_token = Some(Secret::new("refresh-secret"));
            raw.client_id = Some("cid".into());
            raw.client_secret = Some(Secret::new("client-secret"));
            raw.accounts_url = Some("http://127.0.0.1:2".into());
        }
        raw.check().unwrap()
    }

    fn spec(idempotent: bool) -> Spec<'static> {
        Spec {
            method: Method::Post,
            path_and_query: "/bigin/v2/files",
            headers: vec![],
            body: Some(Payload::Bytes(b"x")),
            max_answer_bytes: 1024,
            idempotent,
        }
    }

    fn auth_of<'h>(headers: &'h [(&'static str, String)]) -> Option<&'h str> {
        headers
            .iter()
            .find(|(k, _)| *k == "authorization")
            .map(|(_, v)| v.as_str())
    }

    const TOKEN_OK: &str = r#"{"access_token":"minted-1","api_domain":"http://127.0.0.1:3","token_type":"Bearer","expires_in":3600}"#;

    #[test]
    fn a_429_waits_for_retry_after_seconds_then_succeeds() {
        let s = settings(false);
        let mut t = scripted(vec![
            answer(429, "{}", &[("Retry-After", "2")]),
            answer(200, "ok", &[]),
        ]);
        let mut cache = TokenCache::default();
        let r = Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(t.slept, vec![2_000_000_000]);
    }

    #[test]
    fn a_429_with_an_http_date_waits_until_then() {
        let s = settings(false);
        let mut t = scripted(vec![
            answer(
                429,
                "{}",
                &[("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")],
            ),
            answer(200, "ok", &[]),
        ]);
        let mut cache = TokenCache::default();
        Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(t.slept, vec![20_000_000_000]);
    }

    #[test]
    fn retry_after_beyond_the_budget_gives_up_at_once() {
        let s = settings(false);
        let mut t = scripted(vec![answer(429, "{}", &[("Retry-After", "3600")])]);
        let mut cache = TokenCache::default();
        let r = Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(r.status, 429);
        assert!(t.slept.is_empty());
    }

    #[test]
    fn server_errors_back_off_and_stop_at_the_retry_count() {
        let s = settings(false);
        let mut t = scripted((0..4).map(|_| answer(500, "{}", &[])).collect());
        let mut cache = TokenCache::default();
        let r = Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(t.sent.len(), 4, "one try and three retries");
        assert_eq!(t.slept.len(), 3);
        for (i, wait) in t.slept.iter().enumerate() {
            let step = BACKOFF_BASE_NS << i;
            assert!(*wait >= step / 2 && *wait <= step, "{wait} for step {step}");
        }
    }

    #[test]
    fn a_fault_after_the_body_is_not_resent_unless_idempotent() {
        let s = settings(false);
        let mut t = scripted(vec![fault(true)]);
        let mut cache = TokenCache::default();
        let e = Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap_err();
        assert!(matches!(e, CallError::Transport(f) if f.body_sent));
        assert_eq!(t.sent.len(), 1);

        let mut t = scripted(vec![fault(false), answer(200, "ok", &[])]);
        Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(
            t.sent.len(),
            2,
            "a fault before the body was sent is retried"
        );

        let mut t = scripted(vec![fault(true), answer(200, "ok", &[])]);
        Client::new(&s, &mut t, &mut cache)
            .send(&spec(true))
            .unwrap();
        assert_eq!(t.sent.len(), 2, "an idempotent request is resent");
    }

    #[test]
    fn a_refresh_token_mints_once() {
        let s = settings(true);
        let mut t = scripted(vec![
            answer(200, TOKEN_OK, &[]),
            answer(200, "ok", &[]),
            answer(200, "ok", &[]),
        ]);
        let mut cache = TokenCache::default();
        let mut client = Client::new(&s, &mut t, &mut cache);
        client.send(&spec(false)).unwrap();
        client.send(&spec(false)).unwrap();
        assert_eq!(t.sent.len(), 3, "one mint for two requests");
        assert_eq!(t.sent[0].0, "http://127.0.0.1:2/oauth/v2/token");
        assert_eq!(
            t.sent[1].0, "http://127.0.0.1:1/bigin/v2/files",
            "a configured API domain wins over the answer's"
        );
        assert_eq!(auth_of(&t.sent[1].1), Some("Zoho-oauthtoken minted-1"));
    }

    #[test]
    fn the_answers_domain_wins_over_the_data_centre() {
        let mut raw = RawSettings {
            data_centre: Some("eu".into()),
            refresh_token: Some(Secret::new("r")),
            client_id: Some("c".into()),
            client_secret: Some(Secret::new("s")),
            ..RawSettings::default()
        };
        raw.accounts_url = Some("http://127.0.0.1:2".into());
        let s = raw.check().unwrap();
        let minted = r#"{"access_token":"t","api_domain":"https://www.zohoapis.com.au"}"#;
        let mut t = scripted(vec![answer(200, minted, &[]), answer(200, "ok", &[])]);
        let mut cache = TokenCache::default();
        Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(t.sent[1].0, "https://www.zohoapis.com.au/bigin/v2/files");
    }

    #[test]
    fn a_gateway_error_after_an_upload_is_not_resent() {
        let s = settings(false);
        let mut t = scripted(vec![answer(502, "bad gateway", &[])]);
        let mut cache = TokenCache::default();
        let r = Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!((r.status, t.sent.len()), (502, 1));
        let mut t = scripted(vec![answer(503, "", &[]), answer(200, "ok", &[])]);
        Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(t.sent.len(), 2, "a 503 is the server saying it did nothing");
    }

    #[test]
    fn an_expired_token_is_minted_again_once() {
        let s = settings(true);
        let expired =
            r#"{"code":"INVALID_TOKEN","message":"invalid oauth token","status":"error"}"#;
        let mut t = scripted(vec![
            answer(200, TOKEN_OK, &[]),
            answer(401, expired, &[]),
            answer(200, &TOKEN_OK.replace("minted-1", "minted-2"), &[]),
            answer(401, expired, &[]),
        ]);
        let mut cache = TokenCache::default();
        let r = Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(r.status, 401, "the second refusal is final");
        assert_eq!(t.sent.len(), 4);
        assert_eq!(auth_of(&t.sent[3].1), Some("Zoho-oauthtoken minted-2"));
    }

    #[test]
    fn a_scope_mismatch_is_never_retried() {
        let s = settings(true);
        let mut t = scripted(vec![
            answer(200, TOKEN_OK, &[]),
            answer(
                401,
                r#"{"code":"OAUTH_SCOPE_MISMATCH","message":"scope","status":"error"}"#,
                &[],
            ),
        ]);
        let mut cache = TokenCache::default();
        let r = Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(t.sent.len(), 2);
    }

    #[test]
    fn a_cached_token_is_reused_until_it_nearly_expires() {
        let s = settings(true);
        let mut cache = TokenCache::default();
        let mut t = scripted(vec![answer(200, TOKEN_OK, &[]), answer(200, "ok", &[])]);
        Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        let mut t = scripted(vec![answer(200, "ok", &[])]);
        t.now = 3_000_000_000_000; // 50 minutes later
        Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(t.sent.len(), 1, "reused");
        let mut t = scripted(vec![answer(200, TOKEN_OK, &[]), answer(200, "ok", &[])]);
        t.now = 3_550_000_000_000; // within the last minute
        Client::new(&s, &mut t, &mut cache)
            .send(&spec(false))
            .unwrap();
        assert_eq!(t.sent.len(), 2, "minted again");
    }
}

//! `bigin-local`: runs the loopback Bigin Files API server until SIGINT or
//! SIGTERM.
//!
//! Prints `bigin-local listening on http://ADDR:PORT` on stdout once bound,
//! then one line per request on stderr.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bigin_local::{Config, LocalServer};

const USAGE: &str = "\
Usage: bigin-local [OPTIONS]

Options:
  --port N                  port to listen on (default 0: any free port)
  --bind ADDR               IP address to listen on (default 127.0.0.1)
  --allow-non-loopback      allow --bind to name a non-loopback address
  --token T                 valid access token; repeatable
                            (default local-dev-token)
  --client-id ID            OAuth client id (default local-client)
  --client-secret S         OAuth client secret (default local-secret)
  --refresh-token T         accepted refresh token (default local-refresh-token)
  --token-lifetime SECS     lifetime of minted access tokens (default 3600)
  --expires-in-sec          answer expires_in_sec instead of expires_in
  --expire-after-uploads N  revoke all access tokens after N successful uploads
  --quiet                   do not log requests to stderr
  -h, --help                print this help
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bigin-local: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let Some(config) = parse_args(std::env::args().skip(1))? else {
        print!("{USAGE}");
        return Ok(());
    };
    let server = LocalServer::start(config)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "bigin-local listening on {}", server.base_url())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    wait_for_signal()?;
    drop(server);
    Ok(())
}

/// Blocks until SIGINT, or SIGTERM on Unix.
fn wait_for_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("starting the signal runtime")?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
            tokio::select! {
                result = tokio::signal::ctrl_c() => result.context("listening for SIGINT")?,
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .context("listening for Ctrl-C")?;
        Ok(())
    })
}

/// Builds the configuration from the command line; `None` means help was
/// asked for. Both `--flag VALUE` and `--flag=VALUE` are accepted. Error
/// messages name flags, never the values of secret ones.
fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Config>> {
    let mut config = Config {
        log_requests: true,
        ..Config::default()
    };
    let mut port: u16 = 0;
    let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut tokens = Vec::new();

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || -> anyhow::Result<String> {
            match inline.clone() {
                Some(value) => Ok(value),
                None => args.next().with_context(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                port = value()?
                    .parse()
                    .with_context(|| format!("{flag} takes a port number"))?
            }
            "--bind" => {
                ip = value()?
                    .parse()
                    .with_context(|| format!("{flag} takes an IP address"))?
            }
            "--allow-non-loopback" => config.allow_non_loopback = true,
            "--token" => tokens.push(value()?),
            "--client-id" => config.client_id = value()?,
            "--client-secret" => config.client_secret = value()?,
            "--refresh-token" => config.refresh_token = Some(value()?),
            "--token-lifetime" => {
                let secs = value()?
                    .parse()
                    .with_context(|| format!("{flag} takes a number of seconds"))?;
                config.token_lifetime = Duration::from_secs(secs);
            }
            "--expires-in-sec" => config.answer_expires_in_sec = true,
            "--expire-after-uploads" => {
                let n = value()?
                    .parse()
                    .with_context(|| format!("{flag} takes a count"))?;
                config.expire_after_uploads = Some(n);
            }
            "--quiet" => config.log_requests = false,
            other if other.starts_with('-') => bail!("unknown flag {other}; see --help"),
            // Not echoed: it may be a secret typed after the wrong flag.
            _ => bail!("unexpected argument that follows no flag; see --help"),
        }
    }

    if !tokens.is_empty() {
        config.access_tokens = tokens;
    }
    config.bind = SocketAddr::new(ip, port);
    if !config.allow_non_loopback && !ip.is_loopback() {
        bail!("refusing to listen on non-loopback address {ip} without --allow-non-loopback");
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Option<Config>> {
        parse_args(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn defaults_to_loopback_any_port() -> anyhow::Result<()> {
        let config = parse(&[])?.context("expected a config")?;
        assert_eq!(config.bind, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        assert_eq!(config.access_tokens, ["local-dev-token"]);
        assert!(config.log_requests);
        Ok(())
    }

    #[test]
    fn reads_every_flag() -> anyhow::Result<()> {
        let config = parse(&[
            "--port=8080",
            "--bind",
            "::1",
            "--token",
            "a",
            "--token=b",
            "--client-id",
            "id",
            "--client-secret",
            "s",
            "--refresh-token",
            "r",
            "--token-lifetime",
            "5",
            "--expires-in-sec",
            "--expire-after-uploads",
            "3",
            "--quiet",
        ])?
        .context("expected a config")?;
        assert_eq!(config.bind, "[::1]:8080".parse()?);
        assert_eq!(config.access_tokens, ["a", "b"]);
        assert_eq!(config.client_id, "id");
        assert_eq!(config.client_secret, "s");
        assert_eq!(config.refresh_token.as_deref(), Some("r"));
        assert_eq!(config.token_lifetime, Duration::from_secs(5));
        assert!(config.answer_expires_in_sec);
        assert_eq!(config.expire_after_uploads, Some(3));
        assert!(!config.log_requests);
        Ok(())
    }

    #[test]
    fn refuses_non_loopback_unless_allowed() -> anyhow::Result<()> {
        assert!(parse(&["--bind", "0.0.0.0"]).is_err());
        let config = parse(&["--bind", "0.0.0.0", "--allow-non-loopback"])?;
        assert!(config.is_some_and(|c| c.allow_non_loopback));
        Ok(())
    }

    #[test]
    fn refuses_bad_input_without_echoing_secrets() {
        assert!(parse(&["--port", "x"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
        let missing = parse(&["--client-secret"]).map(|_| ());
        assert!(missing.is_err_and(|e| e.to_string() == "--client-secret needs a value"));
        assert!(matches!(parse(&["--help"]), Ok(None)));
    }
}

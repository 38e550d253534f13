//! Client settings and the errors of a bad setting.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

/// The public OverFast API.
pub const DEFAULT_URL: &str = "https://overfast-api.tekrop.fr";

/// `User-Agent` sent with every request: `ow-stream/<version> (+<repository>)`.
pub const USER_AGENT: &str = concat!(
    "ow-stream/",
    env!("CARGO_PKG_VERSION"),
    " (+",
    env!("CARGO_PKG_REPOSITORY"),
    ")"
);

/// Where answers come from.
///
/// Parsed from the `--overfast-url` / `OW_OVERFAST_URL` setting by [`Source::parse`]:
/// `http://…` and `https://…` ask OverFast, `file:///path/to/dir` replays recorded answers (the
/// layout is in `samples/overfast/README.md`). `--replay DIR` is [`Source::Replay`] directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Ask the OverFast API at this base URL (`GET {base}/players/{player_id}`): `http` or
    /// `https`, without query or fragment ([`ClientConfig::validate`] refuses any other).
    Live(Url),
    /// Answer from recorded bodies in this directory: `<player_id>.json` (a 200 body) and
    /// `<player_id>.404.json` (a 404 body).
    Replay(PathBuf),
}

impl Source {
    /// Parses a base URL: `http(s)://…` → [`Source::Live`], `file:///dir` → [`Source::Replay`].
    ///
    /// ```
    /// use ow_producer::overfast::Source;
    ///
    /// assert!(matches!(Source::parse("https://overfast-api.tekrop.fr"), Ok(Source::Live(_))));
    /// assert!(matches!(Source::parse("file:///srv/overfast"), Ok(Source::Replay(_))));
    /// assert!(Source::parse("ftp://example.com").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Source, ConfigError> {
        let url = Url::parse(text.trim()).map_err(|source| ConfigError::InvalidUrl {
            url: text.to_owned(),
            source,
        })?;
        match url.scheme() {
            "http" | "https" => {
                check_live_url(&url, text)?;
                Ok(Source::Live(url))
            }
            "file" => url
                .to_file_path()
                .map(Source::Replay)
                .map_err(|()| ConfigError::FileUrl {
                    url: text.to_owned(),
                }),
            scheme => Err(ConfigError::UnsupportedScheme {
                url: text.to_owned(),
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// Replays the recorded answers in `dir`.
    pub fn replay(dir: impl Into<PathBuf>) -> Source {
        Source::Replay(dir.into())
    }

    /// The base URL as text (`file://…` for a replay directory).
    pub fn url_text(&self) -> String {
        match self {
            Source::Live(url) => url.as_str().trim_end_matches('/').to_owned(),
            Source::Replay(dir) => match std::path::absolute(dir)
                .ok()
                .and_then(|abs| Url::from_directory_path(abs).ok())
            {
                Some(url) => url.as_str().trim_end_matches('/').to_owned(),
                None => format!("file://{}", dir.display()),
            },
        }
    }
}

/// Checks a base URL to ask OverFast at: `http(s)`, no query, no fragment. `text` is the URL as
/// given, for the error.
fn check_live_url(url: &Url, text: &str) -> Result<(), ConfigError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::UnsupportedScheme {
            url: text.to_owned(),
            scheme: url.scheme().to_owned(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::UrlHasQuery {
            url: text.to_owned(),
        });
    }
    Ok(())
}

impl Default for Source {
    /// The public API, [`DEFAULT_URL`].
    fn default() -> Self {
        Source::Live(Url::parse(DEFAULT_URL).expect("DEFAULT_URL is a valid URL"))
    }
}

impl FromStr for Source {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::parse(s)
    }
}

/// Every setting of an [`OverfastClient`](super::OverfastClient), with polite defaults.
///
/// Fields are public; start from [`ClientConfig::default`] (or [`ClientConfig::new`]) and change
/// what you need. [`OverfastClient::new`](super::OverfastClient::new) checks them all.
///
/// ```
/// use std::time::Duration;
/// use ow_producer::overfast::{ClientConfig, Source};
///
/// let mut config = ClientConfig::new(Source::parse("http://127.0.0.1:8000").unwrap());
/// config.rate_per_second = 5.0;
/// config.timeout = Duration::from_secs(3);
/// assert_eq!(config.burst, 5);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Where answers come from. Default: [`DEFAULT_URL`].
    pub source: Source,
    /// Save every live ok, private and not-found answer into this directory, in the replay
    /// layout, to make new samples. Default: none. Not allowed with [`Source::Replay`].
    pub record_dir: Option<PathBuf>,
    /// Sustained request rate to OverFast, in requests per second (token bucket). Default: 2.
    pub rate_per_second: f64,
    /// Requests that may go at once after a quiet spell (bucket size). Default: 5.
    pub burst: u32,
    /// Requests in flight at once. Default: 4.
    pub concurrency: usize,
    /// Longest wait for one complete answer (connection, headers and body). Default: 10 s.
    pub timeout: Duration,
    /// Largest body read; a longer body is cut off and recorded as an upstream error.
    /// Default: 8 MiB.
    pub max_body_bytes: usize,
    /// HTTP attempts per fetch, first one included. Default: 4.
    pub max_attempts: u32,
    /// Wait before the first retry of an upstream error; doubles at each retry, with jitter
    /// (a random wait between half and all of it). Default: 500 ms.
    pub backoff_base: Duration,
    /// Longest wait between two retries of an upstream error. Default: 30 s.
    pub backoff_max: Duration,
    /// Longest `Retry-After` (429, or 503 with `Retry-After`) waited for inside a fetch; when told
    /// to wait longer, the fetch ends `rate_limited` at once with `next_attempt_at`.
    /// Default: 60 s.
    pub max_retry_after: Duration,
    /// How long a player stays "not found" when OverFast's 404 gives no `retry_after` or
    /// `next_check_at` (OverFast's own first wait is 600 s). Default: 600 s.
    pub not_found_retry: Duration,
    /// `User-Agent` header. Default: [`USER_AGENT`].
    pub user_agent: String,
}

impl ClientConfig {
    /// The defaults, asking `source`.
    pub fn new(source: Source) -> ClientConfig {
        ClientConfig {
            source,
            ..ClientConfig::default()
        }
    }

    /// Checks every setting (not the file system: [`OverfastClient::new`] does that), the source
    /// included: a [`Source::Live`] built by hand with a URL that is not `http(s)` (or that has a
    /// query or fragment) is refused here, as [`Source::parse`] would refuse its text.
    ///
    /// ```
    /// use ow_producer::overfast::{ClientConfig, ConfigError, Source};
    ///
    /// let url = url::Url::parse("mailto:someone@example.com").unwrap();
    /// let config = ClientConfig::new(Source::Live(url));
    /// assert!(matches!(config.validate(), Err(ConfigError::UnsupportedScheme { .. })));
    /// ```
    ///
    /// [`OverfastClient::new`]: super::OverfastClient::new
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Source::Live(url) = &self.source {
            check_live_url(url, url.as_str())?;
        }
        let invalid = |setting: &'static str, reason: &str| {
            Err(ConfigError::Invalid {
                setting,
                reason: reason.to_owned(),
            })
        };
        // Below one request a day, or so fast the period rounds to nothing, is a mistake.
        if !(self.rate_per_second.is_finite()
            && self.rate_per_second >= 1.0 / 86_400.0
            && self.rate_per_second <= 1_000_000.0)
        {
            return invalid(
                "rate_per_second",
                "must be a number between one a day and 1000000",
            );
        }
        if self.burst == 0 {
            return invalid("burst", "must be at least 1");
        }
        if self.concurrency == 0 {
            return invalid("concurrency", "must be at least 1");
        }
        if self.timeout.is_zero() {
            return invalid("timeout", "must be longer than zero");
        }
        if self.max_body_bytes == 0 {
            return invalid("max_body_bytes", "must be at least 1");
        }
        if self.max_attempts == 0 {
            return invalid("max_attempts", "must be at least 1");
        }
        if self.backoff_base > self.backoff_max {
            return invalid("backoff_base", "must not be longer than backoff_max");
        }
        if self.user_agent.is_empty()
            || reqwest::header::HeaderValue::from_str(&self.user_agent).is_err()
        {
            return invalid(
                "user_agent",
                "must be a non-empty, visible ASCII header value",
            );
        }
        if let (Source::Replay(dir), Some(_)) = (&self.source, &self.record_dir) {
            return Err(ConfigError::RecordWhileReplaying { dir: dir.clone() });
        }
        Ok(())
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            source: Source::default(),
            record_dir: None,
            rate_per_second: 2.0,
            burst: 5,
            concurrency: 4,
            timeout: Duration::from_secs(10),
            max_body_bytes: 8 * 1024 * 1024,
            max_attempts: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            not_found_retry: Duration::from_secs(600),
            user_agent: USER_AGENT.to_owned(),
        }
    }
}

/// A setting the client cannot work with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The OverFast URL does not parse.
    #[error("overfast url {url:?} is not a valid url: {source}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        source: url::ParseError,
    },
    /// Neither http, https nor file.
    #[error("overfast url {url:?} has scheme {scheme:?}; expected http, https or file")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// A base URL with `?query` or `#fragment`.
    #[error("overfast url {url:?} must not have a query or a fragment")]
    UrlHasQuery {
        /// The URL as given.
        url: String,
    },
    /// A `file:` URL that is not a local absolute path.
    #[error("file url {url:?} is not a local directory path")]
    FileUrl {
        /// The URL as given.
        url: String,
    },
    /// The replay directory cannot be used.
    #[error("replay directory {path} cannot be read: {source}")]
    ReplayDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The record directory cannot be created.
    #[error("record directory {path} cannot be created: {source}")]
    RecordDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Recording while replaying would copy files onto themselves.
    #[error("cannot record while replaying from {dir}")]
    RecordWhileReplaying {
        /// The replay directory.
        dir: PathBuf,
    },
    /// A numeric or text setting out of range.
    #[error("invalid client setting {setting}: {reason}")]
    Invalid {
        /// The [`ClientConfig`] field.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("http client cannot be built: {reason}")]
    HttpClient {
        /// What went wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let live = Source::parse("https://overfast-api.tekrop.fr/").unwrap();
        assert_eq!(live.url_text(), "https://overfast-api.tekrop.fr");
        let replay = Source::parse("file:///srv/overfast").unwrap();
        assert_eq!(replay, Source::Replay(PathBuf::from("/srv/overfast")));
        assert_eq!(replay.url_text(), "file:///srv/overfast");
        assert!(matches!(
            Source::parse("ftp://x"),
            Err(ConfigError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            Source::parse("not a url"),
            Err(ConfigError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Source::parse("http://x/?a=1"),
            Err(ConfigError::UrlHasQuery { .. })
        ));
        assert!(matches!(
            Source::parse("file://host/dir"),
            Err(ConfigError::FileUrl { .. })
        ));
        assert_eq!(Source::default().url_text(), DEFAULT_URL);
        let relative = Source::replay("samples/overfast").url_text();
        assert!(relative.starts_with("file:///"), "{relative}");
        assert!(relative.ends_with("/samples/overfast"), "{relative}");
    }

    #[test]
    fn validation() {
        assert!(ClientConfig::default().validate().is_ok());
        let c = ClientConfig {
            rate_per_second: 0.0,
            ..ClientConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                setting: "rate_per_second",
                ..
            })
        ));
        let c = ClientConfig {
            max_attempts: 0,
            ..ClientConfig::default()
        };
        assert!(c.validate().is_err());
        let mut c = ClientConfig::new(Source::replay("/tmp/x"));
        c.record_dir = Some("/tmp/y".into());
        assert!(matches!(
            c.validate(),
            Err(ConfigError::RecordWhileReplaying { .. })
        ));
        assert!(USER_AGENT.starts_with("ow-stream/0.1.0 (+https://"));
    }

    #[test]
    fn live_sources_built_by_hand_are_checked() {
        let live = |url: &str| ClientConfig::new(Source::Live(Url::parse(url).unwrap()));
        assert!(live("http://127.0.0.1:8000/api/").validate().is_ok());
        // No path to add `players/{id}` to: used to panic in the client.
        for url in [
            "mailto:someone@example.com",
            "data:text/plain,hi",
            "ftp://example.com/",
        ] {
            assert!(
                matches!(
                    live(url).validate(),
                    Err(ConfigError::UnsupportedScheme { ref scheme, .. })
                        if url.starts_with(scheme.as_str())
                ),
                "{url}"
            );
        }
        let file = live("file:///srv/overfast");
        assert!(matches!(
            file.validate(),
            Err(ConfigError::UnsupportedScheme { .. })
        ));
        let err = live("https://example.com/?key=1").validate().unwrap_err();
        assert!(matches!(err, ConfigError::UrlHasQuery { .. }));
        assert_eq!(
            live("mailto:someone@example.com")
                .validate()
                .unwrap_err()
                .to_string(),
            "overfast url \"mailto:someone@example.com\" has scheme \"mailto\"; expected http, https or file"
        );
    }
}

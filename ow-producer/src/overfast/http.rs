//! One live attempt: `GET` over HTTP(S) with a whole-answer timeout and a streamed, bounded body.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use reqwest::header::RETRY_AFTER;
use url::Url;

use super::cache::CacheInfo;
use super::classify::{Answer, parse_retry_after};
use super::config::{ClientConfig, ConfigError};
use super::fetch::FetchError;

/// The status line and headers of an answer, kept when its body then fails.
struct Head {
    status: u16,
    cache: CacheInfo,
    retry_after: Option<Duration>,
}

#[derive(Debug)]
pub(crate) struct HttpSource {
    client: reqwest::Client,
    timeout: Duration,
    max_body_bytes: usize,
}

impl HttpSource {
    pub(crate) fn new(config: &ClientConfig) -> Result<HttpSource, ConfigError> {
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(config.concurrency)
            .build()
            .map_err(|e| ConfigError::HttpClient {
                reason: error_chain(&e),
            })?;
        Ok(HttpSource {
            client,
            timeout: config.timeout,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// One `GET`; never fails, the failure is in the answer.
    pub(crate) async fn get(&self, url: &Url) -> Answer {
        let mut head = None;
        let body = match tokio::time::timeout(self.timeout, self.exchange(url, &mut head)).await {
            Ok(body) => body,
            Err(_) => Err(FetchError::Timeout {
                after: self.timeout,
            }),
        };
        match head {
            Some(Head {
                status,
                cache,
                retry_after,
            }) => Answer {
                status: Some(status),
                cache,
                retry_after,
                body,
            },
            None => Answer {
                status: None,
                cache: CacheInfo::default(),
                retry_after: None,
                body,
            },
        }
    }

    async fn exchange(&self, url: &Url, head: &mut Option<Head>) -> Result<Vec<u8>, FetchError> {
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FetchError::Connection {
                reason: error_chain(&e),
            })?;
        let headers = response.headers();
        *head = Some(Head {
            status: response.status().as_u16(),
            cache: CacheInfo::from_headers(headers),
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        });
        let limit = self.max_body_bytes;
        let too_large = FetchError::BodyTooLarge { limit };
        let announced = response.content_length();
        if announced.is_some_and(|len| len > limit as u64) {
            return Err(too_large);
        }
        let capacity = announced.map_or(0, |len| len as usize);
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::BodyInterrupted {
                reason: error_chain(&e),
            })?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// An error and its causes, `a: b: c` (reqwest's own text rarely says what happened).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

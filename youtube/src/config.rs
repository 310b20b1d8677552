//! Where the client talks to and how patient it is.

use std::time::Duration;

/// The granularity of resumable uploads: every chunk but the last must be a multiple of it.
pub const UPLOAD_GRANULARITY: usize = 256 * 1024;

/// Endpoints and credentials of the Google OAuth client and the YouTube Data API.
///
/// `Default` points at Google; tests point every URL at a [`crate::fake::FakeYouTube`].
#[derive(Debug, Clone)]
pub struct YouTubeConfig {
    /// Base of the Data API (`{api_base}/youtube/v3/...`), e.g. `https://www.googleapis.com`.
    pub api_base: String,
    /// Base of the upload endpoints (`{upload_base}/upload/youtube/v3/...`).
    pub upload_base: String,
    /// Google's authorization endpoint (the consent screen the browser is sent to).
    pub oauth_auth_url: String,
    /// Google's token endpoint (code exchange and refresh).
    pub oauth_token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Bytes per upload request; a multiple of 256 KiB (checked by [`YouTubeConfig::validate`]).
    pub chunk_size: usize,
    /// Retries done inside one call before giving the failure back to the caller.
    pub retry: RetryPolicy,
    /// Limit for one HTTP request (a whole chunk has to fit in it).
    pub request_timeout: Duration,
}

impl Default for YouTubeConfig {
    fn default() -> Self {
        Self {
            api_base: "https://www.googleapis.com".into(),
            upload_base: "https://www.googleapis.com".into(),
            oauth_auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            oauth_token_url: "https://oauth2.googleapis.com/token".into(),
            client_id: String::new(),
            client_secret: String::new(),
            chunk_size: 8 * 1024 * 1024,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(600),
        }
    }
}

impl YouTubeConfig {
    /// Checks what would otherwise fail in the middle of an upload.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_size == 0 || !self.chunk_size.is_multiple_of(UPLOAD_GRANULARITY) {
            return Err(format!(
                "chunk_size {} is not a positive multiple of 256 KiB ({UPLOAD_GRANULARITY} bytes)",
                self.chunk_size
            ));
        }
        for (name, value) in [
            ("api_base", &self.api_base),
            ("upload_base", &self.upload_base),
            ("oauth_auth_url", &self.oauth_auth_url),
            ("oauth_token_url", &self.oauth_token_url),
        ] {
            url::Url::parse(value).map_err(|e| format!("{name} {value:?} is not a URL: {e}"))?;
        }
        if self.retry.max_attempts == 0 {
            return Err("retry.max_attempts must be at least 1".into());
        }
        Ok(())
    }
}

/// How transient failures (5xx, 429, rate limits, dropped connections) are retried inside a call.
///
/// Waits up to `max_inline_wait` happen in the call; a server asking for longer, or running out of
/// attempts, ends the call with [`crate::YouTubeError::RetryAfter`] so that the caller can wait
/// durably (a workflow timer) instead of holding a worker.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Consecutive failed attempts without progress before giving up.
    pub max_attempts: u32,
    /// First backoff; doubled per attempt, with full jitter, when the server gives no `Retry-After`.
    pub base_delay: Duration,
    /// The longest wait done inside a call.
    pub max_inline_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_inline_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter for attempt `attempt` (0-based), capped at `max_inline_wait`.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_inline_wait);
        // Full jitter keeps many workers from retrying in lockstep; at least half the ceiling so a
        // retry never comes back immediately.
        let factor = 0.5 + rand::random::<f64>() * 0.5;
        ceiling.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_must_be_a_positive_multiple_of_256_kib() {
        let mut cfg = YouTubeConfig::default();
        assert_eq!(cfg.chunk_size, 8 * 1024 * 1024);
        assert!(cfg.validate().is_ok());
        for bad in [0, 300 * 1024, UPLOAD_GRANULARITY + 1] {
            cfg.chunk_size = bad;
            let message = cfg.validate().unwrap_err();
            assert!(message.contains("256 KiB"), "{message}");
        }
        cfg.chunk_size = 3 * UPLOAD_GRANULARITY;
        assert!(cfg.validate().is_ok());
        cfg.upload_base = "not a url".into();
        assert!(cfg.validate().unwrap_err().contains("upload_base"));
    }

    #[test]
    fn backoff_grows_and_stays_within_the_inline_limit() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_inline_wait: Duration::from_secs(1),
        };
        for attempt in 0..10 {
            let ceiling = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(1));
            let wait = policy.backoff(attempt);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "attempt {attempt}: {wait:?}"
            );
        }
    }
}

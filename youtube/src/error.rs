//! One error type with the retry semantics callers act on, and the classification of Google's
//! replies into it.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::America::Los_Angeles;
use serde::Deserialize;

use crate::metadata::InvalidMetadata;

/// Everything a YouTube call can end with, grouped by what the caller should do next.
#[derive(Debug, thiserror::Error)]
pub enum YouTubeError {
    /// The refresh token is dead (`invalid_grant`: revoked, expired, or a "Testing" app's 7-day
    /// limit). Never retried: the user has to connect YouTube again.
    #[error("YouTube authorization is no longer valid ({0}); reconnect YouTube")]
    Reauthorize(String),
    /// Still 401 after one forced token refresh.
    #[error("YouTube rejected the access token even after a refresh: {0}")]
    Unauthorized(String),
    /// A transient failure that outlasted the waits done inside the call; try again after this
    /// long (a durable timer, not a sleeping worker).
    #[error("YouTube is temporarily unavailable ({message}); retry after {after:?}")]
    RetryAfter { after: Duration, message: String },
    /// The resumable session is gone (404/410). Start a new session with
    /// [`crate::YouTubeClient::begin_upload`] and upload from byte 0.
    #[error("the upload session no longer exists (HTTP {status}); start a new session")]
    SessionGone { status: u16 },
    /// The project's daily quota is used up; it resets at midnight Pacific time.
    #[error("YouTube API quota exceeded; it resets at {resume_at}")]
    QuotaExceeded { resume_at: DateTime<Utc> },
    /// The channel's own 24-hour upload limit was reached.
    #[error("the channel's YouTube upload limit was reached; retry after {resume_at}")]
    UploadLimitExceeded { resume_at: DateTime<Utc> },
    /// The custom thumbnail was refused with 403 (the channel may not use custom thumbnails).
    /// Callers treat this as a warning, not a failed publish.
    #[error("YouTube refused the thumbnail: {0}")]
    ThumbnailForbidden(String),
    /// The video metadata broke YouTube's rules; nothing was sent.
    #[error(transparent)]
    InvalidMetadata(#[from] InvalidMetadata),
    /// YouTube refused the request for good (400 invalid metadata, 403 forbidden, 404 unknown
    /// video, ...). Retrying the same request cannot succeed.
    #[error("YouTube rejected the request (HTTP {status}{}): {message}", reason.as_deref().map(|r| format!(", {r}")).unwrap_or_default())]
    Rejected {
        status: u16,
        reason: Option<String>,
        message: String,
    },
    /// The file to upload cannot be read, or no longer matches the session it was started for.
    #[error("upload file: {0}")]
    File(String),
    /// A reply that does not follow the protocol (no `Location`, unparsable JSON, ...).
    #[error("unexpected reply from YouTube: {0}")]
    Protocol(String),
    /// Bad configuration or arguments on our side.
    #[error("invalid YouTube client configuration: {0}")]
    Config(String),
}

impl YouTubeError {
    /// When the same operation may be tried again: `None` for failures that need a human or a
    /// different request (reauthorization, rejected metadata, a gone session, which needs a new
    /// session rather than a retry).
    pub fn retry_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            YouTubeError::RetryAfter { after, .. } => {
                Some(now + chrono::Duration::from_std(*after).unwrap_or(chrono::TimeDelta::MAX))
            }
            YouTubeError::QuotaExceeded { resume_at }
            | YouTubeError::UploadLimitExceeded { resume_at } => Some(*resume_at),
            _ => None,
        }
    }
}

/// The next midnight in America/Los_Angeles strictly after `now`, when YouTube's daily quota resets.
///
/// Midnight always exists in that zone (the DST switches happen at 02:00), so the local date plus
/// one day at 00:00 maps to exactly one instant; its UTC offset is the one in force on that date
/// (08:00 UTC in winter, 07:00 UTC in summer).
pub fn next_pacific_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let local_date = now.with_timezone(&Los_Angeles).date_naive();
    let next = local_date
        .succ_opt()
        .expect("dates far from the end of time")
        .and_time(NaiveTime::MIN);
    Los_Angeles
        .from_local_datetime(&next)
        .earliest()
        .expect("midnight exists in America/Los_Angeles")
        .with_timezone(&Utc)
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in the past
/// means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Google's error body: `{"error":{"code":403,"message":"…","errors":[{"reason":"…","domain":"…"}]}}`.
#[derive(Debug, Deserialize)]
struct GoogleErrorBody {
    error: GoogleError,
}

#[derive(Debug, Deserialize)]
struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<GoogleErrorItem>,
}

#[derive(Debug, Deserialize)]
struct GoogleErrorItem {
    #[serde(default)]
    reason: String,
}

/// A non-success reply, classified by `errors[0].reason` first and the status second.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Retry the same request (after `retry_after` when the server said so).
    Transient {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 401: refresh the access token once and retry.
    AuthExpired(String),
    /// 404/410: what that means depends on the call (a gone upload session, an unknown video).
    NotFound {
        status: u16,
        reason: Option<String>,
        message: String,
    },
    /// Anything else: final.
    Fatal(YouTubeError),
}

impl Failure {
    pub(crate) async fn from_response(response: reqwest::Response) -> Failure {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = response.text().await.unwrap_or_default();
        Failure::classify(status, retry_after, &body, Utc::now())
    }

    pub(crate) fn classify(
        status: u16,
        retry_after: Option<Duration>,
        body: &str,
        now: DateTime<Utc>,
    ) -> Failure {
        let (reason, message) = match serde_json::from_str::<GoogleErrorBody>(body) {
            Ok(parsed) => (
                parsed.error.errors.first().map(|e| e.reason.clone()),
                parsed.error.message,
            ),
            Err(_) => (None, body.chars().take(500).collect()),
        };
        let message = if message.is_empty() {
            format!("HTTP {status}")
        } else {
            message
        };
        match (status, reason.as_deref()) {
            (_, Some("quotaExceeded" | "dailyLimitExceeded")) => {
                Failure::Fatal(YouTubeError::QuotaExceeded {
                    resume_at: next_pacific_midnight(now),
                })
            }
            (_, Some("uploadLimitExceeded")) => Failure::Fatal(YouTubeError::UploadLimitExceeded {
                resume_at: now + chrono::Duration::hours(24),
            }),
            (_, Some("rateLimitExceeded" | "userRateLimitExceeded" | "backendError")) => {
                Failure::Transient {
                    retry_after,
                    message,
                }
            }
            (429 | 500..=599, _) => Failure::Transient {
                retry_after,
                message,
            },
            (401, _) => Failure::AuthExpired(message),
            (404 | 410, _) => Failure::NotFound {
                status,
                reason,
                message,
            },
            _ => Failure::Fatal(YouTubeError::Rejected {
                status,
                reason,
                message,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn pacific_midnight_in_winter_is_08_utc() {
        // 2026-01-15 10:00 PST (UTC-8) → 2026-01-16 00:00 PST = 08:00 UTC.
        assert_eq!(
            next_pacific_midnight(utc("2026-01-15T18:00:00Z")),
            utc("2026-01-16T08:00:00Z")
        );
        // 07:59 UTC is still the previous Pacific day (23:59 PST).
        assert_eq!(
            next_pacific_midnight(utc("2026-01-16T07:59:00Z")),
            utc("2026-01-16T08:00:00Z")
        );
        // Exactly midnight: the next one, a day later.
        assert_eq!(
            next_pacific_midnight(utc("2026-01-16T08:00:00Z")),
            utc("2026-01-17T08:00:00Z")
        );
    }

    #[test]
    fn pacific_midnight_in_summer_is_07_utc() {
        // 2026-07-04 12:00 PDT (UTC-7) → 2026-07-05 00:00 PDT = 07:00 UTC.
        assert_eq!(
            next_pacific_midnight(utc("2026-07-04T19:00:00Z")),
            utc("2026-07-05T07:00:00Z")
        );
        // 2026-07-05 06:30 UTC is 23:30 PDT on the 4th.
        assert_eq!(
            next_pacific_midnight(utc("2026-07-05T06:30:00Z")),
            utc("2026-07-05T07:00:00Z")
        );
    }

    #[test]
    fn pacific_midnight_across_the_dst_switches() {
        // DST starts Sunday 2026-03-08 at 02:00 PST. On the evening of the 7th (PST) the next
        // midnight is 00:00 PST on the 8th = 08:00 UTC, and the one after is 00:00 PDT on the 9th
        // = 07:00 UTC: that day is 23 hours long.
        let before = next_pacific_midnight(utc("2026-03-08T05:00:00Z"));
        assert_eq!(before, utc("2026-03-08T08:00:00Z"));
        let after = next_pacific_midnight(before);
        assert_eq!(after, utc("2026-03-09T07:00:00Z"));
        assert_eq!(after - before, chrono::Duration::hours(23));
        // DST ends Sunday 2026-11-01 at 02:00 PDT: midnight of the 1st is still PDT (07:00 UTC),
        // the 2nd is PST (08:00 UTC): that day is 25 hours long.
        let before = next_pacific_midnight(utc("2026-10-31T20:00:00Z"));
        assert_eq!(before, utc("2026-11-01T07:00:00Z"));
        let after = next_pacific_midnight(before);
        assert_eq!(after, utc("2026-11-02T08:00:00Z"));
        assert_eq!(after - before, chrono::Duration::hours(25));
        // In the hour that exists twice (01:00–02:00 on 2026-11-01), the next midnight is the 2nd.
        assert_eq!(
            next_pacific_midnight(utc("2026-11-01T09:30:00Z")),
            utc("2026-11-02T08:00:00Z")
        );
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = now + Duration::from_secs(90);
        let header = httpdate::fmt_http_date(later);
        assert_eq!(
            parse_retry_after(&header, now),
            Some(Duration::from_secs(90))
        );
        // A date in the past means no wait; garbage means no header.
        assert_eq!(
            parse_retry_after(&httpdate::fmt_http_date(now - Duration::from_secs(5)), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn classification_goes_by_reason_first() {
        let now = utc("2026-01-15T18:00:00Z");
        let body = |code: u16, reason: &str| {
            format!(
                r#"{{"error":{{"code":{code},"message":"m","errors":[{{"reason":"{reason}","domain":"youtube.quota","message":"m"}}]}}}}"#
            )
        };
        assert!(matches!(
            Failure::classify(403, None, &body(403, "quotaExceeded"), now),
            Failure::Fatal(YouTubeError::QuotaExceeded { resume_at }) if resume_at == utc("2026-01-16T08:00:00Z")
        ));
        assert!(matches!(
            Failure::classify(400, None, &body(400, "uploadLimitExceeded"), now),
            Failure::Fatal(YouTubeError::UploadLimitExceeded { resume_at }) if resume_at == now + chrono::Duration::hours(24)
        ));
        assert!(matches!(
            Failure::classify(403, None, &body(403, "rateLimitExceeded"), now),
            Failure::Transient { .. }
        ));
        assert!(matches!(
            Failure::classify(403, None, &body(403, "forbidden"), now),
            Failure::Fatal(YouTubeError::Rejected { status: 403, .. })
        ));
        assert!(matches!(
            Failure::classify(503, Some(Duration::from_secs(3)), "<html>busy</html>", now),
            Failure::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            Failure::classify(401, None, &body(401, "authError"), now),
            Failure::AuthExpired(_)
        ));
        assert!(matches!(
            Failure::classify(410, None, "", now),
            Failure::NotFound { status: 410, .. }
        ));
    }
}

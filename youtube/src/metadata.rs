//! The fields of a video we set on upload, and YouTube's rules for them, checked before any request.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Title limit in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// Description limit in UTF-8 bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 5000;
/// Limit of the tags' combined length, counted as [`tags_length`] does.
pub const MAX_TAGS_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    Private,
    Unlisted,
    Public,
}

impl Privacy {
    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::Private => "private",
            Privacy::Unlisted => "unlisted",
            Privacy::Public => "public",
        }
    }
}

/// What an upload sets on the video (`snippet` and `status` of the `video` resource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoMetadata {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// YouTube category id, a number as text (`"20"` Gaming, `"22"` People & Blogs).
    pub category_id: String,
    pub privacy: Privacy,
    /// Scheduled publication: the video stays private until then. Only with `Privacy::Private`.
    pub publish_at: Option<DateTime<Utc>>,
    /// `status.selfDeclaredMadeForKids`, always sent so that Studio does not ask.
    pub made_for_kids: bool,
    /// The `notifySubscribers` query parameter of the insert.
    pub notify_subscribers: bool,
    /// BCP-47 language of title/description and audio (`snippet.defaultLanguage`,
    /// `snippet.defaultAudioLanguage`).
    pub default_language: Option<String>,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataIssue {
    #[error("the title is empty")]
    TitleEmpty,
    #[error("the title has {chars} characters; YouTube allows at most {MAX_TITLE_CHARS}")]
    TitleTooLong { chars: usize },
    #[error("the title contains '<' or '>', which YouTube does not allow")]
    TitleAngleBrackets,
    #[error("the description has {bytes} bytes; YouTube allows at most {MAX_DESCRIPTION_BYTES}")]
    DescriptionTooLong { bytes: usize },
    #[error("the description contains '<' or '>', which YouTube does not allow")]
    DescriptionAngleBrackets,
    #[error("tag {index} is empty")]
    TagEmpty { index: usize },
    #[error("tag {tag:?} contains '<', '>' or ',', which YouTube does not allow")]
    TagInvalidCharacter { tag: String },
    #[error(
        "the tags count {counted} characters as YouTube counts them (quotes around tags with spaces, commas between); at most {MAX_TAGS_CHARS} are allowed"
    )]
    TagsTooLong { counted: usize },
    #[error("publish_at (a scheduled publication) requires privacy \"private\", not {privacy:?}")]
    PublishAtRequiresPrivate { privacy: Privacy },
    #[error("publish_at {at} is not in the future")]
    PublishAtInPast { at: DateTime<Utc> },
    #[error("category id {value:?} is not a number")]
    CategoryNotNumeric { value: String },
    #[error("default language {value:?} is not a language tag like \"en\" or \"en-US\"")]
    LanguageInvalid { value: String },
}

/// The metadata broke one or more of YouTube's rules; all of them are listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid video metadata: {}", .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
pub struct InvalidMetadata(pub Vec<MetadataIssue>);

/// The tags' combined length as YouTube counts it: a tag containing a space is counted with the
/// quotes it gets in the comma-separated list, and there is a comma between tags.
pub fn tags_length(tags: &[String]) -> usize {
    let quoted: usize = tags
        .iter()
        .map(|t| t.chars().count() + if t.contains(' ') { 2 } else { 0 })
        .sum();
    quoted + tags.len().saturating_sub(1)
}

impl VideoMetadata {
    /// Checks every rule against the current time.
    pub fn validate(&self) -> Result<(), InvalidMetadata> {
        self.validate_at(Utc::now())
    }

    /// Checks every rule, with `now` for the "publish_at is in the future" rule.
    pub fn validate_at(&self, now: DateTime<Utc>) -> Result<(), InvalidMetadata> {
        let mut issues = Vec::new();
        let has_angle = |s: &str| s.contains('<') || s.contains('>');

        let title_chars = self.title.chars().count();
        if self.title.trim().is_empty() {
            issues.push(MetadataIssue::TitleEmpty);
        } else if title_chars > MAX_TITLE_CHARS {
            issues.push(MetadataIssue::TitleTooLong { chars: title_chars });
        }
        if has_angle(&self.title) {
            issues.push(MetadataIssue::TitleAngleBrackets);
        }

        if self.description.len() > MAX_DESCRIPTION_BYTES {
            issues.push(MetadataIssue::DescriptionTooLong {
                bytes: self.description.len(),
            });
        }
        if has_angle(&self.description) {
            issues.push(MetadataIssue::DescriptionAngleBrackets);
        }

        for (index, tag) in self.tags.iter().enumerate() {
            if tag.trim().is_empty() {
                issues.push(MetadataIssue::TagEmpty { index });
            } else if has_angle(tag) || tag.contains(',') {
                issues.push(MetadataIssue::TagInvalidCharacter { tag: tag.clone() });
            }
        }
        let counted = tags_length(&self.tags);
        if counted > MAX_TAGS_CHARS {
            issues.push(MetadataIssue::TagsTooLong { counted });
        }

        if let Some(at) = self.publish_at {
            if self.privacy != Privacy::Private {
                issues.push(MetadataIssue::PublishAtRequiresPrivate {
                    privacy: self.privacy,
                });
            }
            if at <= now {
                issues.push(MetadataIssue::PublishAtInPast { at });
            }
        }

        if self.category_id.is_empty() || !self.category_id.bytes().all(|b| b.is_ascii_digit()) {
            issues.push(MetadataIssue::CategoryNotNumeric {
                value: self.category_id.clone(),
            });
        }

        if let Some(lang) = &self.default_language {
            let valid = !lang.is_empty()
                && lang.split('-').all(|part| {
                    (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            if !valid {
                issues.push(MetadataIssue::LanguageInvalid {
                    value: lang.clone(),
                });
            }
        }

        if issues.is_empty() {
            Ok(())
        } else {
            Err(InvalidMetadata(issues))
        }
    }

    /// The `video` resource sent to `videos.insert` (`snippet` and `status` parts).
    pub(crate) fn to_resource(&self) -> serde_json::Value {
        let mut snippet = serde_json::json!({
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "categoryId": self.category_id,
        });
        if let Some(lang) = &self.default_language {
            snippet["defaultLanguage"] = lang.clone().into();
            snippet["defaultAudioLanguage"] = lang.clone().into();
        }
        let mut status = serde_json::json!({
            "privacyStatus": self.privacy.as_str(),
            "selfDeclaredMadeForKids": self.made_for_kids,
        });
        if let Some(at) = self.publish_at {
            status["publishAt"] = at.to_rfc3339_opts(SecondsFormat::Secs, true).into();
        }
        serde_json::json!({ "snippet": snippet, "status": status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> VideoMetadata {
        VideoMetadata {
            title: "Episode 1: building a compiler".into(),
            description: "Chapters\n0:00 Intro\n1:00 Parsing\n".into(),
            tags: vec!["rust".into(), "live coding".into()],
            category_id: "20".into(),
            privacy: Privacy::Private,
            publish_at: None,
            made_for_kids: false,
            notify_subscribers: false,
            default_language: Some("en-US".into()),
        }
    }

    fn issues(m: &VideoMetadata, now: DateTime<Utc>) -> Vec<MetadataIssue> {
        m.validate_at(now).err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn tags_are_counted_as_youtube_counts_them() {
        // "rust" (4) + "," + "\"live coding\"" (13) = 18.
        assert_eq!(tags_length(&["rust".into(), "live coding".into()]), 18);
        assert_eq!(tags_length(&[]), 0);
        assert_eq!(tags_length(&["é".into()]), 1);
    }

    #[test]
    fn limits_are_inclusive_and_exact() {
        let now = Utc::now();
        let mut m = valid();
        m.title = "t".repeat(100);
        assert!(issues(&m, now).is_empty());
        m.title = "é".repeat(101);
        assert_eq!(
            issues(&m, now),
            vec![MetadataIssue::TitleTooLong { chars: 101 }]
        );

        let mut m = valid();
        m.description = "é".repeat(2500); // 5000 bytes
        assert!(issues(&m, now).is_empty());
        m.description.push('a');
        assert_eq!(
            issues(&m, now),
            vec![MetadataIssue::DescriptionTooLong { bytes: 5001 }]
        );

        // 50 tags of 9 characters: 450 + 49 commas = 499; one more character → 500 still fits;
        // a space in one tag adds two quotes → 502.
        let mut m = valid();
        m.tags = (0..50).map(|i| format!("tag{i:06}")).collect();
        assert_eq!(tags_length(&m.tags), 499);
        assert!(issues(&m, now).is_empty());
        m.tags[0].push('x');
        assert!(issues(&m, now).is_empty());
        m.tags[1] = "tag 00001".into();
        assert_eq!(
            issues(&m, now),
            vec![MetadataIssue::TagsTooLong { counted: 502 }]
        );
    }

    #[test]
    fn every_rule_is_reported() {
        let now = Utc::now();
        let m = VideoMetadata {
            title: "  ".into(),
            description: "<b>bold</b>".into(),
            tags: vec!["".into(), "a,b".into()],
            category_id: "Gaming".into(),
            privacy: Privacy::Public,
            publish_at: Some(now - chrono::Duration::minutes(1)),
            made_for_kids: false,
            notify_subscribers: true,
            default_language: Some("en_US".into()),
        };
        let found = issues(&m, now);
        assert_eq!(
            found,
            vec![
                MetadataIssue::TitleEmpty,
                MetadataIssue::DescriptionAngleBrackets,
                MetadataIssue::TagEmpty { index: 0 },
                MetadataIssue::TagInvalidCharacter { tag: "a,b".into() },
                MetadataIssue::PublishAtRequiresPrivate {
                    privacy: Privacy::Public
                },
                MetadataIssue::PublishAtInPast {
                    at: now - chrono::Duration::minutes(1)
                },
                MetadataIssue::CategoryNotNumeric {
                    value: "Gaming".into()
                },
                MetadataIssue::LanguageInvalid {
                    value: "en_US".into()
                },
            ]
        );
        let message = InvalidMetadata(found).to_string();
        assert!(message.contains("the title is empty"), "{message}");
        assert!(message.contains("requires privacy"), "{message}");
    }

    #[test]
    fn scheduled_private_video_is_valid_and_serialized() {
        let now = Utc::now();
        let mut m = valid();
        m.publish_at = Some(
            DateTime::parse_from_rfc3339("2099-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        assert!(issues(&m, now).is_empty());
        let r = m.to_resource();
        assert_eq!(r["status"]["publishAt"], "2099-01-02T03:04:05Z");
        assert_eq!(r["status"]["privacyStatus"], "private");
        assert_eq!(r["status"]["selfDeclaredMadeForKids"], false);
        assert_eq!(r["snippet"]["categoryId"], "20");
        assert_eq!(r["snippet"]["defaultAudioLanguage"], "en-US");
        assert_eq!(r["snippet"]["tags"][1], "live coding");
    }
}

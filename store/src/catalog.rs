//! The resources the generic `/records` API serves and the fields each one has.
//!
//! One table per resource; every table has `id`, `user_id`, `created_at`, `updated_at` plus the
//! fields below, under exactly these names (the front end's names, camelCase included). The
//! catalog drives validation of writes and filters, SQL generation, and the OpenAPI schemas;
//! a test checks it against the migrations.

use gt_types::records::{TaskStatus, TaskType, UploadStatus, WIDGET_TYPES};

/// `streams.archive_state` values: recordings readable, archived (reads need a restore), or
/// being restored.
pub const ARCHIVE_STATES: &[&str] = &["standard", "archived", "restoring"];

/// `episodes.review_status` values (see `gt_types::episode::ReviewStatus`).
const REVIEW_STATUSES: &[&str] = &["awaiting_review", "approved", "rejected"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    /// Text restricted to these values.
    Enum(&'static [&'static str]),
    Bool,
    Int,
    Float,
    /// RFC 3339 date-time, stored as `timestamptz`.
    Timestamp,
    /// `YYYY-MM-DD`.
    Date,
    /// JSON object (`jsonb`).
    Object,
    /// JSON array of anything (`jsonb`).
    Array,
    /// JSON array of strings (`jsonb`).
    StringArray,
}

impl FieldType {
    pub fn sql_type(self) -> &'static str {
        match self {
            FieldType::Text | FieldType::Enum(_) => "text",
            FieldType::Bool => "boolean",
            FieldType::Int => "bigint",
            FieldType::Float => "double precision",
            FieldType::Timestamp => "timestamp with time zone",
            FieldType::Date => "date",
            FieldType::Object | FieldType::Array | FieldType::StringArray => "jsonb",
        }
    }

    pub fn is_json(self) -> bool {
        matches!(
            self,
            FieldType::Object | FieldType::Array | FieldType::StringArray
        )
    }

    /// Whether `<`, `>` and friends mean something for this type.
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::Enum(_)
                | FieldType::Int
                | FieldType::Float
                | FieldType::Timestamp
                | FieldType::Date
        )
    }

    /// Human name used in error messages and the OpenAPI description.
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::Text => "a string",
            FieldType::Enum(_) => "one of the allowed strings",
            FieldType::Bool => "a boolean",
            FieldType::Int => "an integer",
            FieldType::Float => "a number",
            FieldType::Timestamp => "an RFC 3339 date-time string",
            FieldType::Date => "a YYYY-MM-DD date string",
            FieldType::Object => "a JSON object",
            FieldType::Array => "a JSON array",
            FieldType::StringArray => "an array of strings",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    /// Must be present (and not null) when a record is created.
    pub required: bool,
}

const fn f(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

/// Columns every table has. `id` is chosen by the client or generated (UUIDv7); `user_id` is
/// always the caller; the timestamps are set by the server.
pub const ID: Field = f("id", FieldType::Text);
pub const USER_ID: Field = f("user_id", FieldType::Text);
pub const CREATED_AT: Field = f("created_at", FieldType::Timestamp);
pub const UPDATED_AT: Field = f("updated_at", FieldType::Timestamp);
pub const COMMON_FIELDS: [Field; 4] = [ID, USER_ID, CREATED_AT, UPDATED_AT];

#[derive(Debug, Clone, Copy)]
pub struct Resource {
    /// Path segment under `/records/` and table name.
    pub name: &'static str,
    pub fields: &'static [Field],
    /// Fields the `q` filter searches (case-insensitive substring).
    pub search: &'static [&'static str],
    /// If set, the id of a new record is this field's value (video clips are keyed by blob key).
    pub id_field: Option<&'static str>,
    /// Fields the server owns (derived by the pipeline, or tokens): readable, but a body that
    /// names them is accepted with them ignored (edit forms send whole records back), so no
    /// client ever writes a blob key, a speech map or a review decision.
    pub server_managed: &'static [&'static str],
    /// Server-managed tokens: generated on create, and regenerated when an update names them.
    pub rotatable: &'static [&'static str],
}

impl Resource {
    pub fn field(&self, name: &str) -> Option<Field> {
        COMMON_FIELDS
            .iter()
            .chain(self.fields.iter())
            .find(|f| f.name == name)
            .copied()
    }

    /// A field a related list may be asked by (text: an id or a name); anything else is
    /// refused with the reason.
    pub fn reference_field(&self, name: &str) -> crate::StoreResult<Field> {
        let f = self.field(name).ok_or_else(|| {
            crate::StoreError::Invalid(format!("{} has no field '{name}'", self.name))
        })?;
        if !matches!(f.ty, FieldType::Text | FieldType::Enum(_)) {
            return Err(crate::StoreError::Invalid(format!(
                "'{name}' is not a reference field of {}",
                self.name
            )));
        }
        Ok(f)
    }

    /// All columns, common ones first.
    pub fn all_fields(&self) -> impl Iterator<Item = Field> + '_ {
        COMMON_FIELDS.iter().chain(self.fields.iter()).copied()
    }
}

use FieldType::*;

pub const STREAMS: Resource = Resource {
    name: "streams",
    fields: &[
        f("title", Text),
        f("description", Text),
        f("duration", Float),
        f("has_episodes", Bool),
        f("prefix", Text),
        f("series_id", Text),
        f("stream_date", Timestamp),
        f("stream_platform", Text),
        f("thumbnail_url", Text),
        f("thumbnail", Text),
        f("stream_id", Text),
        f("video_clip_count", Int),
        // Audio track (counting audio streams from 0) that carries the streamer's voice.
        f("speech_track", Int),
        // Chat's peaks (ingestion computes them from captured Twitch chat).
        f("chat_highlights", Array),
        // Where the stream's recordings are ([`ARCHIVE_STATES`], `crate::archive`): set by
        // the archive and restore activities, with the instant it last changed. Absent:
        // standard.
        f("archive_state", Enum(ARCHIVE_STATES)),
        f("archive_state_at", Timestamp),
    ],
    search: &["title", "description"],
    id_field: None,
    server_managed: &[
        "video_clip_count",
        "chat_highlights",
        "archive_state",
        "archive_state_at",
    ],
    rotatable: &[],
};

pub const SERIES: Resource = Resource {
    name: "series",
    fields: &[
        req("title", Text),
        f("description", Text),
        f("category", Int),
        f("is_active", Bool),
        f("max_episode_order_index", Int),
        f("notify_subscribers", Bool),
        f("playlist_id", Text),
        f("prep_notes", Text),
        f("skips", Array),
        f("recurrence", Object),
        f("timezone", Text),
        f("start_date", Date),
        f("start_time", Text),
        f("end_date", Date),
        f("end_time", Text),
        f("tags", StringArray),
        f("thumbnail_url", Text),
        f("stream_title_template", Text),
        f("twitch_category", Object),
        f("stream_count", Int),
        f("episode_title_template", Text),
        f("episode_description_template", Text),
    ],
    search: &["title", "description"],
    id_field: None,
    server_managed: &[],
    rotatable: &[],
};

pub const VIDEO_CLIPS: Resource = Resource {
    name: "video_clips",
    fields: &[
        req("key", Text),
        f("stream_id", Text),
        f("start_time", Float),
        f("audio", Text),
        f("keyframes", StringArray),
        f("silence", Array),
        f("metadata", Object),
        f("transcription", Object),
        f("summary", Object),
        f("transcode", Array),
        f("ingestion_version", Text),
        f("error", Text),
        f("speech", Object),
        f("preview", Object),
    ],
    search: &["key"],
    id_field: Some("key"),
    server_managed: &[
        "start_time",
        "audio",
        "keyframes",
        "silence",
        "metadata",
        "transcription",
        "summary",
        "transcode",
        "ingestion_version",
        "error",
        "speech",
        "preview",
    ],
    rotatable: &[],
};

pub const EPISODES: Resource = Resource {
    name: "episodes",
    fields: &[
        f("title", Text),
        f("description", Text),
        f("order_index", Int),
        f("is_published", Bool),
        f("tracks", Array),
        f("stream_id", Text),
        f("series_id", Text),
        f("cut_list", Object),
        f("youtube_video_id", Text),
        f("youtube_upload_url", Text),
        f("upload_attempts", Int),
        f("upload_status", Enum(UploadStatus::ALL)),
        f("error_message", Text),
        f("retry_after_seconds", Int),
        f("upload_resume_at_byte", Int),
        f("render_uri", Text),
        f("tags", StringArray),
        f("category", Int),
        f("notify_subscribers", Bool),
        f("upload_queue_timestamp", Timestamp),
        f("playlist_id", Text),
        f("review_status", Enum(REVIEW_STATUSES)),
        f("chapters", Array),
        f("start_time", Float),
        f("end_time", Float),
        f("publish", Object),
        f("publish_at", Timestamp),
    ],
    search: &["title", "description"],
    id_field: None,
    server_managed: &[
        "youtube_video_id",
        "publish",
        "youtube_upload_url",
        "upload_attempts",
        "upload_status",
        "error_message",
        "retry_after_seconds",
        "upload_resume_at_byte",
        "render_uri",
        "review_status",
    ],
    rotatable: &[],
};

pub const PROJECTS: Resource = Resource {
    name: "projects",
    fields: &[
        f("title", Text),
        f("description", Text),
        f("status", Text),
        f("episode_id", Text),
        f("cuts", Array),
        f("cut_list", Object),
        f("video_clip_ids", StringArray),
    ],
    search: &["title", "description"],
    id_field: None,
    server_managed: &[],
    rotatable: &[],
};

pub const PROFILES: Resource = Resource {
    name: "profiles",
    fields: &[
        f("timezone", Text),
        f("standardTags", StringArray),
        f("promptTemplate", Text),
        f("summaryTemplate", Text),
        f("twitchChatEnabled", Bool),
        f("speechTrack", Int),
        f("youtubeCaptions", Bool),
        f("youtubePrivacy", Enum(&["private", "unlisted", "public"])),
        f("renderProfile", Object),
    ],
    search: &[],
    id_field: None,
    server_managed: &[],
    rotatable: &[],
};

pub const TASKS: Resource = Resource {
    name: "tasks",
    fields: &[
        req("status", Enum(TaskStatus::ALL)),
        req("task_type", Enum(TaskType::ALL)),
        f("record_id", Text),
        f("workflow_id", Text),
        f("message", Text),
        f("progress", Float),
    ],
    search: &["record_id", "message"],
    id_field: None,
    server_managed: &[],
    rotatable: &[],
};

pub const CHAT_MESSAGES: Resource = Resource {
    name: "chat_messages",
    fields: &[
        f("channel_id", Text),
        f("sender_id", Text),
        f("message", Text),
        f("user_name", Text),
        f("user_login", Text),
        f("event_type", Text),
        f("timestamp", Timestamp),
        f("ttl", Int),
        // From EventSub (`channel.chat.message`): badges and fragments (text, emotes, mentions)
        // as Twitch sends them; `deleted` once a moderator removed the message.
        f("badges", Array),
        f("fragments", Array),
        f("color", Text),
        f("reply", Object),
        f("message_type", Text),
        f("emote_count", Int),
        f("deleted", Bool),
    ],
    search: &["message", "user_name"],
    id_field: None,
    server_managed: &[],
    rotatable: &[],
};

pub const STREAM_WIDGETS: Resource = Resource {
    name: "stream_widgets",
    fields: &[
        req("title", Text),
        req("type", Enum(WIDGET_TYPES)),
        f("active", Bool),
        f("config", Object),
        f("state", Object),
        f("access_token", Text),
        f("showOnDashboard", Bool),
    ],
    search: &["title"],
    id_field: None,
    server_managed: &["access_token"],
    rotatable: &["access_token"],
};

pub const RESOURCES: &[Resource] = &[
    STREAMS,
    SERIES,
    VIDEO_CLIPS,
    EPISODES,
    PROJECTS,
    PROFILES,
    TASKS,
    CHAT_MESSAGES,
    STREAM_WIDGETS,
];

pub fn resource(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_are_unique_and_fields_do_not_shadow_common_ones() {
        let mut names: Vec<_> = RESOURCES.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RESOURCES.len());
        for r in RESOURCES {
            for field in r.fields {
                assert!(
                    !COMMON_FIELDS.iter().any(|c| c.name == field.name),
                    "{}.{} shadows a common column",
                    r.name,
                    field.name
                );
            }
            for s in r.search {
                assert_eq!(r.field(s).map(|f| f.ty), Some(Text), "{}.{}", r.name, s);
            }
        }
    }

    #[test]
    fn lookup() {
        assert_eq!(resource("streams").unwrap().name, "streams");
        assert!(resource("nope").is_none());
        assert_eq!(
            resource("profiles")
                .unwrap()
                .field("standardTags")
                .unwrap()
                .ty,
            StringArray
        );
        assert_eq!(STREAMS.field("id"), Some(ID));
    }
}

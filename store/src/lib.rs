//! The system of record and the blob store, behind traits so other backends (DynamoDB, S3) can
//! sit beside the embedded defaults (Postgres, a local directory).
//!
//! - [`catalog`]: the `/records` resources and their fields.
//! - [`filter`], [`write`], [`value`]: validation of list filters and writes against the catalog.
//! - [`RecordStore`]: generic, user-scoped CRUD; [`pg::PgStore`] implements it.
//! - [`pipeline::PipelineStore`]: the typed, idempotent operations activities need.
//! - [`blob`]: recordings and artifacts.

pub mod archive;
pub mod blob;
pub mod catalog;
pub mod chat;
pub mod error;
pub mod filter;
pub mod insight;
pub mod pg;
pub mod pipeline;
pub mod publish;
pub mod value;
pub mod widgets;
pub mod write;

use async_trait::async_trait;
use base64::Engine;
use rand::RngCore;
use serde_json::Value;

pub use blob::{BlobStore, LocalDirStore};
pub use catalog::Resource;
pub use chat::{
    CaptureTransport, ChatLine, ChatStore, IncomingEvent, NewChatMessage, PendingEvent,
    StoredMessageType, TwitchChannel,
};
pub use error::{StoreError, StoreResult};
pub use insight::InsightStore;
pub use pg::PgStore;
pub use pipeline::PipelineStore;
pub use publish::{EpisodePatch, OAuthConnection, Provider, PublishStore};
pub use widgets::{AppliedInput, Widget, WidgetStore};

/// Parameters of a list request, as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// JSON object string (see [`filter`]).
    pub filter: Option<String>,
    /// Opaque cursor from the previous page; `None`, empty or the literal `null` for page 1.
    pub cursor: Option<String>,
    pub per_page: Option<i64>,
}

/// A [`ListQuery`] checked against its resource: what every record store lists by.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedListQuery {
    pub clauses: Vec<filter::Clause>,
    /// 1 ..= [`pg::MAX_PER_PAGE`] (default 10).
    pub per_page: i64,
    /// The id the page starts after (decoded from the cursor).
    pub after: Option<String>,
}

impl ListQuery {
    /// Parses the filter, bounds the page size and decodes the cursor; a bad one is `Invalid`.
    pub fn check(&self, resource: &Resource) -> StoreResult<CheckedListQuery> {
        let clauses = filter::parse_filter(resource, self.filter.as_deref().unwrap_or(""))?;
        let per_page = self.per_page.unwrap_or(10);
        if !(1..=pg::MAX_PER_PAGE).contains(&per_page) {
            return Err(StoreError::Invalid(format!(
                "perPage must be between 1 and {}",
                pg::MAX_PER_PAGE
            )));
        }
        let after = match self.cursor.as_deref() {
            None | Some("") | Some("null") => None,
            Some(c) => Some(RecordPage::decode_cursor(c)?),
        };
        Ok(CheckedListQuery {
            clauses,
            per_page,
            after,
        })
    }
}

/// One page of records; `cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    pub items: Vec<Value>,
    pub cursor: Option<String>,
}

impl RecordPage {
    /// A page from up to `per_page + 1` records read in id order: the extra one only says that
    /// another page follows, whose cursor is the last kept record's id.
    pub fn from_overfetched(mut items: Vec<Value>, per_page: usize) -> Self {
        let cursor = if items.len() > per_page {
            items.truncate(per_page);
            items
                .last()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str)
                .map(|id| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes()))
        } else {
            None
        };
        Self { items, cursor }
    }

    /// The record id a cursor continues after.
    pub fn decode_cursor(cursor: &str) -> StoreResult<String> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|id| !id.is_empty() && !id.contains('\0'))
            .ok_or_else(|| StoreError::Invalid("invalid cursor".into()))
    }
}

/// User-scoped generic CRUD over the catalog's resources. Every method only ever sees the
/// caller's rows: another user's record is "not found".
#[async_trait]
pub trait RecordStore: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
    async fn list(
        &self,
        user_id: &str,
        resource: &Resource,
        query: &ListQuery,
    ) -> StoreResult<RecordPage>;
    /// All records whose `field` equals `value` (no paging: the front end needs them all).
    async fn related(
        &self,
        user_id: &str,
        resource: &Resource,
        field: &str,
        value: &str,
    ) -> StoreResult<Vec<Value>>;
    async fn get(&self, user_id: &str, resource: &Resource, id: &str) -> StoreResult<Value>;
    /// Creates all records or none.
    async fn create(
        &self,
        user_id: &str,
        resource: &Resource,
        bodies: &[Value],
    ) -> StoreResult<Vec<Value>>;
    /// Merges `patch` into the record (PUT semantics of the original API).
    async fn update(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        patch: &Value,
    ) -> StoreResult<Value>;
    /// Merges `patch` into the record, creating it if absent.
    async fn upsert(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        patch: &Value,
    ) -> StoreResult<Value>;
    async fn delete(&self, user_id: &str, resource: &Resource, id: &str) -> StoreResult<()>;
}

/// Everything the API and the workers need from the system of record: generic records, the
/// pipeline's typed operations and what is derived from transcripts.
pub trait Store:
    RecordStore + PipelineStore + InsightStore + PublishStore + ChatStore + WidgetStore
{
}

impl<T: RecordStore + PipelineStore + InsightStore + PublishStore + ChatStore + WidgetStore> Store
    for T
{
}

/// A user id as one blob-key segment: derived files live under `{user}/...` so a user can only
/// ever be given their own (the same segment as in workflow ids; injective, see
/// [`gt_types::owner_segment`]).
pub fn user_segment(user_id: &str) -> String {
    gt_types::owner_segment(user_id)
}

/// The recordings-store key of `key` (relative to the user's recordings root): every user's
/// recordings live under their own `{owner}/` folder, so a stream's prefix or a clip key names
/// only files of its owner. Keys that could escape (`..`, absolute, NUL) are refused.
pub fn recording_key(user_id: &str, key: &str) -> StoreResult<String> {
    blob::check_key(key)?;
    Ok(format!("{}/{key}", user_segment(user_id)))
}

/// A new record id: UUIDv7, so ids sort by creation time and pages are stable.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A widget access token: 256 random bits, URL-safe.
pub fn widget_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

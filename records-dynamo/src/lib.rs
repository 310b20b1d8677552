//! DynamoDB implementation of [`gt_store::RecordStore`]: the `/records` resources in one table.
//!
//! # Table design
//!
//! One table for all nine resources (single-table design), on-demand capacity:
//!
//! | attribute | value | why |
//! |---|---|---|
//! | `PK` (partition key) | `USER#{owner}#{resource}` | every query is one user's one resource; `{owner}` is [`gt_store::user_segment`] (injective, never contains `#`), so two users can never share a partition |
//! | `SK` (sort key) | the record id | ids are unique per user and resource (a duplicate is a conditional-write conflict); queries return ids in byte order, the order Postgres uses (`--no-locale`, collation C), so cursors and pages are the same on both backends |
//! | `REF_{field}` | `USER#{owner}#{resource}#{value}` | key of the sparse index `by_{field}` (sort key `SK`, all attributes projected) for the reference fields in [`INDEXED_REFERENCES`]: related lists read only the matching records |
//! | every record field | its value | the front end's field names, unchanged; nested JSON as native maps and lists |
//!
//! The original system used one table per resource keyed by id alone, with a `user_id` GSI and
//! list requests answered by `Scan` + filter; here the user is part of every key, so a request
//! can only ever read the caller's items and never scans the table.
//!
//! # The `/records` contract
//!
//! - **List**: `Query` on the partition in `SK` order, strongly consistent. The cursor is the
//!   last id of the page (the same cursor `PgStore` hands out), resumed with
//!   `ExclusiveStartKey`. A filter with an equality on an indexed reference field reads that
//!   field's index instead (same order, eventually consistent on AWS). Other filters are
//!   evaluated on the items read ([`matcher`]): DynamoDB has no case-insensitive search or JSON
//!   containment, and a `FilterExpression` would read and bill the same items. A selective
//!   filter on another field over a large partition therefore reads the partition; the
//!   production answer for hot filters is another sparse index, as for references.
//! - **Related lists**: `Query` on `by_{field}` for indexed reference fields, else the partition
//!   with the equality evaluated here. Index reads are eventually consistent on AWS (a record
//!   created a moment ago may be missing for a moment); DynamoDB Local is immediate.
//! - **Writes**: validated by `gt_store::write` (shared with Postgres) before anything is sent.
//!   Create is `PutItem` with `attribute_not_exists(PK)` (a duplicate id is
//!   [`StoreError::Conflict`]); a bulk create is one `TransactWriteItems` — all or nothing — so
//!   at most [`MAX_BULK`] (100, DynamoDB's transaction limit) records per request, where
//!   Postgres takes 1000. Update is `UpdateItem` with `attribute_exists(PK)` (absent, or another
//!   user's: [`StoreError::NotFound`]); upsert the same without the condition; delete is
//!   conditional too.
//! - **Limits that Postgres does not have**: an item is at most 400 KB (a client's record over
//!   that is refused as an invalid write; the pipeline's large documents — a long clip's
//!   transcription or speech map — are kept in Postgres by [`split::DynamoPgStore`], the item
//!   holding a marker), numbers at most 38 significant digits and ±1E+126.
//!
//! [`split::DynamoPgStore`] is the whole system of record of a DynamoDB deployment: these
//! records, the pipeline's typed writes and tasks here, search, chat and widgets in Postgres.

pub mod attr;
pub mod backend;
#[cfg(feature = "local-server")]
pub mod local;
pub mod matcher;
pub mod split;

pub use backend::RecordBackend;
pub use split::DynamoPgStore;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType, TransactWriteItem,
};
use chrono::Utc;
use gt_store::catalog::Resource;
use gt_store::pg::MAX_RELATED;
use gt_store::write::{Write, WriteKind, check_id, validate_write};
use gt_store::{
    ListQuery, RecordPage, RecordStore, StoreError, StoreResult, new_id, user_segment, widget_token,
};
use serde_json::{Map, Value};

use crate::attr::{backend, field_from_attr, timestamp_text, typed_to_attr};

/// Partition key attribute.
pub const PK: &str = "PK";
/// Sort key attribute (the record id).
pub const SK: &str = "SK";
/// Most records one bulk create may carry: DynamoDB's limit of items in one transaction.
pub const MAX_BULK: usize = 100;
/// Reference fields with their own sparse index `by_{field}`, for related lists (video clips
/// of a stream, episodes of a stream or series, tasks of a record, chat of a channel, projects
/// of an episode). Other fields are answered from the resource's partition.
pub const INDEXED_REFERENCES: &[&str] = &[
    "stream_id",
    "series_id",
    "record_id",
    "channel_id",
    "episode_id",
];

/// Column defaults of the Postgres schema that a record has without being written
/// (`chat_messages.deleted boolean NOT NULL DEFAULT false`).
fn column_defaults(resource: &Resource) -> &'static [(&'static str, bool)] {
    match resource.name {
        "chat_messages" => &[("deleted", false)],
        _ => &[],
    }
}

fn ref_attribute(field: &str) -> String {
    format!("REF_{field}")
}

fn index_name(field: &str) -> String {
    format!("by_{field}")
}

fn partition(user_id: &str, resource: &Resource) -> String {
    format!("USER#{}#{}", user_segment(user_id), resource.name)
}

fn ref_key(user_id: &str, resource: &Resource, value: &str) -> String {
    format!("{}#{value}", partition(user_id, resource))
}

fn not_found(resource: &Resource, id: &str) -> StoreError {
    StoreError::NotFound(format!("{} record '{id}' not found", resource.name))
}

fn conflict() -> StoreError {
    StoreError::Conflict("a record with this id already exists".into())
}

/// Maps an SDK error: a `ValidationException` left after our own validation is about the
/// input's size or numbers (item over 400 KB, number out of range): the caller's fault.
fn sdk_error<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if e.code() == Some("ValidationException") {
        return StoreError::Invalid(format!(
            "DynamoDB refused the record: {}",
            e.message().unwrap_or("validation error")
        ));
    }
    StoreError::Backend(anyhow::Error::new(e).context(format!("DynamoDB {what}")))
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// A DynamoDB item as the record the API returns: key and index attributes dropped, null
/// attributes dropped (records are sparse, like Postgres's).
fn record_from_item(
    resource: &Resource,
    item: &HashMap<String, AttributeValue>,
) -> StoreResult<Value> {
    let mut map = Map::new();
    for (name, attr) in item {
        if name == PK || name == SK || name.starts_with("REF_") {
            continue;
        }
        let value = field_from_attr(resource.field(name).map(|f| f.ty), attr)?;
        if !value.is_null() {
            map.insert(name.clone(), value);
        }
    }
    Ok(Value::Object(map))
}

/// A DynamoDB update expression under construction; names and values always go through
/// placeholders (`type`, `status`, `key` are reserved words).
#[derive(Default)]
struct UpdateExpr {
    set: Vec<String>,
    remove: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl UpdateExpr {
    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#n{}", self.names.len());
        self.names
            .insert(placeholder.clone(), attribute.to_string());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder, value);
        format!(":v{}", self.values.len() - 1)
    }

    fn set(&mut self, attribute: &str, value: AttributeValue) {
        let n = self.name(attribute);
        let v = self.value(value);
        self.set.push(format!("{n} = {v}"));
    }

    fn set_if_absent(&mut self, attribute: &str, value: AttributeValue) {
        let n = self.name(attribute);
        let v = self.value(value);
        self.set.push(format!("{n} = if_not_exists({n}, {v})"));
    }

    fn remove(&mut self, attribute: &str) {
        let n = self.name(attribute);
        self.remove.push(n);
    }

    fn expression(&self) -> String {
        let mut out = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            out.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        out
    }
}

#[derive(Clone)]
pub struct DynamoRecordStore {
    client: Client,
    table: String,
}

impl DynamoRecordStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A client from the standard AWS configuration (environment, profile, instance role),
    /// pointed at `endpoint` when given (DynamoDB Local). DynamoDB Local accepts any
    /// credentials and region: with an endpoint and no `AWS_ACCESS_KEY_ID` / `AWS_REGION` set,
    /// fixed local ones are used instead of failing on the first request.
    pub async fn connect(endpoint: Option<&str>, table: &str) -> anyhow::Result<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if endpoint.is_some() {
            if std::env::var_os("AWS_REGION").is_none() {
                loader = loader.region(aws_config::Region::new("us-east-1"));
            }
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "local", "local", None, None, "static",
                ));
            }
        }
        let sdk = loader.load().await;
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(Self::new(Client::from_conf(config.build()), table))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its indexes if it does not exist (deployments create it with
    /// terraform; tests and the embedded setup with this), and waits until it is active.
    pub async fn ensure_table(&self) -> anyhow::Result<()> {
        let exists = match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) if e.code() == Some("ResourceNotFoundException") => false,
            Err(e) => return Err(anyhow::Error::new(e).context("describing the records table")),
        };
        if !exists {
            let key = |name: &str, ty: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(ty)
                    .build()
            };
            let string_attr = |name: &str| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
            };
            let mut request = self
                .client
                .create_table()
                .table_name(&self.table)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key(PK, KeyType::Hash)?)
                .key_schema(key(SK, KeyType::Range)?)
                .attribute_definitions(string_attr(PK)?)
                .attribute_definitions(string_attr(SK)?);
            for field in INDEXED_REFERENCES {
                let attribute = ref_attribute(field);
                request = request
                    .attribute_definitions(string_attr(&attribute)?)
                    .global_secondary_indexes(
                        GlobalSecondaryIndex::builder()
                            .index_name(index_name(field))
                            .key_schema(key(&attribute, KeyType::Hash)?)
                            .key_schema(key(SK, KeyType::Range)?)
                            .projection(
                                Projection::builder()
                                    .projection_type(ProjectionType::All)
                                    .build(),
                            )
                            .build()?,
                    );
            }
            match request.send().await {
                Ok(_) => {}
                // Another process created it meanwhile.
                Err(e) if e.code() == Some("ResourceInUseException") => {}
                Err(e) => return Err(anyhow::Error::new(e).context("creating the records table")),
            }
        }
        for _ in 0..600 {
            let table = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await?;
            let status = table.table().and_then(|t| t.table_status());
            if status == Some(&aws_sdk_dynamodb::types::TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        anyhow::bail!("table {} did not become active within a minute", self.table)
    }

    /// The item a validated create writes.
    fn new_item(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        write: &Write,
        now: &str,
    ) -> HashMap<String, AttributeValue> {
        let s = |v: &str| AttributeValue::S(v.to_string());
        let mut item = HashMap::from([
            (PK.to_string(), s(&partition(user_id, resource))),
            (SK.to_string(), s(id)),
            ("id".to_string(), s(id)),
            ("user_id".to_string(), s(user_id)),
            ("created_at".to_string(), s(now)),
            ("updated_at".to_string(), s(now)),
        ]);
        for (name, default) in column_defaults(resource) {
            item.insert(name.to_string(), AttributeValue::Bool(*default));
        }
        for (field, value) in &write.values {
            match typed_to_attr(value) {
                Some(attr) => {
                    if let (true, AttributeValue::S(text)) =
                        (INDEXED_REFERENCES.contains(&field.name), &attr)
                    {
                        item.insert(
                            ref_attribute(field.name),
                            s(&ref_key(user_id, resource, text)),
                        );
                    }
                    item.insert(field.name.to_string(), attr);
                }
                None => {
                    item.remove(field.name);
                }
            }
        }
        // Tokens get a fresh value whatever the body said.
        for name in resource.rotatable {
            item.insert(name.to_string(), AttributeValue::S(widget_token()));
        }
        item
    }

    /// The update expression merging `write` into a record (shared by update and upsert).
    fn merge_expression(
        &self,
        user_id: &str,
        resource: &Resource,
        write: &Write,
        rotate_tokens: bool,
        updated_at: &str,
    ) -> UpdateExpr {
        let mut expr = UpdateExpr::default();
        expr.set("updated_at", AttributeValue::S(updated_at.to_string()));
        for (field, value) in &write.values {
            let indexed = INDEXED_REFERENCES.contains(&field.name);
            match typed_to_attr(value) {
                Some(attr) => {
                    if let (true, AttributeValue::S(text)) = (indexed, &attr) {
                        let key = ref_key(user_id, resource, text);
                        expr.set(&ref_attribute(field.name), AttributeValue::S(key));
                    }
                    expr.set(field.name, attr);
                }
                None => {
                    if indexed {
                        expr.remove(&ref_attribute(field.name));
                    }
                    expr.remove(field.name);
                }
            }
        }
        if rotate_tokens {
            for name in &write.touched_server_fields {
                // Naming a server-managed token in an update asks for a fresh value.
                if resource.rotatable.contains(name) {
                    expr.set(name, AttributeValue::S(widget_token()));
                }
            }
        }
        expr
    }

    /// Reads `per_page + 1` matching items at most, from `start` on, of a query that returns
    /// items in id order.
    async fn query_matching(
        &self,
        resource: &Resource,
        query: QueryTarget,
        mut start: Option<HashMap<String, AttributeValue>>,
        keep: impl Fn(&Value) -> bool,
        want: usize,
        unfiltered: bool,
    ) -> StoreResult<Vec<Value>> {
        let mut found = Vec::new();
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take());
            request = match &query {
                QueryTarget::Partition(pk) => request
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                    .consistent_read(true),
                QueryTarget::Index { field, key } => request
                    .index_name(index_name(field))
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", ref_attribute(field))
                    .expression_attribute_values(":pk", AttributeValue::S(key.clone())),
            };
            if unfiltered {
                // Every item counts: read no more than needed.
                request = request.limit((want - found.len()).min(1000) as i32);
            }
            let page = request.send().await.map_err(|e| sdk_error("query", e))?;
            for item in page.items() {
                let record = record_from_item(resource, item)?;
                if keep(&record) {
                    found.push(record);
                    if found.len() >= want {
                        return Ok(found);
                    }
                }
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(found),
            }
        }
    }
}

/// What a [`DynamoRecordStore::server_merge`] requires of the record it writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Presence {
    /// It exists (else [`StoreError::NotFound`]).
    MustExist,
    /// Created when absent.
    Upsert,
    /// It does not exist yet (else [`StoreError::Conflict`], nothing written).
    MustBeAbsent,
    /// It exists with this `updated_at` (a read-modify-write that lost a race is
    /// [`StoreError::Conflict`]; the caller reads again).
    Unchanged(String),
    /// Created when absent, updated unless `field` holds one of `values` (a final state);
    /// otherwise [`StoreError::Conflict`], nothing written.
    UpsertUnless {
        field: &'static str,
        values: &'static [&'static str],
    },
}

/// What a server write found and wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The record before the write (`None`: it was created).
    pub before: Option<Value>,
    /// The `updated_at` written.
    pub updated_at: String,
}

impl DynamoRecordStore {
    /// Merges fields the server derives (a probe, a speech map, a review status; see
    /// [`gt_store::write::server_write`]) into a record in one conditional `UpdateItem`.
    /// Never for a client's body: those go through [`RecordStore::update`].
    pub async fn server_merge(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        fields: &Map<String, Value>,
        presence: Presence,
    ) -> StoreResult<Merged> {
        check_id(id)?;
        let write = gt_store::write::server_write(resource, fields)?;
        let (old, updated_at) = self
            .merge_write(
                user_id,
                resource,
                id,
                &write,
                false,
                presence,
                ReturnValue::AllOld,
            )
            .await?;
        let before = match old {
            Some(item) if !item.is_empty() => Some(record_from_item(resource, &item)?),
            _ => None,
        };
        Ok(Merged { before, updated_at })
    }

    /// Merges a validated write into a record in one conditional `UpdateItem` (shared by
    /// update, upsert and server writes); returns the item as `returns` asks, and the
    /// `updated_at` written.
    #[allow(clippy::too_many_arguments)]
    async fn merge_write(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        write: &Write,
        rotate_tokens: bool,
        presence: Presence,
        returns: ReturnValue,
    ) -> StoreResult<(Option<HashMap<String, AttributeValue>>, String)> {
        let updated_at = timestamp_text(Utc::now());
        let mut expr = self.merge_expression(user_id, resource, write, rotate_tokens, &updated_at);
        expr.set("id", AttributeValue::S(id.to_string()));
        expr.set("user_id", AttributeValue::S(user_id.to_string()));
        expr.set_if_absent("created_at", AttributeValue::S(updated_at.clone()));
        for (name, default) in column_defaults(resource) {
            if !write.values.iter().any(|(f, _)| f.name == *name) {
                expr.set_if_absent(name, AttributeValue::Bool(*default));
            }
        }
        let condition = match &presence {
            Presence::Upsert => None,
            Presence::MustExist => Some(format!("attribute_exists({})", expr.name(PK))),
            Presence::MustBeAbsent => Some(format!("attribute_not_exists({})", expr.name(PK))),
            Presence::Unchanged(at) => {
                let pk = expr.name(PK);
                let name = expr.name("updated_at");
                let value = expr.value(AttributeValue::S(at.clone()));
                Some(format!("attribute_exists({pk}) AND {name} = {value}"))
            }
            Presence::UpsertUnless { field, values } => {
                let name = expr.name(field);
                let list: Vec<String> = values
                    .iter()
                    .map(|v| expr.value(AttributeValue::S(v.to_string())))
                    .collect();
                Some(format!(
                    "attribute_not_exists({name}) OR NOT ({name} IN ({}))",
                    list.join(", ")
                ))
            }
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(user_id, resource, id)))
            .update_expression(expr.expression())
            .set_condition_expression(condition)
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .return_values(returns)
            .send()
            .await
            .map_err(|e| match (is_condition_failure(&e), &presence) {
                (true, Presence::MustExist) => not_found(resource, id),
                (true, _) => StoreError::Conflict(format!(
                    "{} record '{id}' changed or exists already",
                    resource.name
                )),
                (false, _) => sdk_error("update item", e),
            })?;
        Ok((out.attributes().cloned(), updated_at))
    }

    /// A client's update or upsert: the record as written.
    async fn written(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        write: &Write,
        rotate_tokens: bool,
        presence: Presence,
    ) -> StoreResult<Value> {
        let (item, _) = self
            .merge_write(
                user_id,
                resource,
                id,
                write,
                rotate_tokens,
                presence,
                ReturnValue::AllNew,
            )
            .await?;
        let item = item.ok_or_else(|| backend("UpdateItem returned no attributes".into()))?;
        record_from_item(resource, &item)
    }
}

enum QueryTarget {
    Partition(String),
    Index { field: &'static str, key: String },
}

fn key_of(user_id: &str, resource: &Resource, id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            PK.to_string(),
            AttributeValue::S(partition(user_id, resource)),
        ),
        (SK.to_string(), AttributeValue::S(id.to_string())),
    ])
}

#[async_trait]
impl RecordStore for DynamoRecordStore {
    async fn ping(&self) -> StoreResult<()> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| sdk_error("describe table", e))?;
        Ok(())
    }

    async fn list(
        &self,
        user_id: &str,
        resource: &Resource,
        query: &ListQuery,
    ) -> StoreResult<RecordPage> {
        let gt_store::CheckedListQuery {
            clauses,
            per_page,
            after,
        } = query.check(resource)?;
        let want = per_page as usize + 1;
        // An equality on an indexed reference (`{"stream_id": "s1"}`, the front end's usual
        // filter) reads only the matching items from its index, in the same id order; other
        // clauses are checked on what it returns.
        let indexed = clauses.iter().find_map(|c| match c {
            gt_store::filter::Clause::Compare {
                field,
                op: gt_store::filter::Op::Eq,
                values,
            } => match values.as_slice() {
                [gt_store::value::TypedValue::Text(v)] => INDEXED_REFERENCES
                    .iter()
                    .find(|r| **r == field.name)
                    .map(|r| (*r, v.clone())),
                _ => None,
            },
            _ => None,
        });
        let (target, start, unfiltered) = match indexed {
            Some((field, value)) => {
                let key = ref_key(user_id, resource, &value);
                let start = after.map(|id| {
                    let mut start = key_of(user_id, resource, &id);
                    start.insert(ref_attribute(field), AttributeValue::S(key.clone()));
                    start
                });
                (QueryTarget::Index { field, key }, start, clauses.len() == 1)
            }
            None => (
                QueryTarget::Partition(partition(user_id, resource)),
                after.map(|id| key_of(user_id, resource, &id)),
                clauses.is_empty(),
            ),
        };
        let items = self
            .query_matching(
                resource,
                target,
                start,
                |r| matcher::matches(resource, &clauses, r),
                want,
                unfiltered,
            )
            .await?;
        Ok(RecordPage::from_overfetched(items, per_page as usize))
    }

    async fn related(
        &self,
        user_id: &str,
        resource: &Resource,
        field: &str,
        value: &str,
    ) -> StoreResult<Vec<Value>> {
        let f = resource.reference_field(field)?;
        let target = match INDEXED_REFERENCES.iter().find(|r| **r == f.name) {
            Some(indexed) => QueryTarget::Index {
                field: indexed,
                key: ref_key(user_id, resource, value),
            },
            None => QueryTarget::Partition(partition(user_id, resource)),
        };
        let items = self
            .query_matching(
                resource,
                target,
                None,
                |r| r.get(f.name).and_then(Value::as_str) == Some(value),
                MAX_RELATED + 1,
                false,
            )
            .await?;
        if items.len() > MAX_RELATED {
            return Err(StoreError::Invalid(format!(
                "more than {MAX_RELATED} {} records have {field} = {value:?}: list them page by \
                 page with /records/{}?filter={{\"{field}\": ...}} instead",
                resource.name, resource.name
            )));
        }
        Ok(items)
    }

    async fn get(&self, user_id: &str, resource: &Resource, id: &str) -> StoreResult<Value> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(user_id, resource, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("get item", e))?;
        match out.item() {
            Some(item) => record_from_item(resource, item),
            None => Err(not_found(resource, id)),
        }
    }

    async fn create(
        &self,
        user_id: &str,
        resource: &Resource,
        bodies: &[Value],
    ) -> StoreResult<Vec<Value>> {
        if bodies.is_empty() {
            return Err(StoreError::Invalid("no records to create".into()));
        }
        if bodies.len() > MAX_BULK {
            return Err(StoreError::Invalid(format!(
                "at most {MAX_BULK} records per request (one DynamoDB transaction)"
            )));
        }
        let numbered = |i: usize, e: StoreError| match e {
            StoreError::Invalid(m) if bodies.len() > 1 => {
                StoreError::Invalid(format!("record {i}: {m}"))
            }
            StoreError::Conflict(m) if bodies.len() > 1 => {
                StoreError::Conflict(format!("record {i}: {m}"))
            }
            e => e,
        };
        // Validate everything before writing anything: a bad item rejects the whole request.
        let writes = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                validate_write(resource, b, WriteKind::Create).map_err(|e| numbered(i, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now = timestamp_text(Utc::now());
        let mut ids = HashSet::new();
        let mut items = Vec::with_capacity(writes.len());
        for (i, write) in writes.iter().enumerate() {
            let id = write.id.clone().unwrap_or_else(new_id);
            // One transaction may not touch an item twice; Postgres reports the later one.
            if !ids.insert(id.clone()) {
                return Err(numbered(i, conflict()));
            }
            items.push(self.new_item(user_id, resource, &id, write, &now));
        }
        let records = items
            .iter()
            .map(|item| record_from_item(resource, item))
            .collect::<StoreResult<Vec<_>>>()?;
        if items.len() == 1 {
            let item = items.pop().expect("one item");
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await
                .map_err(|e| {
                    if is_condition_failure(&e) {
                        conflict()
                    } else {
                        sdk_error("put item", e)
                    }
                })?;
            return Ok(records);
        }
        let mut transaction = self.client.transact_write_items();
        for item in items {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(|e| backend(format!("building a transaction: {e}")))?;
            transaction = transaction.transact_items(TransactWriteItem::builder().put(put).build());
        }
        match transaction.send().await {
            Ok(_) => Ok(records),
            Err(e) => {
                let reasons = e
                    .as_service_error()
                    .and_then(|s| match s {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                            Some(c.cancellation_reasons().to_vec())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                match reasons
                    .iter()
                    .position(|r| r.code() == Some("ConditionalCheckFailed"))
                {
                    Some(i) => Err(numbered(i, conflict())),
                    None => Err(sdk_error("transaction", e)),
                }
            }
        }
    }

    async fn update(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        patch: &Value,
    ) -> StoreResult<Value> {
        let write = validate_write(resource, patch, WriteKind::Update(id))?;
        self.written(user_id, resource, id, &write, true, Presence::MustExist)
            .await
    }

    async fn upsert(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        patch: &Value,
    ) -> StoreResult<Value> {
        check_id(id)?;
        let write = validate_write(resource, patch, WriteKind::Update(id))?;
        self.written(user_id, resource, id, &write, false, Presence::Upsert)
            .await
    }

    async fn delete(&self, user_id: &str, resource: &Resource, id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(user_id, resource, id)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map_err(|e| {
                if is_condition_failure(&e) {
                    not_found(resource, id)
                } else {
                    sdk_error("delete item", e)
                }
            })?;
        Ok(())
    }
}

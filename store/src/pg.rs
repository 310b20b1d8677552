//! Postgres implementation of the record store (the embedded default and system of record).

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use crate::catalog::{FieldType, Resource};
use crate::error::{StoreError, StoreResult};
use crate::filter::{Clause, Op};
use crate::value::TypedValue;
use crate::write::{Write, WriteKind, check_id, validate_write};
use crate::{ListQuery, RecordPage, RecordStore, new_id, widget_token};

/// Most records one bulk create may carry.
pub const MAX_BULK: usize = 1000;
/// Largest page a list may ask for.
pub const MAX_PER_PAGE: i64 = 1000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// Opens a pool. Sessions run in UTC so timestamps come back as `...+00:00`.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .with_context(|| "invalid database URL")?
        .options([("timezone", "UTC")]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to Postgres at {}", redact(url)))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Applies the embedded migrations (`store/migrations`). Safe to run concurrently and repeatedly.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")?;
    Ok(())
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn push_value(qb: &mut QueryBuilder<Postgres>, ty: FieldType, v: &TypedValue) {
    match v {
        TypedValue::Null => {
            qb.push("NULL");
        }
        TypedValue::Text(s) => {
            qb.push_bind(s.clone());
        }
        TypedValue::Bool(b) => {
            qb.push_bind(*b);
        }
        TypedValue::Int(i) => {
            qb.push_bind(*i);
        }
        TypedValue::Float(x) => {
            qb.push_bind(*x);
        }
        TypedValue::Timestamp(t) => {
            qb.push_bind(*t);
        }
        TypedValue::Date(d) => {
            qb.push_bind(*d);
        }
        TypedValue::Json(j) => {
            qb.push_bind(Json(j.clone()));
        }
    }
    // Filters on JSON columns compare jsonb with jsonb; be explicit for the planner.
    if ty.is_json() && !matches!(v, TypedValue::Null) {
        qb.push("::jsonb");
    }
}

fn push_clause(qb: &mut QueryBuilder<Postgres>, resource: &Resource, clause: &Clause) {
    match clause {
        Clause::Exists { field, present } => {
            qb.push(format!(
                " AND t.{} IS {}NULL",
                quote(field.name),
                if *present { "NOT " } else { "" }
            ));
        }
        Clause::Search(text) => {
            let escaped = text
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            qb.push(" AND (");
            for (i, name) in resource.search.iter().enumerate() {
                if i > 0 {
                    qb.push(" OR ");
                }
                qb.push(format!("t.{} ILIKE ", quote(name)));
                qb.push_bind(pattern.clone());
            }
            qb.push(")");
        }
        Clause::Compare { field, op, values } => {
            let col = format!("t.{}", quote(field.name));
            let joiner = if *op == Op::Ne { " AND " } else { " OR " };
            qb.push(" AND (");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    qb.push(joiner);
                }
                match (op, v) {
                    (Op::Eq, TypedValue::Null) => {
                        qb.push(format!("{col} IS NULL"));
                    }
                    (Op::Ne, TypedValue::Null) => {
                        qb.push(format!("{col} IS NOT NULL"));
                    }
                    (Op::Ne, v) => {
                        qb.push(format!("{col} IS DISTINCT FROM "));
                        push_value(qb, field.ty, v);
                    }
                    (Op::Contains, v) => match field.ty {
                        FieldType::Text | FieldType::Enum(_) => {
                            qb.push(format!("strpos({col}, "));
                            push_value(qb, field.ty, v);
                            qb.push(") > 0");
                        }
                        FieldType::Object => {
                            qb.push(format!("{col} @> "));
                            push_value(qb, field.ty, v);
                        }
                        _ => {
                            qb.push(format!("{col} @> jsonb_build_array("));
                            push_value(qb, field.ty, v);
                            qb.push(")");
                        }
                    },
                    (op, v) => {
                        qb.push(format!("{col} {} ", op.sql_comparison()));
                        push_value(qb, field.ty, v);
                    }
                }
            }
            qb.push(")");
        }
    }
}

/// Rows come out of Postgres as `to_jsonb(row)`; drop absent (null) top-level fields so records
/// are sparse like the original's, and nested JSON is left exactly as stored.
fn record_from_row(doc: Value) -> Value {
    match doc {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

/// Records from rows whose first column is `to_jsonb(t)`.
fn records_from_rows(rows: Vec<sqlx::postgres::PgRow>) -> StoreResult<Vec<Value>> {
    Ok(rows
        .into_iter()
        .map(|r| r.try_get::<Value, _>(0).map(record_from_row))
        .collect::<Result<_, _>>()?)
}

/// Most records a related list returns; more is a 400 that points to paged listing.
pub const MAX_RELATED: usize = 10_000;

impl PgStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn insert_one(
        &self,
        tx: &mut sqlx::Transaction<'_, Postgres>,
        user_id: &str,
        resource: &Resource,
        write: &Write,
    ) -> StoreResult<Value> {
        let id = write.id.clone().unwrap_or_else(new_id);
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "INSERT INTO {} AS t (user_id, id",
            quote(resource.name)
        ));
        for (field, _) in &write.values {
            qb.push(format!(", {}", quote(field.name)));
        }
        // Tokens get a fresh value whatever the body said.
        for name in resource.rotatable {
            qb.push(format!(", {}", quote(name)));
        }
        qb.push(") VALUES (");
        qb.push_bind(user_id.to_string());
        qb.push(", ");
        qb.push_bind(id);
        for (field, value) in &write.values {
            qb.push(", ");
            push_value(&mut qb, field.ty, value);
        }
        for _ in resource.rotatable {
            qb.push(", ");
            qb.push_bind(widget_token());
        }
        qb.push(") RETURNING to_jsonb(t)");
        let row = qb.build().fetch_one(&mut **tx).await?;
        Ok(record_from_row(row.try_get(0)?))
    }
}

#[async_trait]
impl RecordStore for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn list(
        &self,
        user_id: &str,
        resource: &Resource,
        query: &ListQuery,
    ) -> StoreResult<RecordPage> {
        let crate::CheckedListQuery {
            clauses,
            per_page,
            after,
        } = query.check(resource)?;
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT to_jsonb(t) FROM {} t WHERE t.user_id = ",
            quote(resource.name)
        ));
        qb.push_bind(user_id.to_string());
        for clause in &clauses {
            push_clause(&mut qb, resource, clause);
        }
        if let Some(after) = after {
            qb.push(" AND t.id > ");
            qb.push_bind(after);
        }
        qb.push(" ORDER BY t.id LIMIT ");
        qb.push_bind(per_page + 1);
        let items = records_from_rows(qb.build().fetch_all(&self.pool).await?)?;
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
        let sql = format!(
            "SELECT to_jsonb(t) FROM {} t WHERE t.user_id = $1 AND t.{} = $2 ORDER BY t.id
             LIMIT {}",
            quote(resource.name),
            quote(f.name),
            MAX_RELATED + 1
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(value)
            .fetch_all(&self.pool)
            .await?;
        if rows.len() > MAX_RELATED {
            return Err(StoreError::Invalid(format!(
                "more than {MAX_RELATED} {} records have {field} = {value:?}: list them page by \
                 page with /records/{}?filter={{\"{field}\": ...}} instead",
                resource.name, resource.name
            )));
        }
        records_from_rows(rows)
    }

    async fn get(&self, user_id: &str, resource: &Resource, id: &str) -> StoreResult<Value> {
        let sql = format!(
            "SELECT to_jsonb(t) FROM {} t WHERE t.user_id = $1 AND t.id = $2",
            quote(resource.name)
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(record_from_row(r.try_get(0)?)),
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
                "at most {MAX_BULK} records per request"
            )));
        }
        // Validate everything before writing anything: a bad item rejects the whole request.
        let writes = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                validate_write(resource, b, WriteKind::Create).map_err(|e| match e {
                    StoreError::Invalid(m) if bodies.len() > 1 => {
                        StoreError::Invalid(format!("record {i}: {m}"))
                    }
                    e => e,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx = self.pool.begin().await?;
        let mut created = Vec::with_capacity(writes.len());
        for (i, write) in writes.iter().enumerate() {
            let record = self
                .insert_one(&mut tx, user_id, resource, write)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(m) if writes.len() > 1 => {
                        StoreError::Conflict(format!("record {i}: {m}"))
                    }
                    e => e,
                })?;
            created.push(record);
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn update(
        &self,
        user_id: &str,
        resource: &Resource,
        id: &str,
        patch: &Value,
    ) -> StoreResult<Value> {
        let write = validate_write(resource, patch, WriteKind::Update(id))?;
        match update_query(resource, user_id, id, &write)
            .build()
            .fetch_optional(&self.pool)
            .await?
        {
            Some(r) => Ok(record_from_row(r.try_get(0)?)),
            None => Err(not_found(resource, id)),
        }
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
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "INSERT INTO {} AS t (user_id, id",
            quote(resource.name)
        ));
        for (field, _) in &write.values {
            qb.push(format!(", {}", quote(field.name)));
        }
        qb.push(") VALUES (");
        qb.push_bind(user_id.to_string());
        qb.push(", ");
        qb.push_bind(id.to_string());
        for (field, value) in &write.values {
            qb.push(", ");
            push_value(&mut qb, field.ty, value);
        }
        qb.push(") ON CONFLICT (user_id, id) DO UPDATE SET updated_at = now()");
        for (field, _) in &write.values {
            let c = quote(field.name);
            qb.push(format!(", {c} = EXCLUDED.{c}"));
        }
        qb.push(" RETURNING to_jsonb(t)");
        let row = qb.build().fetch_one(&self.pool).await?;
        Ok(record_from_row(row.try_get(0)?))
    }

    async fn delete(&self, user_id: &str, resource: &Resource, id: &str) -> StoreResult<()> {
        let sql = format!(
            "DELETE FROM {} WHERE user_id = $1 AND id = $2",
            quote(resource.name)
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(resource, id));
        }
        Ok(())
    }
}

/// `UPDATE … RETURNING` merging a validated write into record `id` of `user_id`.
pub(crate) fn update_query(
    resource: &Resource,
    user_id: &str,
    id: &str,
    write: &crate::write::Write,
) -> QueryBuilder<Postgres> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "UPDATE {} AS t SET updated_at = now()",
        quote(resource.name)
    ));
    for (field, value) in &write.values {
        qb.push(format!(", {} = ", quote(field.name)));
        push_value(&mut qb, field.ty, value);
    }
    for name in &write.touched_server_fields {
        // Naming a server-managed token in an update asks for a fresh value (token rotation).
        if resource.rotatable.contains(name) {
            qb.push(format!(", {} = ", quote(name)));
            qb.push_bind(widget_token());
        }
    }
    qb.push(" WHERE t.user_id = ");
    qb.push_bind(user_id.to_string());
    qb.push(" AND t.id = ");
    qb.push_bind(id.to_string());
    qb.push(" RETURNING to_jsonb(t)");
    qb
}

pub(crate) fn not_found(resource: &Resource, id: &str) -> StoreError {
    StoreError::NotFound(format!("{} record '{id}' not found", resource.name))
}

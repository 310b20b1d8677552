//! Which system of record the processes use (`GT_RECORD_BACKEND`): every binary chooses the
//! same way, so the API and the workers always read and write the same records.

use std::sync::Arc;

use anyhow::Context;
use gt_store::{PgStore, Store};
use sqlx::PgPool;

use crate::DynamoRecordStore;
use crate::split::DynamoPgStore;

/// The table name when `GT_DYNAMODB_TABLE` is unset (terraform names its own and sets it).
pub const DEFAULT_TABLE: &str = "glowing-telegram-records";

/// Where records live. Postgres is always there: it holds what DynamoDB cannot (search,
/// chat, widgets; see [`DynamoPgStore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordBackend {
    /// Everything in Postgres: the embedded default.
    Postgres,
    /// Records, pipeline state and tasks in a DynamoDB table.
    DynamoDb {
        table: String,
        /// DynamoDB Local or another compatible endpoint; `None` for AWS.
        endpoint: Option<String>,
    },
}

impl RecordBackend {
    /// `GT_RECORD_BACKEND` (`postgres`, the default, or `dynamodb`), `GT_DYNAMODB_TABLE`,
    /// `GT_DYNAMODB_ENDPOINT`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        match var("GT_RECORD_BACKEND").as_deref().map(str::trim) {
            None | Some("postgres") => Ok(RecordBackend::Postgres),
            Some("dynamodb") => Ok(RecordBackend::DynamoDb {
                table: var("GT_DYNAMODB_TABLE").unwrap_or_else(|| DEFAULT_TABLE.into()),
                endpoint: var("GT_DYNAMODB_ENDPOINT"),
            }),
            Some(other) => anyhow::bail!(
                "GT_RECORD_BACKEND must be \"postgres\" or \"dynamodb\", got {other:?}"
            ),
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The store on `pool` (migrated by the caller) and, for DynamoDB, the table. A table on
    /// a custom endpoint (DynamoDB Local) is created when missing; on AWS it is terraform's
    /// and must exist.
    pub async fn open(&self, pool: PgPool) -> anyhow::Result<Arc<dyn Store>> {
        let pg = PgStore::new(pool);
        Ok(match self {
            RecordBackend::Postgres => Arc::new(pg),
            RecordBackend::DynamoDb { table, endpoint } => {
                let dynamo = DynamoRecordStore::connect(endpoint.as_deref(), table).await?;
                if endpoint.is_some() {
                    dynamo.ensure_table().await?;
                } else {
                    gt_store::RecordStore::ping(&dynamo)
                        .await
                        .with_context(|| format!("DynamoDB table {table} is not reachable"))?;
                }
                Arc::new(DynamoPgStore::new(dynamo, pg))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_backend_from_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            RecordBackend::from_vars(vars(&[])).unwrap(),
            RecordBackend::Postgres
        );
        assert_eq!(
            RecordBackend::from_vars(vars(&[("GT_RECORD_BACKEND", "dynamodb")])).unwrap(),
            RecordBackend::DynamoDb {
                table: DEFAULT_TABLE.into(),
                endpoint: None
            }
        );
        assert_eq!(
            RecordBackend::from_vars(vars(&[
                ("GT_RECORD_BACKEND", "dynamodb"),
                ("GT_DYNAMODB_TABLE", "t"),
                ("GT_DYNAMODB_ENDPOINT", "http://127.0.0.1:8000"),
            ]))
            .unwrap(),
            RecordBackend::DynamoDb {
                table: "t".into(),
                endpoint: Some("http://127.0.0.1:8000".into())
            }
        );
        let err = RecordBackend::from_vars(vars(&[("GT_RECORD_BACKEND", "mongo")])).unwrap_err();
        assert!(err.to_string().contains("\"mongo\""), "{err}");
    }
}

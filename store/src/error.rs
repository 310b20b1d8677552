use thiserror::Error;

/// What can go wrong in the store. The first three are the caller's fault and map to 4xx; the
/// last is ours and maps to 5xx (and is retryable in activities).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Backend(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            // unique_violation: the client chose an id (or key) that exists.
            if db.code().as_deref() == Some("23505") {
                return StoreError::Conflict(format!(
                    "a record with this id already exists ({})",
                    db.message()
                ));
            }
        }
        StoreError::Backend(e.into())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

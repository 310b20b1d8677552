//! The API's one error type. Every error leaves as `{"message": ...}` with a fitting status,
//! because the front end shows `message` and logs out on 401.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gt_store::StoreError;
use gt_types::api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A 400 whose body carries more than the message (e.g. `validation_errors`): the extra
    /// object's fields are added next to `message`.
    #[error("{0}")]
    BadRequestWith(String, serde_json::Value),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadRequestWith(..) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Backend(e) => ApiError::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(e) => {
                // Details go to the log, not to the client.
                tracing::error!(error = format!("{e:#}"), "internal error");
                "internal server error".to_string()
            }
            other => other.to_string(),
        };
        if let ApiError::BadRequestWith(_, serde_json::Value::Object(extra)) = &self {
            let mut body = extra.clone();
            body.insert("message".into(), message.into());
            return (status, Json(serde_json::Value::Object(body))).into_response();
        }
        (status, Json(ErrorBody { message })).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

//! The one error type of the HTTP layer. Every failure, axum's own rejections
//! included, leaves as `{"error":{"code","message","field"}}` with a status
//! that tells the client what to do: fix the request (4xx) or retry (503).
//! The `code` is an [`ErrorCode`], which decides the status.

mod code;

use std::time::Duration;

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub use code::ErrorCode;

pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// `{"error":{"code","message","field"}}`: every refusal and failure.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, e.g. `invalid_field`, `unauthorized`, `already_final`.
    pub code: ErrorCode,
    pub message: String,
    /// The offending field or header (`items[0].quantity`), when there is one.
    #[schema(required = true)]
    pub field: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// The request is malformed; `field` names the offending field or header.
    #[error("{message}")]
    BadRequest {
        code: ErrorCode,
        message: String,
        field: Option<String>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("the request body is larger than {} bytes", BODY_LIMIT_BYTES)]
    PayloadTooLarge,
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    /// The request does not fit the resource's state (e.g. `already_final`).
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    #[error("too many requests; retry after {} s", retry_after_secs(*retry_after))]
    RateLimited { retry_after: Duration },
    /// Another limit than the subject's rate (its `code` says which), answered
    /// 429 with `Retry-After`.
    #[error("{message}")]
    Limited {
        code: ErrorCode,
        message: String,
        retry_after: Duration,
    },
    /// Every place for a request in flight is taken.
    #[error("the gateway is handling as many requests as it allows; retry after 1 s")]
    Overloaded,
    #[error("the request took longer than {} s; retry", .0.as_secs_f64())]
    RequestTimeout(Duration),
    /// A dependency is down; `cause` is logged, never sent to the client.
    #[error("{dependency} is unavailable; retry later")]
    Unavailable {
        dependency: &'static str,
        cause: String,
    },
    /// A bug on our side; the detail is logged, never sent to the client.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::BadRequest {
            code: ErrorCode::InvalidField,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// The status is the code's: one code never travels with two statuses.
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::Limited { code, .. } => *code,
            AppError::Unauthorized(_) => ErrorCode::Unauthorized,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            AppError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            AppError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            AppError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::Overloaded => ErrorCode::Overloaded,
            AppError::RequestTimeout(_) => ErrorCode::RequestTimeout,
            AppError::Unavailable { .. } => ErrorCode::Unavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// Whole seconds, at least one, as `Retry-After` says them.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            AppError::Unavailable { dependency, cause } => {
                tracing::warn!(dependency, cause, "answering 503");
            }
            AppError::Internal(detail) => tracing::error!(detail, "answering 500"),
            _ => {}
        }
        let field = match &self {
            AppError::BadRequest { field, .. } => field.clone(),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                field,
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            AppError::Unauthorized(_) => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            AppError::RateLimited { retry_after } | AppError::Limited { retry_after, .. } => {
                headers.insert(RETRY_AFTER, retry_after_secs(*retry_after).into());
            }
            AppError::Unavailable { .. } | AppError::Overloaded => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// Maps a database error: connection trouble or a missing read model is a
/// 503 naming the database; anything else is our bug.
pub fn database_error(database: &'static str) -> impl FnOnce(sqlx::Error) -> AppError {
    move |e| match &e {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => {
            AppError::Internal(format!("{database}: {e}"))
        }
        _ => AppError::Unavailable {
            dependency: database,
            cause: e.to_string(),
        },
    }
}

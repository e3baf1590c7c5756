//! Extractors whose every rejection is an [`AppError`], so axum's own
//! failures (no JSON content type, body too large, bad JSON, bad path or
//! query) answer in the gateway's error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _, Unexpected};

use crate::error::{AppError, ErrorCode};

/// A JSON body of type `T`, parsed with field paths in its errors.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        if !is_json(request.headers()) {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge
                } else {
                    AppError::BadRequest {
                        code: ErrorCode::InvalidBody,
                        message: rejection.body_text(),
                        field: None,
                    }
                }
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON object, telling a syntax error (`invalid_json`) from a value
/// that does not fit (`invalid_field`, naming the field as `items[0].quantity`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| AppError::BadRequest {
            code: ErrorCode::InvalidJson,
            message: format!("the body is not valid JSON: {e}"),
            field: None,
        })?;
    // Checked first: serde would also read a struct from an array, and then
    // name fields by position.
    if !value.is_object() {
        return Err(AppError::BadRequest {
            code: ErrorCode::InvalidBody,
            message: "the body must be a JSON object".to_string(),
            field: None,
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let mut field = (path != ".").then_some(path);
        // A missing field is reported at its parent: name the field itself.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            field = Some(match field {
                Some(parent) => format!("{parent}.{name}"),
                None => name.to_string(),
            });
        }
        match field {
            Some(field) => AppError::field(field, message),
            None => AppError::BadRequest {
                code: ErrorCode::InvalidBody,
                message,
                field: None,
            },
        }
    })
}

/// A JSON integer as JSON Schema counts one: `319`, and also `319.0` or
/// `3.19e2`, which many clients' number types write for a whole number.
/// Beyond `i64` it saturates, so the field's own range check names the
/// limits; a fraction is refused. Use as `#[serde(deserialize_with = ..)]`.
pub fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_i64() {
        return Ok(n);
    }
    if number.is_u64() {
        return Ok(i64::MAX);
    }
    match number.as_f64() {
        // `as` saturates at i64's ends.
        Some(n) if n.fract() == 0.0 => Ok(n as i64),
        Some(n) => Err(D::Error::invalid_type(Unexpected::Float(n), &"an integer")),
        None => Err(D::Error::custom("expected an integer")),
    }
}

/// The single path parameter of a route, as text.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParam(value))
            .map_err(|rejection| AppError::BadRequest {
                code: ErrorCode::InvalidPath,
                message: rejection.body_text(),
                field: None,
            })
    }
}

/// Query parameters of type `T`.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection| AppError::BadRequest {
                code: ErrorCode::InvalidQuery,
                message: rejection.body_text(),
                field: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Line>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        #[serde(deserialize_with = "integer")]
        quantity: i64,
    }

    fn field_of(json: &str) -> (String, Option<String>) {
        match parse_json::<Body>(json.as_bytes()).unwrap_err() {
            AppError::BadRequest { code, field, .. } => (code.to_string(), field),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of(r#"{"items":[{"sku":"A","quantity":"2"}]}"#),
            ("invalid_field".into(), Some("items[0].quantity".into()))
        );
        assert_eq!(
            field_of(r#"{"items":[{"quantity":2}]}"#),
            ("invalid_field".into(), Some("items[0].sku".into()))
        );
        assert_eq!(
            field_of(r#"{}"#),
            ("invalid_field".into(), Some("items".into()))
        );
        assert_eq!(field_of(r#"[]"#), ("invalid_body".into(), None));
        assert_eq!(field_of(r#"{"items":"#), ("invalid_json".into(), None));
        assert_eq!(field_of(r#"{"items":[]} x"#), ("invalid_json".into(), None));
    }

    #[test]
    fn integers_as_json_schema_counts_them() {
        let quantity = |json: &str| {
            parse_json::<Body>(
                format!(r#"{{"items":[{{"sku":"A","quantity":{json}}}]}}"#).as_bytes(),
            )
            .map(|body| body.items[0].quantity)
        };
        assert_eq!(quantity("319").unwrap(), 319);
        assert_eq!(quantity("319.0").unwrap(), 319);
        assert_eq!(quantity("3.19e2").unwrap(), 319);
        assert_eq!(quantity("-0.0").unwrap(), 0);
        assert_eq!(quantity("1e300").unwrap(), i64::MAX);
        assert_eq!(quantity("-1e300").unwrap(), i64::MIN);
        assert_eq!(quantity("18446744073709551615").unwrap(), i64::MAX);
        for bad in ["319.5", "\"319\"", "null", "true"] {
            match quantity(bad).unwrap_err() {
                AppError::BadRequest { field, .. } => {
                    assert_eq!(field.as_deref(), Some("items[0].quantity"), "{bad}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }
}

//! JSON ↔ DynamoDB attribute values, and the catalog's typed values as attributes.
//!
//! Records must read back exactly as Postgres returns them (`to_jsonb(row)`), so the encoding
//! follows Postgres's output: timestamps as `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00` (microseconds,
//! trailing zeros dropped), dates as `YYYY-MM-DD`, a `double precision` column that holds a whole
//! number as a JSON integer. Nested JSON (object and array fields) is stored natively as `M`/`L`
//! with `NULL` for nulls, so it stays queryable and readable in the console, not as a string.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use gt_store::catalog::FieldType;
use gt_store::value::TypedValue;
use gt_store::{StoreError, StoreResult};
use serde_json::{Map, Number, Value};

/// A JSON value as an attribute value; nested nulls become `NULL`, numbers `N` with JSON's
/// text (DynamoDB keeps 38 significant digits; a JSON number never has more than an `f64`
/// or `u64` here).
pub fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attr).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), to_attr(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// A DynamoDB number as JSON: integers stay integers (as `serde_json` parses JSON text), the
/// rest are `f64`.
pub fn number_from_text(text: &str) -> StoreResult<Number> {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Number::from(i));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Ok(Number::from(u));
        }
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| {
            backend(format!(
                "DynamoDB returned the number {text:?}, not a JSON number"
            ))
        })
}

/// An attribute value as JSON. String sets (written by the original system for `keyframes`)
/// read as arrays of strings; binary values have no JSON form and are an error.
pub fn from_attr(attr: &AttributeValue) -> StoreResult<Value> {
    Ok(match attr {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(number_from_text(n)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(items) => {
            Value::Array(items.iter().map(from_attr).collect::<StoreResult<_>>()?)
        }
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_attr(v)?)))
                .collect::<StoreResult<Map<_, _>>>()?,
        ),
        AttributeValue::Ss(items) => {
            let mut items = items.clone();
            // Sets have no order; sorted is at least deterministic.
            items.sort();
            Value::Array(items.into_iter().map(Value::String).collect())
        }
        AttributeValue::Ns(items) => Value::Array(
            items
                .iter()
                .map(|n| number_from_text(n).map(Value::Number))
                .collect::<StoreResult<_>>()?,
        ),
        other => {
            return Err(backend(format!(
                "DynamoDB attribute {other:?} has no JSON form"
            )));
        }
    })
}

/// A top-level field read back with its catalog type: a `double precision` column holding a
/// whole number reads as an integer, as Postgres prints it (`3`, not `3.0`).
pub fn field_from_attr(ty: Option<FieldType>, attr: &AttributeValue) -> StoreResult<Value> {
    match (ty, attr) {
        (Some(FieldType::Float), AttributeValue::N(text)) => {
            let x: f64 = text
                .parse()
                .map_err(|_| backend(format!("DynamoDB returned the number {text:?}")))?;
            Ok(Value::Number(float_as_postgres_prints(x)))
        }
        _ => from_attr(attr),
    }
}

/// How `to_jsonb` renders a `double precision`: whole numbers below 10^15 without a fraction.
fn float_as_postgres_prints(x: f64) -> Number {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        Number::from(x as i64)
    } else {
        Number::from_f64(x).unwrap_or_else(|| Number::from(0))
    }
}

/// A timestamp as Postgres's `to_jsonb(timestamptz)` prints it in a UTC session.
pub fn timestamp_text(t: DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S");
    let micros = t.timestamp_subsec_micros();
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        let fraction = format!("{micros:06}");
        format!("{base}.{}+00:00", fraction.trim_end_matches('0'))
    }
}

/// A validated, non-null value as the attribute stored for it.
pub fn typed_to_attr(value: &TypedValue) -> Option<AttributeValue> {
    Some(match value {
        TypedValue::Null => return None,
        TypedValue::Text(s) => AttributeValue::S(s.clone()),
        TypedValue::Bool(b) => AttributeValue::Bool(*b),
        TypedValue::Int(i) => AttributeValue::N(i.to_string()),
        // `Display` of an f64 is its shortest exact form ("0.1", "3"); DynamoDB refuses numbers
        // beyond ±1E+126, which surfaces as an invalid write.
        TypedValue::Float(x) => AttributeValue::N(x.to_string()),
        TypedValue::Timestamp(t) => AttributeValue::S(timestamp_text(*t)),
        TypedValue::Date(d) => AttributeValue::S(d.format("%Y-%m-%d").to_string()),
        TypedValue::Json(j) => to_attr(j),
    })
}

pub fn backend(msg: String) -> StoreError {
    StoreError::Backend(anyhow::anyhow!(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_json_round_trips_with_nulls_numbers_and_empty_containers() {
        let v = json!({
            "a": null,
            "b": [null, {"c": null, "d": [1, -2, 3.5, 0.1]}, [], {}],
            "big": 18446744073709551615u64,
            "neg": -9223372036854775808i64,
            "s": "",
            "t": true
        });
        assert_eq!(from_attr(&to_attr(&v)).unwrap(), v);
    }

    #[test]
    fn timestamps_print_like_postgres() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.120000Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp_text(t), "2024-01-02T03:04:05.12+00:00");
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05+02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp_text(t), "2024-01-02T01:04:05+00:00");
    }

    #[test]
    fn float_columns_read_whole_numbers_as_integers() {
        let f = |s: &str| field_from_attr(Some(FieldType::Float), &AttributeValue::N(s.into()));
        assert_eq!(f("3").unwrap(), json!(3));
        assert_eq!(f("3.0").unwrap(), json!(3));
        assert_eq!(f("2.5").unwrap(), json!(2.5));
    }
}

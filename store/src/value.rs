//! Checking JSON values against a field's type and turning them into typed values the database
//! binds. Every rejection names the field and what was expected, because it becomes the
//! `message` of a 400 response.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use crate::catalog::{Field, FieldType};
use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue {
    Null,
    Text(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    Timestamp(DateTime<Utc>),
    Date(NaiveDate),
    Json(Value),
}

fn invalid(field: &Field, got: &Value) -> StoreError {
    let got = match got {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Number(_) => "a number".to_string(),
        Value::String(s) => format!("the string {:?}", truncate(s, 60)),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    };
    let mut msg = format!(
        "field '{}' must be {}, got {}",
        field.name,
        field.ty.describe(),
        got
    );
    if let FieldType::Enum(values) = field.ty {
        msg.push_str(&format!(" (allowed: {})", values.join(", ")));
    }
    StoreError::Invalid(msg)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Parses a date-time the way clients send them: RFC 3339; a date-time without zone (UTC, see
/// [`parse_local_timestamp`] for the forms); or a bare date (midnight UTC, handy in range
/// filters).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(t) = parse_local_timestamp(s) {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// A date-time without zone, as an HTML `datetime-local` input (and react-admin's
/// `DateTimeInput`) sends it: `YYYY-MM-DDTHH:mm`, optionally with seconds and fractions; a
/// space may stand for the `T`. `None` for anything else (RFC 3339 with a zone included).
pub fn parse_local_timestamp(s: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
}

/// A number sent as a string, as HTML inputs hand them over (`"3600"`, `"-2.5"`, `"1e3"`):
/// exactly JSON's number grammar, so nothing ambiguous slips through (no blanks, `+`, hex,
/// `NaN`, `Infinity`, thousands separators or an empty string).
pub fn parse_numeric_string(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    let n = digits(&mut i);
    // JSON forbids leading zeros ("007"), which could also be read as octal.
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The number in `value`: a JSON number, or a string holding exactly one
/// ([`parse_numeric_string`]).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => parse_numeric_string(s),
        other => other.as_f64(),
    }
}

/// Converts `value` for `field`. `null` is allowed (it clears the field) unless the caller
/// checks `required` itself.
/// Whether any string (or object key) in `v` contains NUL.
pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, x)| k.contains('\0') || has_nul(x)),
        _ => false,
    }
}

pub fn typed(field: &Field, value: &Value) -> Result<TypedValue, StoreError> {
    if value.is_null() {
        return Ok(TypedValue::Null);
    }
    // Postgres stores no NUL in text or jsonb: refuse it here, clearly, not as a 500 later.
    if has_nul(value) {
        return Err(StoreError::Invalid(format!(
            "field '{}' must not contain NUL characters",
            field.name
        )));
    }
    let bad = || invalid(field, value);
    Ok(match field.ty {
        FieldType::Text => TypedValue::Text(value.as_str().ok_or_else(bad)?.to_string()),
        FieldType::Enum(allowed) => {
            let s = value.as_str().ok_or_else(bad)?;
            if !allowed.contains(&s) {
                return Err(bad());
            }
            TypedValue::Text(s.to_string())
        }
        FieldType::Bool => TypedValue::Bool(value.as_bool().ok_or_else(bad)?),
        FieldType::Int => {
            if let Some(i) = value.as_i64() {
                TypedValue::Int(i)
            } else {
                // JavaScript has one number type: accept 5.0 but not 5.5. HTML inputs hand
                // numbers over as strings: "5" is as unambiguous as 5.
                match number(value) {
                    Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => TypedValue::Int(x as i64),
                    _ => return Err(bad()),
                }
            }
        }
        FieldType::Float => TypedValue::Float(number(value).ok_or_else(bad)?),
        FieldType::Timestamp => {
            TypedValue::Timestamp(value.as_str().and_then(parse_timestamp).ok_or_else(bad)?)
        }
        FieldType::Date => TypedValue::Date(
            value
                .as_str()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .ok_or_else(bad)?,
        ),
        FieldType::Object => {
            if !value.is_object() {
                return Err(bad());
            }
            TypedValue::Json(value.clone())
        }
        FieldType::Array => {
            if !value.is_array() {
                return Err(bad());
            }
            TypedValue::Json(value.clone())
        }
        FieldType::StringArray => {
            let items = value.as_array().ok_or_else(bad)?;
            if !items.iter().all(Value::is_string) {
                return Err(bad());
            }
            TypedValue::Json(value.clone())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{STREAMS, TASKS};
    use serde_json::json;

    fn field(r: &crate::catalog::Resource, name: &str) -> Field {
        r.field(name).unwrap()
    }

    #[test]
    fn accepts_matching_types() {
        assert_eq!(
            typed(&field(&STREAMS, "title"), &json!("hi")).unwrap(),
            TypedValue::Text("hi".into())
        );
        assert_eq!(
            typed(&field(&STREAMS, "video_clip_count"), &json!(3.0)).unwrap(),
            TypedValue::Int(3)
        );
        assert_eq!(
            typed(&field(&STREAMS, "duration"), &json!(3)).unwrap(),
            TypedValue::Float(3.0)
        );
        assert!(matches!(
            typed(
                &field(&STREAMS, "stream_date"),
                &json!("2024-01-02T03:04:05Z")
            )
            .unwrap(),
            TypedValue::Timestamp(_)
        ));
        assert_eq!(
            typed(&field(&STREAMS, "title"), &Value::Null).unwrap(),
            TypedValue::Null
        );
    }

    #[test]
    fn rejects_wrong_types_with_a_message_naming_the_field() {
        let e = typed(&field(&STREAMS, "has_episodes"), &json!("yes")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field 'has_episodes' must be a boolean, got the string \"yes\""
        );
        assert!(typed(&field(&STREAMS, "video_clip_count"), &json!(2.5)).is_err());
        assert!(typed(&field(&STREAMS, "stream_date"), &json!("yesterday")).is_err());
        let e = typed(&field(&TASKS, "status"), &json!("DONE")).unwrap_err();
        assert!(e.to_string().contains("allowed: PENDING"), "{e}");
    }

    #[test]
    fn timestamps_in_the_forms_clients_send() {
        let want = DateTime::parse_from_rfc3339("2024-03-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_timestamp("2024-03-01"), Some(want));
        assert_eq!(parse_timestamp("2024-03-01T00:00:00"), Some(want));
        assert_eq!(parse_timestamp("2024-03-01T01:00:00+01:00"), Some(want));
        assert_eq!(parse_timestamp("March"), None);
        // What a datetime-local input sends: minutes, no seconds, no zone (UTC here; the API
        // first resolves it in the user's profile time zone, see `write::resolve_local_times`).
        assert_eq!(
            parse_timestamp("2024-03-01T01:02"),
            Some(want + chrono::Duration::minutes(62))
        );
        assert_eq!(parse_timestamp("2024-03-01T25:00"), None);
        assert_eq!(parse_timestamp("2024-03-01T01:02:03:04"), None);
    }

    #[test]
    fn numbers_sent_as_strings_only_when_unambiguous() {
        let duration = field(&STREAMS, "duration");
        let count = field(&STREAMS, "video_clip_count");
        assert_eq!(
            typed(&duration, &json!("3600")).unwrap(),
            TypedValue::Float(3600.0)
        );
        assert_eq!(
            typed(&duration, &json!("-2.5e1")).unwrap(),
            TypedValue::Float(-25.0)
        );
        assert_eq!(typed(&count, &json!("12")).unwrap(), TypedValue::Int(12));
        assert!(typed(&count, &json!("12.5")).is_err());
        for bad in [
            "", " 3600", "3600 ", "+3600", "0x10", "1,000", "1_000", "NaN", "Infinity", "inf",
            "007", "1.", ".5", "1e", "3600s", "1e999",
        ] {
            let e = typed(&duration, &json!(bad)).unwrap_err().to_string();
            assert!(
                e.contains("field 'duration' must be a number"),
                "{bad:?}: {e}"
            );
        }
        // Text stays text: a numeric string is not turned into anything else.
        assert_eq!(
            typed(&field(&STREAMS, "title"), &json!("3600")).unwrap(),
            TypedValue::Text("3600".into())
        );
    }
}

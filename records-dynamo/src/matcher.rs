//! Evaluates parsed `/records` filters ([`gt_store::filter::Clause`]) on records read from
//! DynamoDB, with the meaning Postgres gives them in `gt_store::pg`.
//!
//! Why in the client and not as a `FilterExpression`: DynamoDB has no case-insensitive
//! substring (`q` is `ILIKE`), no JSON containment (`@>`), and compares timestamps only as
//! strings; a filter expression also reads (and bills) the same items as evaluating here, since
//! filtering happens after the read either way.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use gt_store::catalog::{Field, FieldType, Resource};
use gt_store::filter::{Clause, Op};
use gt_store::value::TypedValue;
use serde_json::Value;

/// Whether `record` (a sparse record: absent means null) satisfies every clause.
pub fn matches(resource: &Resource, clauses: &[Clause], record: &Value) -> bool {
    clauses.iter().all(|c| clause_matches(resource, c, record))
}

fn present<'a>(record: &'a Value, name: &str) -> Option<&'a Value> {
    record.get(name).filter(|v| !v.is_null())
}

fn clause_matches(resource: &Resource, clause: &Clause, record: &Value) -> bool {
    match clause {
        Clause::Exists { field, present: p } => present(record, field.name).is_some() == *p,
        Clause::Search(text) => {
            let needle = text.to_lowercase();
            resource.search.iter().any(|name| {
                present(record, name)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.to_lowercase().contains(&needle))
            })
        }
        Clause::Compare { field, op, values } => {
            let stored = present(record, field.name);
            match op {
                // "None of": SQL's `IS DISTINCT FROM` per value, ANDed.
                Op::Ne => values.iter().all(|v| match (stored, v) {
                    (None, TypedValue::Null) => false,
                    (None, _) => true,
                    (Some(_), TypedValue::Null) => true,
                    (Some(s), v) => compare(field, s, v) != Some(Ordering::Equal),
                }),
                _ => values.iter().any(|v| match (op, stored, v) {
                    (Op::Eq, None, TypedValue::Null) => true,
                    (_, None, _) | (_, _, TypedValue::Null) => false,
                    (Op::Contains, Some(s), v) => contains(field, s, v),
                    (op, Some(s), v) => compare(field, s, v).is_some_and(|o| match op {
                        Op::Eq => o == Ordering::Equal,
                        Op::Gt => o == Ordering::Greater,
                        Op::Gte => o != Ordering::Less,
                        Op::Lt => o == Ordering::Less,
                        Op::Lte => o != Ordering::Greater,
                        _ => false,
                    }),
                }),
            }
        }
    }
}

/// Orders a stored value against a filter value by the field's type (Postgres's comparison of
/// the column with the bound parameter). `None` when they are not comparable.
fn compare(field: &Field, stored: &Value, wanted: &TypedValue) -> Option<Ordering> {
    match (field.ty, wanted) {
        (_, TypedValue::Text(w)) => stored.as_str().map(|s| s.as_bytes().cmp(w.as_bytes())),
        (_, TypedValue::Bool(w)) => stored.as_bool().map(|s| s.cmp(w)),
        (_, TypedValue::Int(w)) => stored.as_i64().map(|s| s.cmp(w)),
        (_, TypedValue::Float(w)) => stored.as_f64().and_then(|s| s.partial_cmp(w)),
        (_, TypedValue::Timestamp(w)) => stored
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|s| s.with_timezone(&Utc).cmp(w)),
        (_, TypedValue::Date(w)) => stored
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|s| s.cmp(w)),
        (FieldType::Object | FieldType::Array | FieldType::StringArray, TypedValue::Json(w)) => {
            json_equal(stored, w).then_some(Ordering::Equal)
        }
        _ => None,
    }
}

/// `__contains`: substring for text (case-sensitive, `strpos`), jsonb containment for objects,
/// element containment for arrays (`col @> jsonb_build_array(v)`).
fn contains(field: &Field, stored: &Value, wanted: &TypedValue) -> bool {
    match (field.ty, wanted) {
        (FieldType::Text | FieldType::Enum(_), TypedValue::Text(w)) => {
            stored.as_str().is_some_and(|s| s.contains(w.as_str()))
        }
        (FieldType::Object, TypedValue::Json(w)) => jsonb_contains(stored, w),
        (_, TypedValue::Json(w)) => jsonb_contains(stored, &Value::Array(vec![w.clone()])),
        _ => false,
    }
}

/// jsonb equality: numbers by value (`1` = `1.0`), objects regardless of key order.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Postgres's `@>` on jsonb: an object contains an object when every key of the right side is
/// contained; an array contains an array when every right element is contained by some left
/// element; an array also contains a bare scalar it has as an element.
fn jsonb_contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => y
            .iter()
            .all(|(k, w)| x.get(k).is_some_and(|v| jsonb_contains(v, w))),
        (Value::Array(x), Value::Array(y)) => {
            y.iter().all(|w| x.iter().any(|v| jsonb_contains(v, w)))
        }
        (Value::Array(x), scalar) if !scalar.is_object() => {
            x.iter().any(|v| !v.is_array() && json_equal(v, scalar))
        }
        _ => json_equal(a, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gt_store::catalog::{EPISODES, STREAMS};
    use gt_store::filter::parse_filter;
    use serde_json::json;

    fn m(r: &Resource, filter: &str, record: Value) -> bool {
        matches(r, &parse_filter(r, filter).unwrap(), &record)
    }

    #[test]
    fn equality_ranges_absence_and_search() {
        let rec = json!({"title": "Boss Fight", "duration": 90, "stream_date": "2024-03-01T10:00:00+00:00"});
        assert!(m(&STREAMS, r#"{"title":["x","Boss Fight"]}"#, rec.clone()));
        assert!(!m(&STREAMS, r#"{"title":"boss fight"}"#, rec.clone()));
        assert!(m(&STREAMS, r#"{"q":"BOSS"}"#, rec.clone()));
        assert!(m(
            &STREAMS,
            r#"{"duration__gte":90,"duration__lt":91}"#,
            rec.clone()
        ));
        assert!(!m(&STREAMS, r#"{"duration__gt":90}"#, rec.clone()));
        assert!(m(
            &STREAMS,
            r#"{"stream_date__gte":"2024-03-01"}"#,
            rec.clone()
        ));
        assert!(m(
            &STREAMS,
            r#"{"description":null,"description__exists":false}"#,
            rec.clone()
        ));
        // Null is distinct from a value; `__ne` of null means present.
        assert!(m(&STREAMS, r#"{"description__ne":"x"}"#, rec.clone()));
        assert!(!m(&STREAMS, r#"{"description__ne":null}"#, rec.clone()));
        // A comparison with an absent field is false (SQL NULL).
        assert!(!m(&STREAMS, r#"{"video_clip_count__lt":5}"#, rec));
    }

    #[test]
    fn json_containment_like_postgres() {
        let rec = json!({"tags": ["rust", "live"], "cut_list": {"a": {"b": 1, "c": [1, 2]}}});
        assert!(m(&EPISODES, r#"{"tags__contains":"rust"}"#, rec.clone()));
        assert!(!m(&EPISODES, r#"{"tags__contains":"ru"}"#, rec.clone()));
        assert!(m(
            &EPISODES,
            r#"{"cut_list__contains":{"a":{"c":[2]}}}"#,
            rec.clone()
        ));
        assert!(!m(
            &EPISODES,
            r#"{"cut_list__contains":{"a":{"b":2}}}"#,
            rec.clone()
        ));
        assert!(m(
            &EPISODES,
            r#"{"cut_list":{"a":{"c":[1,2],"b":1.0}}}"#,
            rec
        ));
    }
}

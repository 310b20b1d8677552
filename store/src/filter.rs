//! The `filter` query parameter of `GET /records/{resource}`: a JSON object whose keys are
//! field names with an optional operator suffix.
//!
//! | key | meaning |
//! |---|---|
//! | `field` | equals; an array value means any of (OR); `null` means absent |
//! | `field__ne` | not equal (to none of, for an array) |
//! | `field__gt`, `__gte`, `__lt`, `__lte` | ordered comparison (numbers, text, dates) |
//! | `field__exists` | `true`: present, `false`: absent |
//! | `field__contains` | substring for text; element for arrays; sub-object for objects |
//! | `q` | case-insensitive substring over the resource's text fields |
//!
//! All clauses are ANDed. Unknown fields, operators that make no sense for the field's type and
//! values of the wrong type are rejected with a message naming the key.

use serde_json::{Map, Value};

use crate::catalog::{Field, FieldType, Resource};
use crate::error::StoreError;
use crate::value::{TypedValue, typed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Exists,
    Contains,
}

impl Op {
    fn from_suffix(s: &str) -> Option<Op> {
        Some(match s {
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "exists" => Op::Exists,
            "contains" => Op::Contains,
            _ => return None,
        })
    }

    pub fn sql_comparison(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            _ => "=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// `field op value`, with several values meaning "any of" (for `Ne`: "none of").
    Compare {
        field: Field,
        op: Op,
        values: Vec<TypedValue>,
    },
    Exists {
        field: Field,
        present: bool,
    },
    /// Substring match on any of the resource's search fields.
    Search(String),
}

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(msg)
}

/// Parses the raw `filter` parameter.
pub fn parse_filter(resource: &Resource, raw: &str) -> Result<Vec<Clause>, StoreError> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "null" {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_str(raw).map_err(|e| invalid(format!("filter is not valid JSON: {e}")))?;
    if crate::value::has_nul(&value) {
        return Err(invalid("filter must not contain NUL characters".into()));
    }
    match value {
        Value::Object(map) => parse_filter_object(resource, &map),
        _ => Err(invalid("filter must be a JSON object".into())),
    }
}

pub fn parse_filter_object(
    resource: &Resource,
    map: &Map<String, Value>,
) -> Result<Vec<Clause>, StoreError> {
    let mut clauses = Vec::with_capacity(map.len());
    for (key, value) in map {
        clauses.push(parse_clause(resource, key, value)?);
    }
    Ok(clauses)
}

fn parse_clause(resource: &Resource, key: &str, value: &Value) -> Result<Clause, StoreError> {
    if key == "q" {
        if resource.search.is_empty() {
            return Err(invalid(format!(
                "filter 'q' is not supported for {}",
                resource.name
            )));
        }
        return match value {
            Value::String(s) => Ok(Clause::Search(s.clone())),
            _ => Err(invalid("filter 'q' must be a string".into())),
        };
    }
    let (name, op) = match key.rsplit_once("__") {
        Some((name, suffix)) => match Op::from_suffix(suffix) {
            Some(op) => (name, op),
            None => {
                return Err(invalid(format!(
                    "filter '{key}': unknown operator '__{suffix}' (use __gt, __gte, __lt, __lte, __ne, __exists or __contains)"
                )));
            }
        },
        None => (key, Op::Eq),
    };
    let field = resource.field(name).ok_or_else(|| {
        invalid(format!(
            "filter '{key}': {} has no field '{name}'",
            resource.name
        ))
    })?;

    match op {
        Op::Exists => match value {
            Value::Bool(present) => Ok(Clause::Exists {
                field,
                present: *present,
            }),
            _ => Err(invalid(format!("filter '{key}' must be true or false"))),
        },
        Op::Eq | Op::Ne => {
            // For scalar fields an array lists alternatives; a JSON field compares whole values.
            let values = match value {
                Value::Array(items) if !field.ty.is_json() => {
                    if items.is_empty() {
                        return Err(invalid(format!(
                            "filter '{key}': the list of values is empty"
                        )));
                    }
                    items
                        .iter()
                        .map(|v| typed(&field, v))
                        .collect::<Result<Vec<_>, _>>()?
                }
                v => vec![typed(&field, v)?],
            };
            Ok(Clause::Compare { field, op, values })
        }
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            if !field.ty.is_ordered() {
                return Err(invalid(format!(
                    "filter '{key}': field '{name}' is {}, which has no order",
                    field.ty.describe()
                )));
            }
            if value.is_null() || value.is_array() {
                return Err(invalid(format!(
                    "filter '{key}' needs a single value of the field's type"
                )));
            }
            Ok(Clause::Compare {
                field,
                op,
                values: vec![typed(&field, value)?],
            })
        }
        Op::Contains => {
            let one = |v: &Value| -> Result<TypedValue, StoreError> {
                match field.ty {
                    FieldType::Text | FieldType::Enum(_) => match v {
                        Value::String(s) => Ok(TypedValue::Text(s.clone())),
                        _ => Err(invalid(format!("filter '{key}' must be a string"))),
                    },
                    FieldType::StringArray => match v {
                        Value::String(_) => Ok(TypedValue::Json(v.clone())),
                        _ => Err(invalid(format!("filter '{key}' must be a string"))),
                    },
                    FieldType::Array if !v.is_null() => Ok(TypedValue::Json(v.clone())),
                    FieldType::Object if v.is_object() => Ok(TypedValue::Json(v.clone())),
                    _ => Err(invalid(format!(
                        "filter '{key}': __contains does not apply to field '{name}' ({})",
                        field.ty.describe()
                    ))),
                }
            };
            let values = match value {
                Value::Array(items) if !items.is_empty() => {
                    items.iter().map(one).collect::<Result<Vec<_>, _>>()?
                }
                v => vec![one(v)?],
            };
            Ok(Clause::Compare { field, op, values })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{EPISODES, PROFILES, STREAMS};

    fn parse(r: &Resource, s: &str) -> Result<Vec<Clause>, String> {
        parse_filter(r, s).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_and_null_filters_match_everything() {
        assert_eq!(parse(&STREAMS, "").unwrap(), vec![]);
        assert_eq!(parse(&STREAMS, "null").unwrap(), vec![]);
        assert_eq!(parse(&STREAMS, "{}").unwrap(), vec![]);
    }

    #[test]
    fn operators_and_alternatives() {
        let c = parse(
            &STREAMS,
            r#"{"title":["a","b"],"stream_date__gte":"2024-01-01","has_episodes__exists":false}"#,
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        assert!(c.iter().any(|c| matches!(c,
            Clause::Compare { field, op: Op::Eq, values } if field.name == "title" && values.len() == 2)));
        assert!(c.iter().any(|c| matches!(c,
            Clause::Compare { field, op: Op::Gte, .. } if field.name == "stream_date")));
        assert!(c.iter().any(|c| matches!(c,
            Clause::Exists { field, present: false } if field.name == "has_episodes")));
        let c = parse(&EPISODES, r#"{"tags__contains":"rust","q":"boss"}"#).unwrap();
        assert!(c.contains(&Clause::Search("boss".into())));
    }

    #[test]
    fn bad_filters_are_rejected_with_the_offending_key() {
        for (f, want) in [
            ("{", "not valid JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"nope":1}"#, "has no field 'nope'"),
            (r#"{"title__like":"x"}"#, "unknown operator '__like'"),
            (r#"{"has_episodes":"yes"}"#, "must be a boolean"),
            (r#"{"has_episodes__gt":true}"#, "has no order"),
            (r#"{"title__exists":1}"#, "must be true or false"),
            (r#"{"title":[]}"#, "empty"),
            (r#"{"video_clip_count__lt":null}"#, "single value"),
            (r#"{"duration__contains":1}"#, "does not apply"),
            (r#"{"q":5}"#, "must be a string"),
        ] {
            let e = parse(&STREAMS, f).unwrap_err();
            assert!(e.contains(want), "{f}: {e}");
        }
        assert!(
            parse(&PROFILES, r#"{"q":"x"}"#)
                .unwrap_err()
                .contains("not supported")
        );
    }
}

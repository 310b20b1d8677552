//! Validation of record writes (create bodies and PUT patches) against the catalog.

use serde_json::{Map, Value};

use crate::catalog::{Field, Resource};
use crate::error::StoreError;
use crate::value::{TypedValue, typed};

/// Longest id a client may choose. Ids appear in URLs and workflow ids.
pub const MAX_ID_LEN: usize = 512;

/// A validated write: the id (for creates) and the typed column values to set.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub id: Option<String>,
    pub values: Vec<(Field, TypedValue)>,
    /// Server-managed fields the body named (e.g. `access_token`: rotate it).
    pub touched_server_fields: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind<'a> {
    Create,
    /// Merge into the record with this id.
    Update(&'a str),
}

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(msg)
}

pub fn check_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() {
        return Err(invalid("id must not be empty".into()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid(format!("id is longer than {MAX_ID_LEN} bytes")));
    }
    if id.chars().any(char::is_control) {
        return Err(invalid("id must not contain control characters".into()));
    }
    Ok(())
}

/// Validates one body. Fields the server owns (`user_id`, `created_at`, `updated_at`) are
/// ignored: the front end's edit forms send whole records back.
pub fn validate_write(
    resource: &Resource,
    body: &Value,
    kind: WriteKind<'_>,
) -> Result<Write, StoreError> {
    let map: &Map<String, Value> = body
        .as_object()
        .ok_or_else(|| invalid(format!("a {} record must be a JSON object", resource.name)))?;
    let mut id = None;
    let mut values = Vec::with_capacity(map.len());
    let mut touched = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "id" => match (kind, value) {
                (WriteKind::Create, Value::String(s)) => {
                    check_id(s)?;
                    id = Some(s.clone());
                }
                (WriteKind::Create, Value::Null) => {}
                (WriteKind::Update(current), Value::String(s)) if s == current => {}
                (WriteKind::Update(_), Value::Null) => {}
                (WriteKind::Update(_), _) => {
                    return Err(invalid("id cannot be changed".into()));
                }
                (WriteKind::Create, _) => return Err(invalid("id must be a string".into())),
            },
            "user_id" | "created_at" | "updated_at" => {}
            name => {
                let field = resource
                    .field(name)
                    .ok_or_else(|| invalid(format!("{} has no field '{name}'", resource.name)))?;
                if resource.server_managed.contains(&field.name) {
                    touched.push(field.name);
                    continue;
                }
                let v = typed(&field, value)?;
                if field.required && v == TypedValue::Null {
                    return Err(invalid(format!("field '{name}' must not be null")));
                }
                values.push((field, v));
            }
        }
    }
    if kind == WriteKind::Create {
        for field in resource.fields.iter().filter(|f| f.required) {
            if !values.iter().any(|(f, _)| f.name == field.name) {
                return Err(invalid(format!(
                    "field '{}' is required for {}",
                    field.name, resource.name
                )));
            }
        }
        if let Some(id_field) = resource.id_field {
            let natural = values.iter().find_map(|(f, v)| match v {
                TypedValue::Text(s) if f.name == id_field => Some(s.clone()),
                _ => None,
            });
            if let Some(natural) = natural {
                check_id(&natural)?;
                if id.as_ref().is_some_and(|i| *i != natural) {
                    return Err(invalid(format!(
                        "id of a {} record is its '{id_field}'; they differ",
                        resource.name
                    )));
                }
                id = Some(natural);
            }
        }
    } else if let Some(id_field) = resource.id_field
        && values.iter().any(|(f, _)| f.name == id_field)
    {
        // The natural key is the id; changing it would orphan the row's identity.
        let WriteKind::Update(current) = kind else {
            unreachable!()
        };
        let same = values
            .iter()
            .any(|(f, v)| f.name == id_field && *v == TypedValue::Text(current.to_string()));
        if !same {
            return Err(invalid(format!("'{id_field}' cannot be changed")));
        }
    }
    Ok(Write {
        id,
        values,
        touched_server_fields: touched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{SERIES, STREAM_WIDGETS, STREAMS, VIDEO_CLIPS};
    use serde_json::json;

    fn err(r: &Resource, v: Value, k: WriteKind<'_>) -> String {
        validate_write(r, &v, k).unwrap_err().to_string()
    }

    #[test]
    fn server_owned_fields_are_ignored_and_unknown_ones_rejected() {
        let w = validate_write(
            &STREAMS,
            &json!({"title": "t", "user_id": "someone-else", "created_at": "x"}),
            WriteKind::Create,
        )
        .unwrap();
        assert_eq!(w.values.len(), 1);
        assert!(err(&STREAMS, json!({"bogus": 1}), WriteKind::Create).contains("no field 'bogus'"));
        assert!(err(&STREAMS, json!([1]), WriteKind::Create).contains("JSON object"));
    }

    #[test]
    fn required_fields_and_ids() {
        assert!(
            err(&SERIES, json!({"description": "d"}), WriteKind::Create)
                .contains("'title' is required")
        );
        assert!(
            err(&SERIES, json!({"title": null}), WriteKind::Update("x")).contains("not be null")
        );
        assert!(err(&STREAMS, json!({"id": 5}), WriteKind::Create).contains("must be a string"));
        assert!(err(&STREAMS, json!({"id": ""}), WriteKind::Create).contains("empty"));
        assert!(
            err(&STREAMS, json!({"id": "b"}), WriteKind::Update("a")).contains("cannot be changed")
        );
        let w = validate_write(
            &STREAMS,
            &json!({"id": "a", "title": "x"}),
            WriteKind::Update("a"),
        )
        .unwrap();
        assert_eq!(w.id, None);
    }

    #[test]
    fn video_clips_are_keyed_by_their_blob_key() {
        let w =
            validate_write(&VIDEO_CLIPS, &json!({"key": "s/a.mkv"}), WriteKind::Create).unwrap();
        assert_eq!(w.id.as_deref(), Some("s/a.mkv"));
        assert!(
            err(
                &VIDEO_CLIPS,
                json!({"key": "s/a.mkv", "id": "other"}),
                WriteKind::Create
            )
            .contains("differ")
        );
        assert!(
            err(
                &VIDEO_CLIPS,
                json!({"key": "s/b.mkv"}),
                WriteKind::Update("s/a.mkv")
            )
            .contains("cannot be changed")
        );
    }

    #[test]
    fn widget_tokens_are_not_client_values() {
        let w = validate_write(
            &STREAM_WIDGETS,
            &json!({"title": "t", "type": "countdown", "access_token": "mine"}),
            WriteKind::Create,
        )
        .unwrap();
        assert_eq!(w.touched_server_fields, vec!["access_token"]);
        assert!(w.values.iter().all(|(f, _)| f.name != "access_token"));
    }
}

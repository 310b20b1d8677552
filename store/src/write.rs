//! Validation of record writes (create bodies and PUT patches) against the catalog.

use serde_json::{Map, Value};

use chrono::{DateTime, LocalResult, TimeZone};
use chrono_tz::Tz;

use crate::catalog::{Field, FieldType, Resource};
use crate::error::StoreError;
use crate::value::{TypedValue, parse_local_timestamp, typed};

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

/// A write the server makes itself (the pipeline's derived fields: a probe, a speech map, a
/// review status), for record stores that keep records as documents: every named field of the
/// resource is typed and checked like a client's, server-managed ones included. Never call it
/// with a client's body: that is what [`validate_write`] is for.
pub fn server_write(resource: &Resource, body: &Map<String, Value>) -> Result<Write, StoreError> {
    let mut values = Vec::with_capacity(body.len());
    for (name, value) in body {
        let field = resource
            .field(name)
            .ok_or_else(|| invalid(format!("{} has no field '{name}'", resource.name)))?;
        values.push((field, typed(&field, value)?));
    }
    Ok(Write {
        id: None,
        values,
        touched_server_fields: Vec::new(),
    })
}

/// The date-time fields of `body` (one record) written without a zone, like a
/// `datetime-local` input's `2024-03-01T20:30`. Strings that are not date-times are left to
/// [`validate_write`] to reject.
fn local_times<'a>(resource: &Resource, body: &'a Value) -> Vec<(&'a str, &'a str)> {
    let Some(map) = body.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| {
            resource
                .field(k)
                .is_some_and(|f| f.ty == FieldType::Timestamp)
        })
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .filter(|(_, s)| DateTime::parse_from_rfc3339(s).is_err())
        .filter(|(_, s)| parse_local_timestamp(s).is_some())
        .collect()
}

/// Whether `body` has a date-time without zone (so the caller needs the user's time zone).
pub fn has_local_times(resource: &Resource, body: &Value) -> bool {
    !local_times(resource, body).is_empty()
}

/// Places the zone-less date-times of `body` in `zone` (an IANA name, the user's profile
/// time zone) and rewrites them as RFC 3339 with that offset, so what is stored is one instant.
/// Without a zone they stay as they are and mean UTC ([`crate::value::parse_timestamp`]).
///
/// A time that does not exist in the zone (the hour the clocks skip) or exists twice (the hour
/// they repeat), or a profile zone that is not an IANA name, is an error naming the field:
/// guessing would store a wrong instant.
pub fn resolve_local_times(
    resource: &Resource,
    body: &mut Value,
    zone: Option<&str>,
) -> Result<(), StoreError> {
    let Some(zone) = zone.map(str::trim).filter(|z| !z.is_empty()) else {
        return Ok(());
    };
    let found: Vec<(String, String)> = local_times(resource, body)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    let tz: Tz = zone.parse().map_err(|_| {
        invalid(format!(
            "field '{}' has no time zone, and the profile's timezone {zone:?} is not an IANA \
             time zone name (such as Europe/Berlin): send the time with an offset or fix the profile",
            found[0].0
        ))
    })?;
    // All resolved before any is written: an error leaves the body as it was.
    let mut resolved = Vec::with_capacity(found.len());
    for (name, text) in found {
        let naive = parse_local_timestamp(&text).expect("filtered by local_times");
        let at = match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => t,
            LocalResult::Ambiguous(..) => {
                return Err(invalid(format!(
                    "field '{name}': {text} happens twice in {zone} (the clocks go back that \
                     night); send it with an offset"
                )));
            }
            LocalResult::None => {
                return Err(invalid(format!(
                    "field '{name}': {text} does not exist in {zone} (the clocks skip that \
                     hour); send it with an offset"
                )));
            }
        };
        resolved.push((name, at.to_rfc3339()));
    }
    for (name, text) in resolved {
        body[name.as_str()] = Value::String(text);
    }
    Ok(())
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

    #[test]
    fn zone_less_times_are_placed_in_the_profile_zone() {
        let mut body = json!({"title": "t", "stream_date": "2024-07-01T20:30"});
        assert!(has_local_times(&STREAMS, &body));
        resolve_local_times(&STREAMS, &mut body, Some("America/New_York")).unwrap();
        // New York is UTC-4 in July.
        assert_eq!(body["stream_date"], "2024-07-01T20:30:00-04:00");
        assert!(!has_local_times(&STREAMS, &body));
        // With a zone already, or without a profile zone, nothing changes.
        let mut zoned = json!({"stream_date": "2024-07-01T20:30:00Z"});
        resolve_local_times(&STREAMS, &mut zoned, Some("Asia/Tokyo")).unwrap();
        assert_eq!(zoned["stream_date"], "2024-07-01T20:30:00Z");
        let mut plain = json!({"stream_date": "2024-07-01T20:30"});
        resolve_local_times(&STREAMS, &mut plain, None).unwrap();
        assert_eq!(plain["stream_date"], "2024-07-01T20:30");
        // Text fields that look like times are not touched.
        let mut title = json!({"title": "2024-07-01T20:30"});
        resolve_local_times(&STREAMS, &mut title, Some("Asia/Tokyo")).unwrap();
        assert_eq!(title["title"], "2024-07-01T20:30");
    }

    #[test]
    fn skipped_repeated_and_unknown_zones_are_errors() {
        let e = |text: &str, zone: &str| {
            let mut b = json!({"stream_date": text});
            let before = b.clone();
            let msg = resolve_local_times(&STREAMS, &mut b, Some(zone))
                .unwrap_err()
                .to_string();
            assert_eq!(b, before, "nothing is rewritten on error");
            msg
        };
        // 2024-03-10 02:30 never happens in New York; 2024-11-03 01:30 happens twice.
        assert!(e("2024-03-10T02:30", "America/New_York").contains("does not exist"));
        assert!(e("2024-11-03T01:30", "America/New_York").contains("happens twice"));
        assert!(e("2024-11-03T01:30", "Mars/Olympus").contains("not an IANA"));
    }
}

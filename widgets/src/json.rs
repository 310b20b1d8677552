//! Small typed readers for JSON objects (configs and payloads) whose errors name the field, so a
//! streamer sees "`width` must be an integer" rather than serde's positionless message.

use serde::Serialize;
use serde_json::{Map, Value};

pub(crate) fn to_value<T: Serialize>(v: &T) -> Value {
    // Our state structs hold only strings, numbers, bools and chrono times: always serializable.
    serde_json::to_value(v).expect("widget state serializes to JSON")
}

/// Shortened rendering of a JSON value for error messages.
pub(crate) fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// The fields of a JSON object; `null` counts as an empty object. A field set to `null` counts
/// as absent (the default applies).
pub(crate) struct Fields<'a>(Option<&'a Map<String, Value>>);

impl<'a> Fields<'a> {
    pub(crate) fn of(v: &'a Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(Fields(None)),
            Value::Object(m) => Ok(Fields(Some(m))),
            other => Err(format!("must be a JSON object, got {}", show(other))),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.0?.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.0.is_some_and(|m| m.contains_key(key))
    }

    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be a number, got {}", show(v))),
        }
    }

    /// An integer; `30.0` counts (JavaScript numbers), `30.5` does not.
    pub(crate) fn i64(&self, key: &str) -> Result<Option<i64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
                        .map(|x| x as i64)
                })
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be a whole number, got {}", show(v))),
        }
    }

    pub(crate) fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(format!("`{key}` must be a string, got {}", show(v))),
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(format!("`{key}` must be true or false, got {}", show(v))),
        }
    }

    pub(crate) fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(format!("`{key}` must be a list, got {}", show(v))),
        }
    }

    /// A string field that is at most `max` characters.
    pub(crate) fn short_str(&self, key: &str, max: usize) -> Result<Option<&'a str>, String> {
        let s = self.str(key)?;
        if let Some(s) = s {
            let n = s.chars().count();
            if n > max {
                return Err(format!(
                    "`{key}` is {n} characters long; the limit is {max}"
                ));
            }
        }
        Ok(s)
    }
}

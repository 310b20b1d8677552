//! Appearance config shared by all kinds: canvas size, font, colours, background.

use serde_json::Value;

use crate::json::Fields;

pub const WIDTH_RANGE: std::ops::RangeInclusive<i64> = 100..=3840;
pub const HEIGHT_RANGE: std::ops::RangeInclusive<i64> = 100..=2160;
/// Upper bound for `fontSize` (rem): beyond this nothing fits on a 4K canvas anyway.
pub const MAX_FONT_SIZE_REM: f64 = 100.0;
const MAX_CSS_VALUE_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Appearance {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub font_size: Option<f64>,
    pub font_family: Option<String>,
    /// Default white on the page.
    pub text_color: Option<String>,
    pub background_color: Option<String>,
    /// Default false: OBS pages are transparent.
    pub show_background: bool,
}

impl Appearance {
    /// Reads the appearance fields of any widget config; the error names the field.
    pub fn from_config(config: &Value) -> Result<Self, String> {
        let f = Fields::of(config).map_err(|e| format!("config {e}"))?;
        let dim =
            |key: &str, range: std::ops::RangeInclusive<i64>| -> Result<Option<u32>, String> {
                match f.i64(key)? {
                    None => Ok(None),
                    Some(v) if range.contains(&v) => Ok(Some(v as u32)),
                    Some(v) => Err(format!(
                        "`{key}` must be {}..={} px, got {v}",
                        range.start(),
                        range.end()
                    )),
                }
            };
        let font_size = match f.f64("fontSize")? {
            Some(v) if !(v > 0.0 && v <= MAX_FONT_SIZE_REM) => {
                return Err(format!(
                    "`fontSize` must be more than 0 and at most {MAX_FONT_SIZE_REM} rem, got {v}"
                ));
            }
            v => v,
        };
        Ok(Appearance {
            width: dim("width", WIDTH_RANGE)?,
            height: dim("height", HEIGHT_RANGE)?,
            font_size,
            font_family: css_value(&f, "fontFamily")?,
            text_color: css_value(&f, "textColor")?,
            background_color: css_value(&f, "backgroundColor")?,
            show_background: f.bool("showBackground")?.unwrap_or(false),
        })
    }
}

/// A string that the page puts into a CSS declaration: it must not be able to end the
/// declaration or pull in remote resources (the page has no external dependencies).
fn css_value(f: &Fields<'_>, key: &str) -> Result<Option<String>, String> {
    let Some(s) = f.short_str(key, MAX_CSS_VALUE_CHARS)? else {
        return Ok(None);
    };
    if s.chars()
        .any(|c| matches!(c, ';' | '{' | '}' | '<' | '>' | '\\') || c.is_control())
        || s.to_ascii_lowercase().contains("url(")
        || s.to_ascii_lowercase().contains("@import")
    {
        return Err(format!(
            "`{key}` must be a plain CSS value (no ; {{ }} < > \\ url() or @import), got {s:?}"
        ));
    }
    Ok(Some(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_all_fields_and_defaults() {
        assert_eq!(
            Appearance::from_config(&json!({})).unwrap(),
            Appearance::default()
        );
        let a = Appearance::from_config(&json!({
            "width": 100, "height": 2160, "fontSize": 1.5, "fontFamily": "'DejaVu Sans', sans-serif",
            "textColor": "white", "backgroundColor": "#00000080", "showBackground": true, "title": "x"
        }))
        .unwrap();
        assert_eq!(a.width, Some(100));
        assert_eq!(a.height, Some(2160));
        assert_eq!(a.font_size, Some(1.5));
        assert_eq!(a.font_family.as_deref(), Some("'DejaVu Sans', sans-serif"));
        assert!(a.show_background);
        // JavaScript sends whole numbers as 1920.0 sometimes.
        assert_eq!(
            Appearance::from_config(&json!({"width": 1920.0}))
                .unwrap()
                .width,
            Some(1920)
        );
    }

    #[test]
    fn rejects_out_of_range_and_injection() {
        for (cfg, field) in [
            (json!({"width": 3841}), "width"),
            (json!({"width": 99}), "width"),
            (json!({"width": 640.5}), "width"),
            (json!({"height": 99}), "height"),
            (json!({"height": 2161}), "height"),
            (json!({"fontSize": -1}), "fontSize"),
            (json!({"fontSize": 101}), "fontSize"),
            (json!({"fontSize": "2rem"}), "fontSize"),
            (json!({"fontFamily": "x} body{display:none"}), "fontFamily"),
            (
                json!({"backgroundColor": "URL(https://evil/x.png)"}),
                "backgroundColor",
            ),
            (json!({"textColor": "red</style>"}), "textColor"),
            (json!({"textColor": 3}), "textColor"),
            (json!({"showBackground": 1}), "showBackground"),
        ] {
            let e = Appearance::from_config(&cfg).unwrap_err();
            assert!(e.contains(field), "{cfg}: {e}");
        }
        assert!(Appearance::from_config(&json!("x")).is_err());
    }
}

//! OpenTimelineIO: serde types for the schema subset we write (`Timeline.1`, `Stack.1`,
//! `Track.1`, `Clip.2`, `Gap.1`, `Transition.1`, `Marker.2`, `ExternalReference.1`,
//! `RationalTime.1`, `TimeRange.1`), every field emitted as the reference writers do, and the
//! episode as a timeline.
//!
//! Layout: a video track and an audio track with the same items (clips without video leave a
//! gap in the video track), overlays on video tracks of their own above, chapters and
//! highlights as markers on the stack (timeline time, at the timeline rate: the first item's).
//! Each clip's times are in its own source's rate. Crossfades are `SMPTE_Dissolve`
//! transitions at the cut with `in_offset` 0 and `out_offset` the fade (the outgoing clip's
//! hidden frames are its handle; see [`crate::timeline`]); a fade from black is a transition
//! after a zero-length gap, a fade to black a transition into a gap as long as the fade.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::rational::{FrameRate, Rational};
use crate::timeline::{EpisodeTimeline, FadeIn, MarkerKind, SourceMedia};

/// Key of the one media reference each clip has.
pub const DEFAULT_MEDIA: &str = "DEFAULT_MEDIA";
/// Metadata namespace for what we add.
pub const METADATA_KEY: &str = "glowing_telegram";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "OTIO_SCHEMA", rename = "RationalTime.1")]
pub struct RationalTime {
    pub rate: f64,
    pub value: f64,
}

impl RationalTime {
    pub fn frames(value: i128, rate: FrameRate) -> Self {
        Self {
            rate: rate.to_f64(),
            value: value as f64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "OTIO_SCHEMA", rename = "TimeRange.1")]
pub struct TimeRange {
    pub start_time: RationalTime,
    pub duration: RationalTime,
}

impl TimeRange {
    pub fn frames(start: i128, duration: i128, rate: FrameRate) -> Self {
        Self {
            start_time: RationalTime::frames(start, rate),
            duration: RationalTime::frames(duration, rate),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "OTIO_SCHEMA", rename = "Timeline.1")]
pub struct Timeline {
    pub name: String,
    pub metadata: Map<String, Value>,
    pub global_start_time: Option<RationalTime>,
    pub tracks: Stack,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "OTIO_SCHEMA", rename = "Stack.1")]
pub struct Stack {
    pub name: String,
    pub metadata: Map<String, Value>,
    pub source_range: Option<TimeRange>,
    pub effects: Vec<Value>,
    pub markers: Vec<Marker>,
    pub enabled: bool,
    pub children: Vec<Track>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrackKind {
    Video,
    Audio,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "OTIO_SCHEMA", rename = "Track.1")]
pub struct Track {
    pub name: String,
    pub metadata: Map<String, Value>,
    pub source_range: Option<TimeRange>,
    pub effects: Vec<Value>,
    pub markers: Vec<Marker>,
    pub enabled: bool,
    pub children: Vec<Item>,
    pub kind: TrackKind,
}

/// What a track holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "OTIO_SCHEMA")]
pub enum Item {
    #[serde(rename = "Clip.2")]
    Clip(Clip),
    #[serde(rename = "Gap.1")]
    Gap(Gap),
    #[serde(rename = "Transition.1")]
    Transition(Transition),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    pub name: String,
    pub metadata: Map<String, Value>,
    pub source_range: Option<TimeRange>,
    pub effects: Vec<Value>,
    pub markers: Vec<Marker>,
    pub enabled: bool,
    pub media_references: BTreeMap<String, MediaReference>,
    pub active_media_reference_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "OTIO_SCHEMA")]
pub enum MediaReference {
    #[serde(rename = "ExternalReference.1")]
    External(ExternalReference),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalReference {
    pub name: String,
    pub metadata: Map<String, Value>,
    pub target_url: String,
    pub available_range: Option<TimeRange>,
    pub available_image_bounds: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub name: String,
    pub metadata: Map<String, Value>,
    pub source_range: Option<TimeRange>,
    pub effects: Vec<Value>,
    pub markers: Vec<Marker>,
    pub enabled: bool,
}

/// Transition types OTIO names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransitionType {
    #[serde(rename = "SMPTE_Dissolve")]
    SmpteDissolve,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub name: String,
    pub metadata: Map<String, Value>,
    pub transition_type: TransitionType,
    pub in_offset: RationalTime,
    pub out_offset: RationalTime,
}

/// Marker colours (a subset of OTIO's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MarkerColor {
    Red,
    Green,
    Blue,
    Yellow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "OTIO_SCHEMA", rename = "Marker.2")]
pub struct Marker {
    pub name: String,
    pub metadata: Map<String, Value>,
    pub color: MarkerColor,
    pub comment: String,
    pub marked_range: TimeRange,
}

fn ours(value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(METADATA_KEY.into(), value);
    m
}

fn gap(frames: i128, rate: FrameRate) -> Item {
    Item::Gap(Gap {
        name: String::new(),
        metadata: Map::new(),
        source_range: Some(TimeRange::frames(0, frames, rate)),
        effects: vec![],
        markers: vec![],
        enabled: true,
    })
}

fn dissolve(name: &str, frames: u64, rate: FrameRate) -> Item {
    Item::Transition(Transition {
        name: name.into(),
        metadata: Map::new(),
        transition_type: TransitionType::SmpteDissolve,
        in_offset: RationalTime::frames(0, rate),
        out_offset: RationalTime::frames(i128::from(frames), rate),
    })
}

fn clip(media: &SourceMedia, start: u64, frames: u64, item: Option<usize>) -> Item {
    let rate = media.rate;
    let reference = MediaReference::External(ExternalReference {
        name: media.name.clone(),
        metadata: Map::new(),
        target_url: media.url.clone(),
        available_range: media
            .duration_frames
            .map(|d| TimeRange::frames(0, i128::from(d), rate)),
        available_image_bounds: None,
    });
    Item::Clip(Clip {
        name: media.name.clone(),
        metadata: ours(json!({"clip_key": media.key, "output_item": item})),
        source_range: Some(TimeRange::frames(
            i128::from(start),
            i128::from(frames),
            rate,
        )),
        effects: vec![],
        markers: vec![],
        enabled: true,
        media_references: BTreeMap::from([(DEFAULT_MEDIA.to_string(), reference)]),
        active_media_reference_key: DEFAULT_MEDIA.into(),
    })
}

fn track(name: &str, kind: TrackKind, children: Vec<Item>) -> Track {
    Track {
        name: name.into(),
        metadata: Map::new(),
        source_range: None,
        effects: vec![],
        markers: vec![],
        enabled: true,
        children,
        kind,
    }
}

/// The main track's items for `kind` (see the module docs).
fn main_items(t: &EpisodeTimeline, kind: TrackKind) -> Vec<Item> {
    let mut items = Vec::new();
    for (i, p) in t.placements.iter().enumerate() {
        let media = &t.media[p.media];
        match p.fade_in {
            Some(FadeIn::FromBlack { frames }) => {
                items.push(gap(0, p.rate));
                items.push(dissolve("fade in", frames, p.rate));
            }
            Some(FadeIn::Crossfade { frames }) => {
                items.push(dissolve("crossfade", frames, p.rate));
            }
            None => {}
        }
        let fade_out = p.fade_out.unwrap_or(0);
        let shown = p.visible_frames() - fade_out;
        if kind == TrackKind::Video && !media.has_video {
            items.push(gap(i128::from(shown), p.rate));
        } else {
            items.push(clip(media, p.start_frame, shown, Some(i)));
        }
        if fade_out > 0 {
            items.push(dissolve("fade out", fade_out, p.rate));
            items.push(gap(i128::from(fade_out), p.rate));
        }
    }
    items
}

/// Seconds as a frame count at `rate`, rounded.
fn at(rate: FrameRate, seconds: Rational) -> i128 {
    rate.frames(seconds)
}

/// The episode as an OpenTimelineIO timeline.
pub fn timeline(t: &EpisodeTimeline) -> Timeline {
    let rate = t.rate();
    let mut tracks = vec![
        track("Video 1", TrackKind::Video, main_items(t, TrackKind::Video)),
        track("Audio 1", TrackKind::Audio, main_items(t, TrackKind::Audio)),
    ];
    for i in 0..t.overlays.len() {
        let (media, start, end) = t.overlay_section(i);
        let o = &t.overlays[i];
        let mut c = clip(&t.media[media], start, end - start, None);
        if let Item::Clip(c) = &mut c {
            c.metadata = ours(
                json!({"clip_key": t.media[media].key, "overlay": o.kind, "x": o.x, "y": o.y}),
            );
        }
        tracks.insert(
            1 + i,
            track(
                &format!("Overlay {}", i + 1),
                TrackKind::Video,
                vec![gap(i128::from(o.start_frame), rate), c],
            ),
        );
    }
    let markers = t
        .markers()
        .into_iter()
        .map(|m| Marker {
            name: m.name,
            metadata: ours(json!({"kind": match m.kind {
                MarkerKind::Chapter => "chapter",
                MarkerKind::Highlight => "highlight",
            }})),
            color: match m.kind {
                MarkerKind::Chapter => MarkerColor::Red,
                MarkerKind::Highlight => MarkerColor::Yellow,
            },
            comment: m.comment,
            marked_range: TimeRange::frames(at(rate, m.start), at(rate, m.duration), rate),
        })
        .collect();
    Timeline {
        name: t.title.clone(),
        metadata: Map::new(),
        global_start_time: Some(RationalTime::frames(0, rate)),
        tracks: Stack {
            name: "tracks".into(),
            metadata: Map::new(),
            source_range: None,
            effects: vec![],
            markers,
            enabled: true,
            children: tracks,
        },
    }
}

/// The episode as `.otio` JSON.
pub fn to_otio_json(t: &EpisodeTimeline) -> String {
    serde_json::to_string_pretty(&timeline(t)).expect("OTIO types always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_and_floats_are_as_otio_writes_them() {
        let rate = FrameRate::new(60, 1).unwrap();
        let v = serde_json::to_value(TimeRange::frames(3600, 1200, rate)).unwrap();
        assert_eq!(
            v,
            json!({"OTIO_SCHEMA": "TimeRange.1",
                "start_time": {"OTIO_SCHEMA": "RationalTime.1", "rate": 60.0, "value": 3600.0},
                "duration": {"OTIO_SCHEMA": "RationalTime.1", "rate": 60.0, "value": 1200.0}})
        );
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains("\"rate\":60.0"), "{text}");
        let g = serde_json::to_value(gap(5, rate)).unwrap();
        assert_eq!(g["OTIO_SCHEMA"], "Gap.1");
        let d = serde_json::to_value(dissolve("x", 3, rate)).unwrap();
        assert_eq!(d["transition_type"], "SMPTE_Dissolve");
        // Reading back gives the same value.
        let back: Item = serde_json::from_value(d.clone()).unwrap();
        assert_eq!(serde_json::to_value(back).unwrap(), d);
    }
}

//! Chat activity of a stream and its peaks: highlight candidates from what chat did.
//!
//! Chat is aligned to stream time by the stream's start (`stream_date`, set from Twitch's
//! `stream.online`): a message's stream time is its EventSub timestamp minus that start. The
//! stream is cut into bins; each bin's activity weighs unique chatters most (one spammer is not
//! a moment), then further messages, emotes, and `!clip`/`!highlight` commands. A peak is a run
//! of bins whose activity stands out from the stream's usual rate by a robust z-score (median
//! and MAD, so a busy stream's baseline is its own), with enough messages to mean something.
//! Peaks are kept strongest first, at least `min_gap` apart.

use std::collections::{HashMap, HashSet};

use gt_types::chat::{ChatHistoryLine, ChatPeak};

/// A chat line in stream seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChat {
    pub at: f64,
    pub user: String,
    pub message: String,
    pub emotes: u32,
    /// The emotes' names: chat's words for a reaction, preferred for a peak's label.
    pub emote_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeakParams {
    /// Bin length, seconds.
    pub bin: f64,
    /// Robust z-score a bin must reach.
    pub threshold: f64,
    /// Messages a peak needs at least.
    pub min_messages: u32,
    /// Closest two peaks may be, seconds.
    pub min_gap: f64,
    pub max_peaks: usize,
}

impl Default for PeakParams {
    fn default() -> Self {
        Self {
            bin: 10.0,
            threshold: 3.5,
            min_messages: 5,
            min_gap: 30.0,
            max_peaks: 30,
        }
    }
}

/// How long chat takes to react to a moment: a peak's moment is this much before the burst.
pub const CHAT_REACTION_SECONDS: f64 = 5.0;

fn is_command(message: &str) -> bool {
    let m = message.trim_start().to_lowercase();
    m.starts_with("!clip") || m.starts_with("!highlight") || m.contains("clip it")
}

#[derive(Default, Clone)]
struct Bin {
    /// Messages per chatter.
    users: HashMap<String, u32>,
    emotes: u32,
    /// Chatters who asked for a clip (each counts once).
    commanders: HashSet<String>,
}

impl Bin {
    /// Unique chatters, plus half a point for each chatter's second and third message (more
    /// from one chatter count nothing: a spammer is not a moment), emotes, commands.
    fn activity(&self) -> f64 {
        let unique = self.users.len() as f64;
        let repeats: u32 = self.users.values().map(|n| (n - 1).min(2)).sum();
        unique
            + 0.5 * repeats as f64
            + 0.25 * self.emotes.min(3 * self.users.len() as u32) as f64
            + 3.0 * self.commanders.len() as f64
    }
}

fn median(sorted: &[f64]) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

const STOPWORDS: &[&str] = &[
    "the", "and", "you", "that", "this", "for", "are", "was", "with", "have", "just", "what",
    "its", "it's", "lol", "but", "not", "all", "can", "get", "got", "out", "one", "omg",
];

/// The word or emote chat used most in these lines (commands and stop words left out); an
/// emote counts twice, being chat's way of reacting.
fn label(lines: &[&StreamChat]) -> String {
    let mut counts: HashMap<String, (u32, usize)> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        if is_command(&line.message) {
            continue;
        }
        let mut seen = HashSet::new();
        for word in line.message.split_whitespace() {
            let w: String = word
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_string();
            let key = w.to_lowercase();
            if w.chars().count() < 3 || STOPWORDS.contains(&key.as_str()) || !seen.insert(key) {
                continue;
            }
            let weight = if line.emote_names.contains(&w) { 2 } else { 1 };
            let entry = counts.entry(w).or_insert((0, i));
            entry.0 += weight;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| {
            a.1.0
                .cmp(&b.1.0)
                .then(b.1.1.cmp(&a.1.1))
                .then(b.0.cmp(&a.0))
        })
        .map(|(w, _)| w)
        .unwrap_or_default()
}

/// The peaks of a stream `duration` seconds long, in stream order.
pub fn chat_peaks(lines: &[StreamChat], duration: f64, params: &PeakParams) -> Vec<ChatPeak> {
    if lines.is_empty() || duration <= 0.0 || params.bin <= 0.0 {
        return Vec::new();
    }
    let count = (duration / params.bin).ceil() as usize;
    let mut bins = vec![Bin::default(); count.max(1)];
    for line in lines {
        if !(0.0..duration).contains(&line.at) {
            continue;
        }
        let b = &mut bins[((line.at / params.bin) as usize).min(count - 1)];
        *b.users.entry(line.user.clone()).or_default() += 1;
        b.emotes += line.emotes;
        if is_command(&line.message) {
            b.commanders.insert(line.user.clone());
        }
    }
    let activity: Vec<f64> = bins.iter().map(Bin::activity).collect();
    let mut sorted = activity.clone();
    sorted.sort_by(f64::total_cmp);
    let center = median(&sorted);
    let mut deviations: Vec<f64> = activity.iter().map(|a| (a - center).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    // +1: a quiet stream (MAD 0) still needs a few chatters more than usual to peak.
    let scale = 1.4826 * median(&deviations) + 1.0;
    let z: Vec<f64> = activity.iter().map(|a| (a - center) / scale).collect();

    // Runs of outstanding bins.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < count {
        if z[i] >= params.threshold {
            let start = i;
            while i < count && z[i] >= params.threshold {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    let mut peaks: Vec<ChatPeak> = runs
        .into_iter()
        .filter_map(|(a, b)| {
            let start = a as f64 * params.bin;
            let end = (b as f64 * params.bin).min(duration);
            let inside: Vec<&StreamChat> = lines
                .iter()
                .filter(|l| l.at >= start && l.at < end)
                .collect();
            let messages = inside.len() as u32;
            if messages < params.min_messages {
                return None;
            }
            let users: HashSet<&str> = inside.iter().map(|l| l.user.as_str()).collect();
            Some(ChatPeak {
                start,
                end,
                score: z[a..b].iter().copied().fold(f64::MIN, f64::max),
                messages,
                unique_chatters: users.len() as u32,
                emotes: inside.iter().map(|l| l.emotes).sum(),
                commands: inside.iter().filter(|l| is_command(&l.message)).count() as u32,
                label: label(&inside),
            })
        })
        .collect();
    peaks.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<ChatPeak> = Vec::new();
    for p in peaks {
        if kept.len() >= params.max_peaks {
            break;
        }
        if kept
            .iter()
            .all(|k| (k.start - p.start).abs() >= params.min_gap)
        {
            kept.push(p);
        }
    }
    kept.sort_by(|a, b| a.start.total_cmp(&b.start));
    kept
}

/// The editor's `chat_history` (stream seconds, oldest first).
pub fn chat_history(lines: &[StreamChat]) -> Vec<ChatHistoryLine> {
    lines
        .iter()
        .map(|l| ChatHistoryLine {
            timestamp: l.at,
            username: l.user.clone(),
            message: l.message.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: f64, user: &str, message: &str, emotes: u32) -> StreamChat {
        StreamChat {
            at,
            user: user.into(),
            message: message.into(),
            emotes,
            emote_names: message
                .split_whitespace()
                .filter(|w| ["PogChamp", "LUL", "Kappa"].contains(w))
                .map(str::to_string)
                .collect(),
        }
    }

    /// Background chat every ~7 s from 5 regulars over 10 minutes, one burst of 25 chatters at
    /// 300–312 s: exactly one peak, there, labelled with what the burst said.
    #[test]
    fn one_burst_in_steady_chat_is_one_peak_at_its_time() {
        let mut lines = Vec::new();
        for k in 0..85 {
            lines.push(line(
                k as f64 * 7.0,
                &format!("regular{}", k % 5),
                "nice play so far",
                0,
            ));
        }
        for k in 0..25 {
            lines.push(line(
                300.0 + k as f64 * 0.5,
                &format!("viewer{k}"),
                "PogChamp what a play",
                1,
            ));
        }
        lines.push(line(305.0, "mod", "!clip", 0));
        lines.sort_by(|a, b| a.at.total_cmp(&b.at));
        let peaks = chat_peaks(&lines, 600.0, &PeakParams::default());
        assert_eq!(peaks.len(), 1, "{peaks:?}");
        let p = &peaks[0];
        assert!(p.start <= 300.0 && p.end >= 310.0, "{p:?}");
        assert!(p.end - p.start <= 30.0, "{p:?}");
        assert!(p.unique_chatters >= 26, "{p:?}");
        assert_eq!(p.commands, 1);
        assert_eq!(p.label, "PogChamp");
    }

    /// Many messages from one user are not a moment; steady busy chat has no peak.
    #[test]
    fn a_spammer_or_steady_busy_chat_makes_no_peak() {
        let mut lines: Vec<StreamChat> = (0..300)
            .map(|k| line(k as f64 * 2.0, &format!("u{}", k % 40), "hello chat", 0))
            .collect();
        lines.extend((0..30).map(|k| line(200.0 + k as f64 * 0.2, "spammer", "buy followers", 0)));
        lines.sort_by(|a, b| a.at.total_cmp(&b.at));
        assert_eq!(chat_peaks(&lines, 600.0, &PeakParams::default()), vec![]);
        assert_eq!(chat_peaks(&[], 600.0, &PeakParams::default()), vec![]);
    }

    #[test]
    fn close_peaks_keep_the_strongest() {
        let mut lines = Vec::new();
        for k in 0..12 {
            lines.push(line(100.0 + k as f64 * 0.5, &format!("a{k}"), "wow", 0));
        }
        for k in 0..30 {
            lines.push(line(120.0 + k as f64 * 0.3, &format!("b{k}"), "GG", 0));
        }
        for k in 0..15 {
            lines.push(line(400.0 + k as f64 * 0.5, &format!("c{k}"), "LUL", 1));
        }
        lines.sort_by(|a, b| a.at.total_cmp(&b.at));
        let peaks = chat_peaks(&lines, 600.0, &PeakParams::default());
        let starts: Vec<f64> = peaks.iter().map(|p| p.start).collect();
        assert_eq!(starts, vec![120.0, 400.0], "{peaks:?}");
    }
}

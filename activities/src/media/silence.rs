//! Silence detection with FFmpeg `silencedetect` semantics (`mono=0`, FFmpeg 5.1), made cheap
//! and splittable.
//!
//! FFmpeg looks at the channels as one interleaved sample stream: a sample is silent iff
//! `-noise < x < noise` (compared in the sample type), and a run of `d · rate · channels`
//! consecutive silent samples starts a silence, dated `floor((i_notify)/ch) + 1 − d·rate` frames
//! into the stream; the first loud sample ends it at `floor(i_loud/ch)`; end of stream closes an
//! open silence at the end of the last frame.
//!
//! Here the stream is summarised as silent *runs* (in interleaved sample indices). Per frame only
//! the first and last loud samples matter when a frame is shorter than the minimum run, which is
//! a branch-light scan; shorter minimum durations fall back to an exact per-sample scan. A
//! [`Runs`] summary of one stretch of audio merges with the next, so a file can be decoded in
//! parallel chunks and give exactly what one sequential pass gives.

/// Detection parameters, as for `silencedetect=noise=<noise_db>dB:d=<min_duration>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SilenceParams {
    pub noise_db: f64,
    pub min_duration: f64,
}

impl SilenceParams {
    /// The amplitude FFmpeg compares against (`10^(dB/20)`).
    pub fn amplitude(&self) -> f64 {
        10f64.powf(self.noise_db / 20.0)
    }

    /// `d · rate` in whole samples per channel, as FFmpeg rounds it (`av_rescale` of
    /// microseconds).
    pub fn min_samples(&self, rate: u32) -> u64 {
        let micros = (self.min_duration * 1_000_000.0).round() as i64;
        // av_rescale rounds to nearest, half away from zero.
        ((micros as i128 * rate as i128 + 500_000) / 1_000_000) as u64
    }
}

/// A sample type silencedetect handles, with FFmpeg's conversion of the threshold.
pub trait SilenceSample: Copy + 'static {
    fn threshold(amplitude: f64) -> Self;
    fn is_silent(self, threshold: Self) -> bool;
}

impl SilenceSample for f32 {
    fn threshold(a: f64) -> Self {
        a as f32
    }
    #[inline(always)]
    fn is_silent(self, t: Self) -> bool {
        self < t && self > -t
    }
}

impl SilenceSample for f64 {
    fn threshold(a: f64) -> Self {
        a
    }
    #[inline(always)]
    fn is_silent(self, t: Self) -> bool {
        self < t && self > -t
    }
}

impl SilenceSample for i16 {
    fn threshold(a: f64) -> Self {
        (a * f64::from(i16::MAX)) as i16
    }
    #[inline(always)]
    fn is_silent(self, t: Self) -> bool {
        self < t && self > -t
    }
}

impl SilenceSample for i32 {
    fn threshold(a: f64) -> Self {
        (a * f64::from(i32::MAX)) as i32
    }
    #[inline(always)]
    fn is_silent(self, t: Self) -> bool {
        self < t && self > -t
    }
}

/// Silent runs of one contiguous stretch of audio, in interleaved sample indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runs {
    /// Interleaved index of the first sample of the stretch.
    pub start: u64,
    /// One past the last sample.
    pub end: u64,
    /// Length of the silent run that begins at `start` (the whole stretch if all silent).
    pub head: u64,
    /// Length of the silent run that ends at `end`.
    pub tail: u64,
    /// Runs of at least the minimum length that touch neither end: `(start, end)`.
    pub inner: Vec<(u64, u64)>,
}

impl Runs {
    pub fn empty(at: u64) -> Self {
        Runs {
            start: at,
            end: at,
            head: 0,
            tail: 0,
            inner: Vec::new(),
        }
    }

    fn all_silent(&self) -> bool {
        self.head == self.end - self.start
    }

    /// This stretch followed by `next` (which must start where this one ends).
    pub fn then(mut self, next: Runs, min_run: u64) -> Runs {
        assert_eq!(self.end, next.start, "stretches must be contiguous");
        if self.start == self.end {
            return next;
        }
        if next.start == next.end {
            return self;
        }
        let (self_all, next_all) = (self.all_silent(), next.all_silent());
        let joined = self.tail + next.head;
        let end = next.end;
        match (self_all, next_all) {
            (true, true) => Runs {
                start: self.start,
                end,
                head: joined,
                tail: joined,
                inner: Vec::new(),
            },
            (true, false) => Runs {
                start: self.start,
                end,
                head: joined,
                tail: next.tail,
                inner: next.inner,
            },
            (false, true) => Runs {
                start: self.start,
                end,
                head: self.head,
                tail: joined,
                inner: self.inner,
            },
            (false, false) => {
                if joined >= min_run {
                    self.inner
                        .push((self.end - self.tail, self.end + next.head));
                }
                self.inner.extend(next.inner);
                Runs {
                    start: self.start,
                    end,
                    head: self.head,
                    tail: next.tail,
                    inner: self.inner,
                }
            }
        }
    }

    /// All runs of at least `min_run`, in order, as `(start, end)`.
    pub fn all(&self, min_run: u64) -> Vec<(u64, u64)> {
        if self.start == self.end {
            return Vec::new();
        }
        if self.all_silent() {
            return if self.head >= min_run {
                vec![(self.start, self.end)]
            } else {
                Vec::new()
            };
        }
        let mut out = Vec::with_capacity(self.inner.len() + 2);
        if self.head >= min_run {
            out.push((self.start, self.start + self.head));
        }
        out.extend(self.inner.iter().copied());
        if self.tail >= min_run {
            out.push((self.end - self.tail, self.end));
        }
        out
    }
}

/// Builds [`Runs`] from frames of samples pushed in order.
pub struct Detector<T: SilenceSample> {
    threshold: T,
    channels: usize,
    min_run: u64,
    runs: Runs,
    /// Length of the silent run in progress (ending at `runs.end`).
    current: u64,
    /// Whether a loud sample has been seen (otherwise `current` is also the head).
    seen_loud: bool,
}

impl<T: SilenceSample> Detector<T> {
    /// `start` is the interleaved index of the first sample that will be pushed.
    pub fn new(params: &SilenceParams, rate: u32, channels: usize, start: u64) -> Self {
        Self {
            threshold: T::threshold(params.amplitude()),
            channels,
            min_run: params.min_samples(rate) * channels as u64,
            runs: Runs::empty(start),
            current: 0,
            seen_loud: false,
        }
    }

    pub fn min_run(&self) -> u64 {
        self.min_run
    }

    /// Interleaved index of the next sample.
    pub fn position(&self) -> u64 {
        self.runs.end
    }

    /// Pushes `frames` samples per channel: `channel(c)[i]` is sample `i` of channel `c`.
    /// Planar data passes each plane; packed data passes the one buffer with a stride.
    pub fn push<'a>(&mut self, frames: usize, channel: impl Fn(usize) -> Strided<'a, T>) {
        if frames == 0 {
            return;
        }
        let ch = self.channels;
        let len = (frames * ch) as u64;
        if self.min_run <= len {
            // A whole run could fit between loud samples inside this frame: scan exactly.
            let chans: Vec<Strided<'a, T>> = (0..ch).map(&channel).collect();
            for i in 0..frames {
                for c in &chans {
                    self.sample(c.get(i).is_silent(self.threshold));
                }
            }
            return;
        }
        // First and last loud samples in interleaved order; the rest of the frame is silent
        // and too short to hold a run by itself.
        let mut first: Option<u64> = None;
        let mut last: Option<u64> = None;
        for c in 0..ch {
            let s = channel(c);
            if let Some(i) = (0..frames).find(|&i| !s.get(i).is_silent(self.threshold)) {
                let idx = (i * ch + c) as u64;
                first = Some(first.map_or(idx, |f| f.min(idx)));
                let j = (0..frames)
                    .rev()
                    .find(|&i| !s.get(i).is_silent(self.threshold))
                    .expect("a loud sample exists");
                let idx = (j * ch + c) as u64;
                last = Some(last.map_or(idx, |l| l.max(idx)));
            }
        }
        match (first, last) {
            (Some(f), Some(l)) => {
                self.current += f;
                self.loud_at(self.runs.end + f);
                self.current = len - l - 1;
                self.runs.end += len;
            }
            _ => {
                self.current += len;
                self.runs.end += len;
            }
        }
    }

    #[inline]
    fn sample(&mut self, silent: bool) {
        if silent {
            self.current += 1;
        } else {
            self.loud_at(self.runs.end);
            self.current = 0;
        }
        self.runs.end += 1;
    }

    /// A loud sample at `index` ends the run in progress.
    fn loud_at(&mut self, index: u64) {
        if !self.seen_loud {
            self.runs.head = self.current;
            self.seen_loud = true;
        } else if self.current >= self.min_run {
            self.runs.inner.push((index - self.current, index));
        }
    }

    pub fn finish(mut self) -> Runs {
        if self.seen_loud {
            self.runs.tail = self.current;
        } else {
            self.runs.head = self.current;
            self.runs.tail = self.current;
        }
        self.runs
    }
}

/// A channel's samples: every `stride`-th element of `data` from `offset`.
#[derive(Clone, Copy)]
pub struct Strided<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub stride: usize,
}

impl<T: Copy> Strided<'_, T> {
    #[inline(always)]
    fn get(&self, i: usize) -> T {
        self.data[self.offset + i * self.stride]
    }
}

/// Silence intervals in seconds, as silencedetect reports them, from interleaved runs.
/// `origin` is the stream position (in samples per channel) of interleaved index 0.
pub fn intervals(
    runs: &[(u64, u64)],
    params: &SilenceParams,
    rate: u32,
    channels: usize,
    origin: i64,
) -> Vec<(f64, f64)> {
    let ch = channels as u64;
    let d = params.min_samples(rate);
    let n = d * ch;
    let tb = 1.0 / f64::from(rate);
    runs.iter()
        .map(|&(a, b)| {
            // FFmpeg notices the silence at the n-th silent sample and dates it back.
            let start = ((a + n - 1) / ch + 1) as i64 - d as i64 + origin;
            let end = (b / ch) as i64 + origin;
            (tb * start as f64, tb * end as f64)
        })
        .collect()
}

/// FFmpeg's `%.6g`, to compare with the CLI's printed values digit for digit.
pub fn format_g6(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let exp = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        let s = format!("{:.5e}", x);
        let (m, e) = s.split_once('e').unwrap();
        let m = m.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap();
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    let s = format!("{:.*}", decimals, x);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A literal port of FFmpeg's per-sample update(): the reference.
    fn reference(samples: &[f32], ch: usize, params: &SilenceParams, rate: u32) -> Vec<(u64, u64)> {
        let thr = params.amplitude() as f32;
        let n = params.min_samples(rate) * ch as u64;
        let mut out = Vec::new();
        let (mut nulls, mut start) = (0u64, None::<u64>);
        for (i, &x) in samples.iter().enumerate() {
            if x < thr && x > -thr {
                nulls += 1;
                if start.is_none() && nulls >= n {
                    start = Some(i as u64 + 1 - n);
                }
            } else {
                if let Some(s) = start.take() {
                    out.push((s, i as u64));
                }
                nulls = 0;
            }
        }
        if let Some(s) = start {
            out.push((s, samples.len() as u64));
        }
        out
    }

    fn detect(
        samples: &[f32],
        ch: usize,
        params: &SilenceParams,
        rate: u32,
        frame: usize,
        splits: &[usize],
    ) -> Vec<(u64, u64)> {
        // Cut into chunks at `splits` (sample frames), detect each, merge.
        let frames_total = samples.len() / ch;
        let mut bounds = vec![0];
        bounds.extend(splits.iter().copied().filter(|&s| s < frames_total));
        bounds.push(frames_total);
        let mut merged: Option<Runs> = None;
        let mut min_run = 0;
        for w in bounds.windows(2) {
            let mut det = Detector::<f32>::new(params, rate, ch, (w[0] * ch) as u64);
            min_run = det.min_run();
            let mut i = w[0];
            while i < w[1] {
                let len = frame.min(w[1] - i);
                let data = &samples[i * ch..(i + len) * ch];
                det.push(len, |c| Strided {
                    data,
                    offset: c,
                    stride: ch,
                });
                i += len;
            }
            let r = det.finish();
            merged = Some(match merged {
                None => r,
                Some(m) => m.then(r, min_run),
            });
        }
        merged.unwrap().all(min_run)
    }

    /// Deterministic pseudo-random speech-like signal: loud bursts, silences, near-threshold noise.
    fn signal(seed: u64, frames: usize, ch: usize) -> Vec<f32> {
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut out = Vec::with_capacity(frames * ch);
        let mut mode = 0u64;
        let mut left = 0usize;
        for _ in 0..frames {
            if left == 0 {
                mode = next() % 4;
                left = (next() % 3000) as usize + 1;
            }
            left -= 1;
            for _ in 0..ch {
                let r = (next() % 10_000) as f32 / 10_000.0 - 0.5;
                out.push(match mode {
                    0 => 0.0,
                    1 => r * 0.5,
                    2 => r * 0.0063, // straddles the -50 dB threshold (0.00316)
                    _ => r * 0.001,
                });
            }
        }
        out
    }

    #[test]
    fn run_length_detection_equals_the_per_sample_reference_however_it_is_split() {
        let rate = 1000;
        for (seed, ch, d) in [
            (1, 1, 0.5),
            (2, 2, 0.5),
            (3, 2, 2.0),
            (4, 2, 0.003),
            (5, 6, 0.25),
        ] {
            let params = SilenceParams {
                noise_db: -50.0,
                min_duration: d,
            };
            let s = signal(seed, 40_000, ch);
            let want = reference(&s, ch, &params, rate);
            for frame in [1, 7, 64, 1024] {
                for splits in [vec![], vec![9_999], vec![5_000, 5_001, 20_000, 39_999]] {
                    assert_eq!(
                        detect(&s, ch, &params, rate, frame, &splits),
                        want,
                        "seed {seed} ch {ch} d {d} frame {frame} splits {splits:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn all_silent_and_all_loud_streams() {
        let params = SilenceParams {
            noise_db: -50.0,
            min_duration: 0.01,
        };
        let quiet = vec![0.0f32; 2 * 500];
        assert_eq!(
            detect(&quiet, 2, &params, 1000, 64, &[250]),
            vec![(0, 1000)]
        );
        let loud = vec![0.5f32; 2 * 500];
        assert!(detect(&loud, 2, &params, 1000, 64, &[250]).is_empty());
        assert!(detect(&[], 2, &params, 1000, 64, &[]).is_empty());
    }

    #[test]
    fn intervals_are_dated_like_ffmpeg() {
        let params = SilenceParams {
            noise_db: -50.0,
            min_duration: 2.0,
        };
        // Stereo at 1 kHz: d·rate = 2000, n = 4000 interleaved samples.
        // A run starting on channel 1 of frame 10 is dated at frame 11.
        let iv = intervals(&[(21, 10_000)], &params, 1000, 2, 0);
        assert_eq!(iv, vec![(0.011, 5.0)]);
        let iv = intervals(&[(20, 10_001)], &params, 1000, 2, 500);
        assert_eq!(iv, vec![(0.51, 5.5)]);
        assert_eq!(params.min_samples(48_000), 96_000);
        assert!(
            (SilenceParams {
                noise_db: -50.0,
                min_duration: 1.0
            }
            .amplitude()
                - 0.0031623)
                .abs()
                < 1e-7
        );
    }

    #[test]
    fn g6_formatting_matches_printf() {
        for (x, s) in [
            (18.923979, "18.924"),
            (64.287208, "64.2872"),
            (600.0, "600"),
            (0.0, "0"),
            (135.235646, "135.236"),
            (1234567.0, "1.23457e+06"),
            (0.000012345, "1.2345e-05"),
            (0.5, "0.5"),
        ] {
            assert_eq!(format_g6(x), s, "{x}");
        }
    }

    #[test]
    fn integer_thresholds_truncate_like_c() {
        let a = SilenceParams {
            noise_db: -50.0,
            min_duration: 1.0,
        }
        .amplitude();
        assert_eq!(i16::threshold(a), 103); // 0.0031623 * 32767 = 103.6
        assert!(102i16.is_silent(103));
        assert!(!103i16.is_silent(103));
        assert!(!i16::MIN.is_silent(103));
        assert!(!f32::NAN.is_silent(0.1));
    }
}

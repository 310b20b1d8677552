//! Voice activity detection with Silero VAD (v6, 16 kHz), run in-process in plain Rust.
//!
//! The weights are read from the official 16 kHz ONNX model, `silero_vad_16k_op15.onnx`, that
//! ships inside the `silero-vad` wheel on PyPI (`./gt` installs it and points `GT_VAD_MODEL` at
//! it); nothing is downloaded at run time. (The wheel's `silero_vad_16k.safetensors` holds other,
//! older weights: its probabilities differ from the ONNX and TorchScript models by up to 0.7.) The network is small (about 310 k parameters): every 512-sample window (32 ms),
//! together with the 64 samples before it, goes through a learned STFT (a strided convolution),
//! four 1-D convolutions and an LSTM cell whose state carries from window to window, then a
//! sigmoid gives the probability that the window is speech.
//!
//! Everything before the LSTM depends only on the window's own samples, so those features are
//! computed for all windows at once (on several threads); the LSTM then runs window by window.
//! [`speech_segments`] turns probabilities into speech intervals with Silero's hysteresis
//! (enter above `threshold`, leave after `min_silence` below `neg_threshold`).
//!
//! The forward pass is checked against the official ONNX model run by onnxruntime (the
//! reference implementation) in the end-to-end tests.

use std::path::Path;

/// The sample rate the model expects.
pub const SAMPLE_RATE: u32 = 16_000;
/// Samples per probability (32 ms).
pub const WINDOW: usize = 512;
/// Samples of the previous window prepended to each window.
const CONTEXT: usize = 64;
const INPUT: usize = WINDOW + CONTEXT;
/// Reflection padding on the right before the STFT.
const PAD: usize = 64;
const N_FFT: usize = 256;
const HOP: usize = 128;
const BINS: usize = N_FFT / 2 + 1;
/// STFT frames per window: (576 + 64 − 256) / 128 + 1.
const FRAMES: usize = (INPUT + PAD - N_FFT) / HOP + 1;
const HIDDEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum VadError {
    #[error("VAD model {path}: {reason}")]
    Model { path: String, reason: String },
}

/// A 1-D convolution with kernel 3 and padding 1, followed by ReLU.
struct Conv {
    inputs: usize,
    outputs: usize,
    stride: usize,
    /// `[out][in][k]`, row `o` is the `o`-th output's kernel over the im2col column.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv {
    /// `x` is `[inputs][len]`; returns `[outputs][out_len]` and `out_len`.
    fn apply(&self, x: &[f32], len: usize) -> (Vec<f32>, usize) {
        let out_len = (len + 2 - 3) / self.stride + 1;
        let mut out = vec![0.0; self.outputs * out_len];
        let mut column = vec![0.0f32; self.inputs * 3];
        for t in 0..out_len {
            // im2col: the 3 taps of every input channel around position t·stride.
            for i in 0..self.inputs {
                for k in 0..3 {
                    let pos = (t * self.stride + k) as isize - 1;
                    column[i * 3 + k] = if pos >= 0 && (pos as usize) < len {
                        x[i * len + pos as usize]
                    } else {
                        0.0
                    };
                }
            }
            for o in 0..self.outputs {
                let row = &self.weight[o * self.inputs * 3..(o + 1) * self.inputs * 3];
                out[o * out_len + t] = (self.bias[o] + dot(row, &column)).max(0.0);
            }
        }
        (out, out_len)
    }
}

/// Silero VAD's weights. Cheap to share between threads (read-only).
pub struct SileroVad {
    /// `[258][256]`: 129 real then 129 imaginary basis rows.
    stft: Vec<f32>,
    convs: [Conv; 4],
    /// `[512][128]` each; gates in PyTorch's order (input, forget, cell, output).
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    /// `b_ih + b_hh`.
    bias: Vec<f32>,
    out_w: Vec<f32>,
    out_b: f32,
}

/// Products of equal-length slices, in 8 lanes so the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A minimal protobuf reader: enough of the wire format to pull tensors out of an ONNX file.
struct Proto<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// One field of a message: its number and its value (varints and fixed-width numbers as
/// `Num`, length-delimited fields as bytes).
enum Field<'a> {
    Num(u64),
    Bytes(&'a [u8]),
}

impl<'a> Proto<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or("field runs past the end")?;
        self.pos += n;
        Ok(s)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Field::Num(self.varint()?),
            1 => Field::Num(u64::from_le_bytes(self.take(8)?.try_into().expect("8"))),
            2 => {
                let n = self.varint()? as usize;
                Field::Bytes(self.take(n)?)
            }
            5 => Field::Num(u64::from(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4"),
            ))),
            t => return Err(format!("unsupported wire type {t}")),
        };
        Ok(Some((key >> 3, value)))
    }
}

type Tensors = std::collections::HashMap<String, (Vec<usize>, Vec<f32>)>;

/// A float `TensorProto` (dims = 1, data_type = 2, float_data = 4, name = 8, raw_data = 9).
fn read_tensor(bytes: &[u8], out: &mut Tensors) -> Result<(), String> {
    let (mut name, mut dims, mut ty, mut data) = (String::new(), Vec::new(), 0, Vec::new());
    let mut p = Proto::new(bytes);
    while let Some((field, value)) = p.next_field()? {
        match (field, value) {
            (1, Field::Num(d)) => dims.push(d as usize),
            (1, Field::Bytes(packed)) => {
                let mut q = Proto::new(packed);
                while q.pos < packed.len() {
                    dims.push(q.varint()? as usize);
                }
            }
            (2, Field::Num(t)) => ty = t,
            (4, Field::Bytes(packed)) | (9, Field::Bytes(packed)) => {
                data.extend(
                    packed
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
                );
            }
            (4, Field::Num(bits)) => data.push(f32::from_bits(bits as u32)),
            (8, Field::Bytes(n)) => name = String::from_utf8_lossy(n).into_owned(),
            _ => {}
        }
    }
    // Only float tensors with as many values as their shape says are weights.
    if ty == 1 && !name.is_empty() && data.len() == dims.iter().product::<usize>() {
        out.insert(name, (dims, data));
    }
    Ok(())
}

/// Every float tensor of a `GraphProto`: initializers (field 5) and constants (`AttributeProto`
/// `t`, field 5 of an attribute of a node, field 1), in subgraphs too (attribute `g`/`graphs`).
fn read_graph(bytes: &[u8], out: &mut Tensors) -> Result<(), String> {
    let mut p = Proto::new(bytes);
    while let Some((field, value)) = p.next_field()? {
        match (field, value) {
            (5, Field::Bytes(t)) => read_tensor(t, out)?,
            (1, Field::Bytes(node)) => {
                let mut n = Proto::new(node);
                while let Some((nf, nv)) = n.next_field()? {
                    if let (5, Field::Bytes(attr)) = (nf, nv) {
                        let mut a = Proto::new(attr);
                        while let Some((af, av)) = a.next_field()? {
                            match (af, av) {
                                (5, Field::Bytes(t)) => read_tensor(t, out)?,
                                (6 | 11, Field::Bytes(g)) => read_graph(g, out)?,
                                _ => {}
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The float tensors of an ONNX model (`ModelProto.graph` is field 7).
fn read_onnx(bytes: &[u8]) -> Result<Tensors, String> {
    let mut out = Tensors::new();
    let mut p = Proto::new(bytes);
    while let Some((field, value)) = p.next_field()? {
        if let (7, Field::Bytes(g)) = (field, value) {
            read_graph(g, &mut out)?;
        }
    }
    if out.is_empty() {
        return Err("no weights found: not an ONNX model".into());
    }
    Ok(out)
}

impl SileroVad {
    /// Loads the 16 kHz ONNX model (`silero_vad_16k_op15.onnx` from the `silero-vad` wheel).
    pub fn load(path: &Path) -> Result<Self, VadError> {
        let err = |reason: String| VadError::Model {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut tensors = read_onnx(&bytes).map_err(err)?;
        let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>, VadError> {
            match tensors.remove(name) {
                Some((s, v)) if s == shape => Ok(v),
                Some((s, _)) => Err(err(format!(
                    "tensor {name} has shape {s:?}, want {shape:?}"
                ))),
                None => Err(err(format!("tensor {name} is missing"))),
            }
        };
        let mut conv = |i: usize, inputs: usize, outputs: usize, stride: usize| {
            Ok::<_, VadError>(Conv {
                inputs,
                outputs,
                stride,
                weight: take(
                    &format!("model.encoder.{i}.reparam_conv.weight"),
                    &[outputs, inputs, 3],
                )?,
                bias: take(&format!("model.encoder.{i}.reparam_conv.bias"), &[outputs])?,
            })
        };
        let convs = [
            conv(0, BINS, 128, 1)?,
            conv(1, 128, 64, 2)?,
            conv(2, 64, 64, 2)?,
            conv(3, 64, HIDDEN, 1)?,
        ];
        let stft = take("model.stft.forward_basis_buffer", &[2 * BINS, 1, N_FFT])?;
        let w_ih = take("model.decoder.rnn.weight_ih", &[4 * HIDDEN, HIDDEN])?;
        let w_hh = take("model.decoder.rnn.weight_hh", &[4 * HIDDEN, HIDDEN])?;
        let b_ih = take("model.decoder.rnn.bias_ih", &[4 * HIDDEN])?;
        let b_hh = take("model.decoder.rnn.bias_hh", &[4 * HIDDEN])?;
        let out_w = take("model.decoder.decoder.2.weight", &[1, HIDDEN, 1])?;
        let out_b = take("model.decoder.decoder.2.bias", &[1])?[0];
        Ok(Self {
            stft,
            convs,
            w_ih,
            w_hh,
            bias: b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect(),
            out_w,
            out_b,
        })
    }

    /// The LSTM's input for one window: `input` is the 64 context samples then the 512 new ones.
    fn features(&self, input: &[f32; INPUT]) -> [f32; HIDDEN] {
        // Reflection padding on the right (the edge sample is not repeated).
        let mut padded = [0.0f32; INPUT + PAD];
        padded[..INPUT].copy_from_slice(input);
        for j in 0..PAD {
            padded[INPUT + j] = input[INPUT - 2 - j];
        }
        // Learned STFT magnitude: [129][4].
        let mut mag = vec![0.0f32; BINS * FRAMES];
        for f in 0..FRAMES {
            let frame = &padded[f * HOP..f * HOP + N_FFT];
            for b in 0..BINS {
                let re = dot(&self.stft[b * N_FFT..(b + 1) * N_FFT], frame);
                let im = dot(
                    &self.stft[(BINS + b) * N_FFT..(BINS + b + 1) * N_FFT],
                    frame,
                );
                mag[b * FRAMES + f] = (re * re + im * im).sqrt();
            }
        }
        let (mut x, mut len) = (mag, FRAMES);
        for conv in &self.convs {
            (x, len) = conv.apply(&x, len);
        }
        debug_assert_eq!(len, 1);
        x.try_into()
            .expect("the encoder ends in 128 channels of length 1")
    }

    /// One LSTM step and the output layer: the window's speech probability.
    fn step(&self, x: &[f32; HIDDEN], h: &mut [f32; HIDDEN], c: &mut [f32; HIDDEN]) -> f32 {
        let mut gates = [0.0f32; 4 * HIDDEN];
        for (j, g) in gates.iter_mut().enumerate() {
            let row = j * HIDDEN..(j + 1) * HIDDEN;
            *g = self.bias[j] + dot(&self.w_ih[row.clone()], x) + dot(&self.w_hh[row], h);
        }
        for k in 0..HIDDEN {
            let i = sigmoid(gates[k]);
            let f = sigmoid(gates[HIDDEN + k]);
            let g = gates[2 * HIDDEN + k].tanh();
            let o = sigmoid(gates[3 * HIDDEN + k]);
            c[k] = f * c[k] + i * g;
            h[k] = o * c[k].tanh();
        }
        let relu: Vec<f32> = h.iter().map(|v| v.max(0.0)).collect();
        sigmoid(self.out_b + dot(&self.out_w, &relu))
    }

    /// Speech probability of every 512-sample window of `pcm` (16 kHz mono, −1..1), from a
    /// fresh state; the last window is padded with zeros. Features are computed on up to
    /// `threads` threads.
    pub fn probabilities(&self, pcm: &[f32], threads: usize) -> Vec<f32> {
        let n = pcm.len().div_ceil(WINDOW);
        let input = |w: usize| -> [f32; INPUT] {
            let mut buf = [0.0f32; INPUT];
            let start = w * WINDOW;
            // Context: the 64 samples before the window (zeros before the start).
            for (j, slot) in buf.iter_mut().enumerate() {
                let pos = (start + j) as isize - CONTEXT as isize;
                if pos >= 0 && (pos as usize) < pcm.len() {
                    *slot = pcm[pos as usize];
                }
            }
            buf
        };
        let mut features = vec![[0.0f32; HIDDEN]; n];
        let threads = threads.clamp(1, 16);
        let per = n.div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for (part, slots) in features.chunks_mut(per).enumerate() {
                let input = &input;
                scope.spawn(move || {
                    for (k, slot) in slots.iter_mut().enumerate() {
                        *slot = self.features(&input(part * per + k));
                    }
                });
            }
        });
        let (mut h, mut c) = ([0.0f32; HIDDEN], [0.0f32; HIDDEN]);
        features
            .iter()
            .map(|x| self.step(x, &mut h, &mut c))
            .collect()
    }
}

/// How probabilities become speech (Silero's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadParams {
    /// A window at or above this is speech.
    pub threshold: f32,
    /// Once in speech, a window below this starts a possible end.
    pub neg_threshold: f32,
    /// Speech shorter than this (seconds) is dropped.
    pub min_speech: f64,
    /// Silence must last this long (seconds) to end speech.
    pub min_silence: f64,
    /// Added on both sides of each speech interval (seconds).
    pub pad: f64,
}

impl Default for VadParams {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech: 0.25,
            min_silence: 0.1,
            pad: 0.03,
        }
    }
}

/// Speech intervals (seconds from the first sample) of audio of `n_samples` samples whose
/// windows have probabilities `probs`; padded, clamped and merged.
pub fn speech_segments(probs: &[f32], n_samples: usize, p: &VadParams) -> Vec<(f64, f64)> {
    let rate = f64::from(SAMPLE_RATE);
    let min_speech = (p.min_speech * rate) as usize;
    let min_silence = (p.min_silence * rate) as usize;
    let mut raw: Vec<(usize, usize)> = Vec::new();
    let mut start: Option<usize> = None;
    let mut quiet_since: Option<usize> = None;
    for (i, &prob) in probs.iter().enumerate() {
        let pos = i * WINDOW;
        if prob >= p.threshold {
            quiet_since = None;
            start.get_or_insert(pos);
            continue;
        }
        if let Some(s) = start
            && prob < p.neg_threshold
        {
            let since = *quiet_since.get_or_insert(pos);
            if pos - since >= min_silence {
                if since - s >= min_speech {
                    raw.push((s, since));
                }
                start = None;
                quiet_since = None;
            }
        }
    }
    if let Some(s) = start
        && n_samples.saturating_sub(s) >= min_speech
    {
        raw.push((s, n_samples));
    }
    let total = n_samples as f64 / rate;
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(raw.len());
    for (s, e) in raw {
        let a = (s as f64 / rate - p.pad).max(0.0);
        let b = (e as f64 / rate + p.pad).min(total);
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn hysteresis_enters_high_and_leaves_after_enough_quiet() {
        let p = VadParams {
            pad: 0.0,
            ..Default::default()
        };
        let w = WINDOW as f64 / 16_000.0;
        // 10 windows of speech, a 2-window dip to 0.4 (above neg: still speech), 10 more,
        // then silence.
        let mut probs = vec![0.9; 10];
        probs.extend([0.4, 0.4]);
        probs.extend(vec![0.9; 10]);
        probs.extend(vec![0.05; 20]);
        let segs = speech_segments(&probs, probs.len() * WINDOW, &p);
        assert_eq!(segs.len(), 1);
        assert!((segs[0].0 - 0.0).abs() < 1e-9 && (segs[0].1 - 22.0 * w).abs() < 1e-9);
        // A blip shorter than min_speech is dropped.
        let mut probs = vec![0.0; 10];
        probs.extend([0.9, 0.9]);
        probs.extend(vec![0.0; 10]);
        assert!(speech_segments(&probs, probs.len() * WINDOW, &p).is_empty());
        // Speech running to the end is closed at the end.
        let probs = vec![0.9; 20];
        let segs = speech_segments(&probs, 20 * WINDOW - 100, &p);
        assert_eq!(segs.len(), 1);
        assert!((segs[0].1 - (20 * WINDOW - 100) as f64 / 16_000.0).abs() < 1e-9);
    }

    #[test]
    fn padding_merges_close_intervals() {
        let p = VadParams {
            pad: 0.1,
            ..Default::default()
        };
        let mut probs = vec![0.9; 10];
        probs.extend(vec![0.0; 5]); // 160 ms quiet: ends speech, but pads overlap
        probs.extend(vec![0.9; 10]);
        let segs = speech_segments(&probs, probs.len() * WINDOW, &p);
        assert_eq!(segs.len(), 1, "{segs:?}");
    }
}

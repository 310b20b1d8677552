//! Transcription, the GPU pool's work: [`engine`] runs whisper.cpp (the model loaded once per
//! process), [`activity`] is the `gpu.transcribe_clip` activity (chunks of speech audio decoded
//! in lanes, made durable one by one, times mapped back to the clip), [`worker`] registers it,
//! [`quantize`] makes quantised copies of the model, [`quality`] is the word error rate.
//! Only `worker-gpu`, the tests and the benchmarks link this crate, and with it whisper.cpp.

pub mod activity;
pub mod engine;
pub mod quality;
pub mod quantize;
pub mod timing;
pub mod worker;

pub use activity::GpuActivitiesImpl;
pub use engine::Transcriber;

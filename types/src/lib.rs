//! Shared vocabulary of glowing-telegram: the records the store keeps, the DTOs the API speaks,
//! the inputs and outputs of workflows and activities, and the ids and queue names that tie
//! them together.
//!
//! This crate depends on serde (and schemars for the JSON Schema export) only, so every other
//! crate, including front-end tooling, can use it without pulling in I/O.

pub mod api;
pub mod chat;
pub mod episode;
pub mod ids;
pub mod media;
pub mod publish;
pub mod records;
pub mod transcript;
pub mod widget;
pub mod workflow;

pub use ids::*;

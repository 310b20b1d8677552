//! End-to-end tests: one binary (one link) with a module per area. Run with `./gt test`.

mod analysis;
mod archive;
mod auth;
mod binaries;
mod browser;
mod deploy;
mod dynamo_s3;
mod episodes;
mod exports;
mod frontend;
mod hardening;
mod health;
mod ingest;
mod isolation;
mod media;
mod publish;
mod records;
mod replay;
mod search;
mod stack;
mod timestamps;
mod transcription;
mod twitch;
mod vad;
mod widgets;
mod workers;

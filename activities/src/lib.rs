//! Implementations of the CPU activity contracts in `gt_workflows::contracts`, grouped by
//! concern (transcription, on the GPU queue, lives in `gt-transcribe`). Each is idempotent
//! (upserts keyed by natural ids, outputs at deterministic keys), and bad input fails
//! non-retryably with a message naming the file or record and the reason.

pub mod analysis;
pub mod archive;
pub mod chat;
pub mod chat_peaks;
pub mod episodes;
pub mod ingest;
pub mod media;
pub mod publish;
pub mod tasks;
pub mod text;
pub mod widgets;
pub mod worker;

pub use analysis::MediaActivitiesImpl;
pub use archive::ArchiveActivitiesImpl;
pub use chat::ChatActivitiesImpl;
pub use episodes::EpisodeActivitiesImpl;
pub use gt_worker_kit::{
    invalid_input, needs_user, retryable, store_error, with_beats, with_heartbeats,
};
pub use ingest::IngestActivitiesImpl;
pub use publish::PublishActivitiesImpl;
pub use tasks::TaskActivitiesImpl;
pub use text::TextActivitiesImpl;
pub use widgets::WidgetActivitiesImpl;

//! Names that several processes must agree on: task queues and workflow ids.

/// Task queue for workflows and CPU activities (`worker-cpu`).
pub const CPU_TASK_QUEUE: &str = "gt-cpu";
/// Task queue for GPU activities, i.e. transcription (`worker-gpu`).
pub const GPU_TASK_QUEUE: &str = "gt-gpu";

/// Workflow type name of the stream ingestion workflow.
pub const STREAM_INGEST_WORKFLOW: &str = "StreamIngest";

/// `stream-ingest-{stream_id}`: one ingestion per stream at a time; a duplicate start joins it.
pub fn stream_ingest_workflow_id(stream_id: &str) -> String {
    format!("stream-ingest-{stream_id}")
}

/// The user every record belongs to when the stack runs in local (single-user) mode.
pub const LOCAL_USER_ID: &str = "local-user";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_id_embeds_stream_id() {
        assert_eq!(stream_ingest_workflow_id("abc"), "stream-ingest-abc");
    }
}

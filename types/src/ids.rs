//! Names that several processes must agree on: task queues, workflow ids and the owner segment
//! that puts a user into every workflow id and blob key.

/// Task queue for workflows and CPU activities (`worker-cpu`).
pub const CPU_TASK_QUEUE: &str = "gt-cpu";
/// Task queue for GPU activities, i.e. transcription (`worker-gpu`).
pub const GPU_TASK_QUEUE: &str = "gt-gpu";

/// Workflow type name of the stream ingestion workflow.
pub const STREAM_INGEST_WORKFLOW: &str = "StreamIngest";

/// Memo key holding the user id a workflow run belongs to; the API compares it with the caller
/// before it describes, queries, signals, updates or cancels a run.
pub const OWNER_MEMO: &str = "owner";

/// A user id as one id-safe, key-safe segment: ASCII letters, digits and `-` stay, every other
/// byte becomes `_XX` (hex). Injective (`_` itself is escaped), so two users never share a
/// segment, and it never contains `/`, `.` or NUL, so it is a safe blob-key component.
pub fn owner_segment(user_id: &str) -> String {
    let mut out = String::with_capacity(user_id.len());
    for b in user_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    if out.is_empty() {
        // An empty id (never issued by an identity provider) still gets a segment.
        out.push('_');
    }
    out
}

/// `stream-ingest-{owner}-{stream_id}`: one ingestion per stream at a time; a duplicate start
/// joins it. Stream ids are unique per user only, so the owner is part of the id.
pub fn stream_ingest_workflow_id(user_id: &str, stream_id: &str) -> String {
    format!("stream-ingest-{}-{stream_id}", owner_segment(user_id))
}

/// `episode-publish-{owner}-{episode_id}`: one publish per episode at a time.
pub fn episode_publish_workflow_id(user_id: &str, episode_id: &str) -> String {
    format!("episode-publish-{}-{episode_id}", owner_segment(user_id))
}

/// `chat-{owner}-{broadcaster_id}`: the lifecycle of one user's chat capture.
pub fn chat_capture_workflow_id(user_id: &str, broadcaster_id: &str) -> String {
    format!("chat-{}-{broadcaster_id}", owner_segment(user_id))
}

/// `widget-{owner}-{widget_id}`: the durable timers of one OBS widget.
pub fn widget_timer_workflow_id(user_id: &str, widget_id: &str) -> String {
    format!("widget-{}-{widget_id}", owner_segment(user_id))
}

/// `clip-reembed-{owner}-{unique}`: re-embedding a clip's windows after a transcript edit.
pub fn clip_reembed_workflow_id(user_id: &str, unique: &str) -> String {
    format!("clip-reembed-{}-{unique}", owner_segment(user_id))
}

/// The user every record belongs to when the stack runs in local (single-user) mode.
pub const LOCAL_USER_ID: &str = "local-user";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_ids_carry_the_owner() {
        assert_eq!(
            stream_ingest_workflow_id("alice", "abc"),
            "stream-ingest-alice-abc"
        );
        assert_ne!(
            stream_ingest_workflow_id("alice", "s"),
            stream_ingest_workflow_id("bob", "s")
        );
        assert_eq!(
            episode_publish_workflow_id("local-user", "e1"),
            "episode-publish-local-user-e1"
        );
    }

    #[test]
    fn owner_segments_are_safe_and_never_shared() {
        assert_eq!(owner_segment("local-user"), "local-user");
        assert_eq!(
            owner_segment("3f2a9c1e-0b7d-4c1a-9f00-1234567890ab"),
            "3f2a9c1e-0b7d-4c1a-9f00-1234567890ab"
        );
        assert_eq!(owner_segment("a/b"), "a_2Fb");
        assert_eq!(owner_segment(".."), "_2E_2E");
        assert_eq!(owner_segment(""), "_");
        // Injective where the old replace-by-underscore form was not.
        assert_ne!(owner_segment("a/b"), owner_segment("a_b"));
        assert_ne!(owner_segment("a_2Fb"), owner_segment("a/b"));
        for id in ["a\0b", "é", "x y", "a\\b"] {
            let s = owner_segment(id);
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{s}"
            );
        }
    }
}

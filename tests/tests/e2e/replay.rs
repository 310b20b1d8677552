//! Recorded histories of earlier versions of the workflows replay against the current code:
//! a change that would break running (or queried) executions fails here, not in production.
//! Record new ones with `gt history <workflow-id> -o tests/histories/<name>.json` (or, for the
//! episode flow, `GT_RECORD_HISTORIES=dir ./gt test a_recording_becomes`).

use gt_workflows::{ChatCapture, EpisodePublish, StreamIngest, WidgetTimer};
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

const HISTORIES: &[(&str, &[u8])] = &[
    (
        // List, probe, finalize (before the media-analysis patch).
        "stream_ingest_v1_probe_only",
        include_bytes!("../../histories/stream_ingest_v1_probe_only.json"),
    ),
    (
        // Plus speech maps and previews of the two sample clips.
        "stream_ingest_v2_media",
        include_bytes!("../../histories/stream_ingest_v2_media.json"),
    ),
    (
        // Plus transcripts (GPU queue) alongside the previews.
        "stream_ingest_v3_transcripts",
        include_bytes!("../../histories/stream_ingest_v3_transcripts.json"),
    ),
    (
        // Plus summaries, embeddings, proposals, two review decisions and a publish child
        // (recorded by `GT_RECORD_HISTORIES=dir ./gt test a_recording_becomes`).
        "stream_ingest_v4_episodes",
        include_bytes!("../../histories/stream_ingest_v4_episodes.json"),
    ),
    (
        // Owner in the child's id, and the review as a validated update (with a refused one
        // that left no trace) instead of a signal.
        "stream_ingest_v5_review_update",
        include_bytes!("../../histories/stream_ingest_v5_review_update.json"),
    ),
    (
        // Previews built after the proposals, while the run waits for review, one clip at a
        // time (`previews-after-proposals-v1`).
        "stream_ingest_v6_previews_after_proposals",
        include_bytes!("../../histories/stream_ingest_v6_previews_after_proposals.json"),
    ),
    (
        // An EpisodePublish child from before rendering existed: owner memo, then only the
        // publish request recorded (`gt up`'s sample, approved with the older binaries).
        "episode_publish_v1_request_only",
        include_bytes!("../../histories/episode_publish_v1_request_only.json"),
    ),
    (
        // Chat capture enabled, a notification_failures_exceeded revocation repaired, the
        // authorization revoked and reconnected, capture turned off (`GT_RECORD_HISTORIES=dir
        // ./gt test chat_capture_subscribes`).
        "chat_capture_v1_revocations",
        include_bytes!("../../histories/chat_capture_v1_revocations.json"),
    ),
    (
        // A countdown's timer: signal-with-start `wake`, the timer, `widgets.tick`, done
        // (`GT_RECORD_HISTORIES=dir ./gt test a_countdown_finishes`).
        "widget_timer_v1_countdown",
        include_bytes!("../../histories/widget_timer_v1_countdown.json"),
    ),
];

#[tokio::test]
async fn recorded_histories_replay_against_the_current_workflows() {
    for (name, json) in HISTORIES {
        let replayer = WorkflowReplayer::new(
            WorkflowReplayerOptions::new()
                .register_workflow::<StreamIngest>()
                .unwrap()
                .register_workflow::<EpisodePublish>()
                .unwrap()
                .register_workflow::<ChatCapture>()
                .unwrap()
                .register_workflow::<WidgetTimer>()
                .unwrap()
                .build(),
        )
        .unwrap();
        let history = WorkflowHistory::from_json(json).unwrap();
        if let Err(e) = replayer.replay_workflow(history).await {
            panic!("{name} no longer replays: {e:?}");
        }
    }
}

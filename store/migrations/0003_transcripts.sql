-- Transcript segments, one row each, for search and editing. Times in clip seconds and in stream
-- seconds. The clip's `transcription` field holds the same transcript in the original's shape.
CREATE TABLE transcript_segments (
    user_id text NOT NULL,
    clip_key text NOT NULL,
    idx integer NOT NULL,
    stream_id text NOT NULL,
    start double precision NOT NULL,
    "end" double precision NOT NULL,
    stream_start double precision NOT NULL,
    stream_end double precision NOT NULL,
    text text NOT NULL,
    words jsonb NOT NULL DEFAULT '[]',
    avg_logprob double precision,
    no_speech_prob double precision,
    compression_ratio double precision,
    edited boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, clip_key, idx)
);
CREATE INDEX transcript_segments_stream ON transcript_segments (user_id, stream_id, stream_start);

-- Embedded transcript windows (~30 s / ~100 words, overlapping) for semantic search.
-- One column holds vectors of any model; each model's dimension gets its own partial HNSW
-- index (pgvector indexes need a fixed dimension), and queries use the same cast expression.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE transcript_windows (
    user_id text NOT NULL,
    stream_id text NOT NULL,
    clip_key text NOT NULL,
    model text NOT NULL,
    idx integer NOT NULL,
    dim integer NOT NULL,
    stream_start double precision NOT NULL,
    stream_end double precision NOT NULL,
    text text NOT NULL,
    embedding vector NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, clip_key, model, idx),
    CHECK (vector_dims(embedding) = dim)
);
CREATE INDEX transcript_windows_stream ON transcript_windows (user_id, stream_id, stream_start);
-- all-MiniLM-L6-v2 (local default).
CREATE INDEX transcript_windows_hnsw_384 ON transcript_windows
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dim = 384;
-- text-embedding-3-small (OpenAI, when configured).
CREATE INDEX transcript_windows_hnsw_1536 ON transcript_windows
    USING hnsw ((embedding::vector(1536)) vector_cosine_ops) WHERE dim = 1536;

-- The system of record. One table per /records resource; column names are the API's field
-- names (the original system's, camelCase included). Every row belongs to a user; ids are
-- unique per user. gt-store's catalog describes the same columns (checked by a test).

CREATE TABLE streams (
    user_id text NOT NULL,
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    title text,
    description text,
    duration double precision,
    has_episodes boolean,
    prefix text,
    series_id text,
    stream_date timestamptz,
    stream_platform text,
    thumbnail_url text,
    thumbnail text,
    stream_id text,
    video_clip_count bigint,
    PRIMARY KEY (user_id, id)
);

CREATE TABLE series (
    user_id text NOT NULL,
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    title text NOT NULL,
    description text,
    category bigint,
    is_active boolean,
    max_episode_order_index bigint,
    notify_subscribers boolean,
    playlist_id text,
    prep_notes text,
    skips jsonb,
    recurrence jsonb,
    timezone text,
    start_date date,
    start_time text,
    end_date date,
    end_time text,
    tags jsonb,
    thumbnail_url text,
    stream_title_template text,
    twitch_category jsonb,
    stream_count bigint,
    episode_title_template text,
    episode_description_template text,
    PRIMARY KEY (user_id, id)
);

CREATE TABLE video_clips (
    user_id text NOT NULL,
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    key text NOT NULL,
    stream_id text,
    start_time double precision,
    audio text,
    keyframes jsonb,
    silence jsonb,
    metadata jsonb,
    transcription jsonb,
    summary jsonb,
    transcode jsonb,
    ingestion_version text,
    error text,
    PRIMARY KEY (user_id, id)
);

CREATE TABLE episodes (
    user_id text NOT NULL,
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    title text,
    description text,
    order_index bigint,
    is_published boolean,
    tracks jsonb,
    stream_id text,
    series_id text,
    cut_list jsonb,
    youtube_video_id text,
    youtube_upload_url text,
    upload_attempts bigint,
    upload_status text,
    error_message text,
    retry_after_seconds bigint,
    upload_resume_at_byte bigint,
    render_uri text,
    tags jsonb,
    category bigint,
    notify_subscribers boolean,
    upload_queue_timestamp timestamptz,
    playlist_id text,
    PRIMARY KEY (user_id, id)
);

CREATE TABLE projects (
    user_id text NOT NULL,
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    title text,
    description text,
    status text,
    episode_id text,
    cuts jsonb,
    cut_list jsonb,
    video_clip_ids jsonb,
    PRIMARY KEY (user_id, id)
);

CREATE TABLE profiles (
    user_id text NOT NULL,
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    "standardTags" jsonb,
    timezone text,
    "promptTemplate" text,
    "summaryTemplate" text,
    "twitchChatEnabled" boolean,
    PRIMARY KEY (user_id, id)
);

CREATE TABLE tasks (
    user_id text NOT NULL,
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL,
    task_type text NOT NULL,
    record_id text,
    workflow_id text,
    message text,
    PRIMARY KEY (user_id, id)
);

CREATE TABLE chat_messages (
    user_id text NOT NULL,
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    channel_id text,
    sender_id text,
    message text,
    user_name text,
    user_login text,
    event_type text,
    "timestamp" timestamptz,
    ttl bigint,
    PRIMARY KEY (user_id, id)
);

CREATE TABLE stream_widgets (
    user_id text NOT NULL,
    id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    title text NOT NULL,
    type text NOT NULL,
    active boolean,
    config jsonb,
    state jsonb,
    access_token text,
    "showOnDashboard" boolean,
    PRIMARY KEY (user_id, id)
);

CREATE INDEX video_clips_stream ON video_clips (user_id, stream_id, key);
CREATE INDEX episodes_stream ON episodes (user_id, stream_id);
CREATE INDEX tasks_updated ON tasks (user_id, updated_at DESC);
CREATE INDEX tasks_record ON tasks (user_id, record_id);
CREATE INDEX chat_messages_channel_time ON chat_messages (user_id, channel_id, "timestamp");
CREATE INDEX chat_messages_ttl ON chat_messages (ttl) WHERE ttl IS NOT NULL;
-- Widget tokens authenticate OBS pages: globally unique, looked up without a user.
CREATE UNIQUE INDEX stream_widgets_access_token ON stream_widgets (access_token) WHERE access_token IS NOT NULL;

ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (status IN ('PENDING','RUNNING','COMPLETED','FAILED','TIMED_OUT','ABORTED','PENDING_REDRIVE'));
ALTER TABLE tasks ADD CONSTRAINT tasks_type_check CHECK (task_type IN ('ingestion','upload','rendering'));
ALTER TABLE episodes ADD CONSTRAINT episodes_upload_status_check CHECK (upload_status IN ('FAILED','SUCCESS','THROTTLED','ready_to_upload','not_ready_to_upload'));

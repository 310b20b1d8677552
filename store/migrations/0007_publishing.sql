-- Publishing (EpisodePublish): what rendering, exports and the upload produced, kept on the
-- episode; progress of long steps on the task row; per-user OAuth connections.
ALTER TABLE episodes ADD COLUMN publish jsonb;
-- A scheduled YouTube publication: the video is uploaded private and goes public then.
ALTER TABLE episodes ADD COLUMN publish_at timestamptz;
ALTER TABLE tasks ADD COLUMN progress double precision;

ALTER TABLE profiles ADD COLUMN "youtubeCaptions" boolean;
ALTER TABLE profiles ADD COLUMN "youtubePrivacy" text;
ALTER TABLE profiles ADD COLUMN "renderProfile" jsonb;
ALTER TABLE profiles ADD CONSTRAINT profiles_youtube_privacy_check
    CHECK ("youtubePrivacy" IS NULL OR "youtubePrivacy" IN ('private', 'unlisted', 'public'));

-- One row per user and provider. `sealed_tokens` is the OAuth token set sealed with
-- AES-256-GCM under the server's GT_TOKEN_KEY (never stored in clear); `csrf_token` and
-- `redirect_url` belong to the authorization in flight. `needs_reconnect` is set when the
-- provider refused the refresh token (invalid_grant): the user must connect again.
CREATE TABLE oauth_connections (
    user_id text NOT NULL,
    provider text NOT NULL CHECK (provider IN ('youtube', 'twitch')),
    csrf_token text,
    redirect_url text,
    scopes jsonb NOT NULL DEFAULT '[]',
    sealed_tokens text,
    needs_reconnect boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);

-- Twitch: connected channels, EventSub messages (dedupe + outbox) and richer chat rows.

-- The Twitch account a user connected (one per user; one user per Twitch account, so a
-- broadcaster's events have exactly one owner). `capture_*` is what ChatCapture reports:
-- whether capture is on, the transport, the last revocation and whether the user's token was
-- lost (they must reconnect).
CREATE TABLE twitch_channels (
    user_id text PRIMARY KEY,
    broadcaster_id text NOT NULL UNIQUE,
    login text NOT NULL,
    capture_enabled boolean NOT NULL DEFAULT false,
    capture_transport text NOT NULL DEFAULT 'webhook' CHECK (capture_transport IN ('webhook', 'websocket')),
    subscriptions jsonb NOT NULL DEFAULT '[]',
    last_revocation text,
    last_revocation_at timestamptz,
    token_lost boolean NOT NULL DEFAULT false,
    token_validated_at timestamptz,
    live_stream_id text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every accepted EventSub message id, so a redelivery is answered 2xx without being processed
-- twice. Non-chat events keep their body here until processed (`processed_at`): the webhook
-- answers as soon as the row is committed and a processor acts on it afterwards, so an event
-- accepted before a crash is still acted on after the restart. Rows are purged after a day
-- (Twitch refuses to resend after 10 minutes, so ids need not be kept longer).
CREATE TABLE eventsub_messages (
    message_id text PRIMARY KEY,
    message_type text NOT NULL CHECK (message_type IN ('notification', 'revocation')),
    subscription_type text,
    broadcaster_id text,
    message_time timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    body jsonb,
    processed_at timestamptz,
    process_error text
);
CREATE INDEX eventsub_messages_pending ON eventsub_messages (received_at) WHERE processed_at IS NULL AND body IS NOT NULL;
CREATE INDEX eventsub_messages_received ON eventsub_messages (received_at);

-- Chat rows written from EventSub keep Twitch's message id as `id` (unique per owner), the
-- broadcaster as `channel_id`, the message time from the signed header as `timestamp`.
ALTER TABLE chat_messages ADD COLUMN badges jsonb;
ALTER TABLE chat_messages ADD COLUMN fragments jsonb;
ALTER TABLE chat_messages ADD COLUMN color text;
ALTER TABLE chat_messages ADD COLUMN reply jsonb;
ALTER TABLE chat_messages ADD COLUMN message_type text;
ALTER TABLE chat_messages ADD COLUMN emote_count bigint;
ALTER TABLE chat_messages ADD COLUMN deleted boolean NOT NULL DEFAULT false;

-- Chat's peaks over a stream (highlight candidates), computed by ingestion; server-managed.
ALTER TABLE streams ADD COLUMN chat_highlights jsonb;

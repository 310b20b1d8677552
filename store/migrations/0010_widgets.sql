-- OBS widgets: every change to a widget, and every batch of captured chat, is published on
-- `widget_updates` so the WebSocket hubs of all API processes can fan it out. The payload is the
-- key and what changed, never the row (NOTIFY payloads are limited to 8000 bytes); a hub reads
-- the row it needs. Notifications are sent at commit, in commit order.

CREATE FUNCTION notify_widget_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('widget_updates',
            json_build_object('u', OLD.user_id, 'w', OLD.id, 'k', 'deleted')::text);
        RETURN OLD;
    END IF;
    IF NEW.access_token IS DISTINCT FROM OLD.access_token THEN
        PERFORM pg_notify('widget_updates',
            json_build_object('u', NEW.user_id, 'w', NEW.id, 'k', 'token')::text);
    END IF;
    IF NEW.config IS DISTINCT FROM OLD.config OR NEW.type IS DISTINCT FROM OLD.type THEN
        PERFORM pg_notify('widget_updates',
            json_build_object('u', NEW.user_id, 'w', NEW.id, 'k', 'config')::text);
    END IF;
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM pg_notify('widget_updates',
            json_build_object('u', NEW.user_id, 'w', NEW.id, 'k', 'state')::text);
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER stream_widgets_notify AFTER UPDATE OR DELETE ON stream_widgets
    FOR EACH ROW EXECUTE FUNCTION notify_widget_change();

-- One notification per user per statement (the webhook stores chat in batches).
CREATE FUNCTION notify_chat_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('widget_updates', json_build_object('u', c.user_id, 'k', 'chat')::text)
        FROM (SELECT DISTINCT user_id FROM changed) c;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER chat_messages_notify_insert AFTER INSERT ON chat_messages
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_chat_change();
CREATE TRIGGER chat_messages_notify_update AFTER UPDATE ON chat_messages
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_chat_change();

-- The overlay reads a user's most recent chat.
CREATE INDEX chat_messages_recent ON chat_messages (user_id, "timestamp" DESC) WHERE NOT deleted;

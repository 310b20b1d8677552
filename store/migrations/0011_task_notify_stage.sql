-- The listener read a task's message and progress from the row, which may already hold a later
-- change when two commit close together (a stage's update then showed the next stage's
-- message, and that stage was never seen). Publish this change's progress and, when short
-- enough for a NOTIFY payload (8000 bytes), its message; a longer message is read from the row.
-- (Timestamps in the payload are as json_build_object writes them, compared as instants.)
CREATE OR REPLACE FUNCTION notify_task_update() RETURNS trigger AS $$
DECLARE
    short_message boolean := NEW.message IS NULL OR octet_length(NEW.message) <= 2000;
BEGIN
    PERFORM pg_notify('task_updates', json_build_object(
        'user_id', NEW.user_id,
        'id', NEW.id,
        'status', NEW.status,
        'old_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
        'progress', NEW.progress,
        'updated_at', NEW.updated_at,
        'message_included', short_message,
        'message', CASE WHEN short_message THEN NEW.message END
    )::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

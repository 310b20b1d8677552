-- Episode proposals: review state, chapters and where in the stream they come from.
ALTER TABLE episodes ADD COLUMN review_status text;
ALTER TABLE episodes ADD COLUMN chapters jsonb;
ALTER TABLE episodes ADD COLUMN start_time double precision;
ALTER TABLE episodes ADD COLUMN end_time double precision;
CREATE INDEX episodes_stream_review ON episodes (user_id, stream_id, review_status);

-- Live task updates: every committed insert or update of a task is published on the
-- `task_updates` channel (delivered at commit, so listeners never see an unpersisted state).
-- The API's WebSocket hub listens and forwards TASK_UPDATE to the owner's connections.
CREATE FUNCTION notify_task_update() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('task_updates', json_build_object(
        'user_id', NEW.user_id,
        'task', to_jsonb(NEW),
        'old_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END
    )::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasks_notify AFTER INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION notify_task_update();

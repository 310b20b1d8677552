-- A NOTIFY payload holds at most 8000 bytes, and a task row (its message, its record id) can be
-- longer: the trigger then failed and took the task write down with it. Publish the task's key
-- and its status change only; the listener reads the row.
CREATE OR REPLACE FUNCTION notify_task_update() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('task_updates', json_build_object(
        'user_id', NEW.user_id,
        'id', NEW.id,
        'status', NEW.status,
        'old_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END
    )::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- Where a stream's raw recordings are: 'standard' (readable), 'archived' (moved to the archive
-- storage class after its episodes were published; reads need a restore) or 'restoring' (a
-- RestoreStream run is bringing them back). Server-managed: written only by the archive and
-- restore activities. NULL means standard (streams from before archiving existed).
ALTER TABLE streams ADD COLUMN archive_state text
    CHECK (archive_state IN ('standard', 'archived', 'restoring'));
ALTER TABLE streams ADD COLUMN archive_state_at timestamp with time zone;

-- Media analysis (speech map, speech audio, previews) and which audio track carries speech.
ALTER TABLE video_clips ADD COLUMN speech jsonb;
ALTER TABLE video_clips ADD COLUMN preview jsonb;
ALTER TABLE streams ADD COLUMN speech_track bigint;
ALTER TABLE profiles ADD COLUMN "speechTrack" bigint;

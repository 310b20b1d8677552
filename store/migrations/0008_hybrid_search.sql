-- Full-text search over transcript windows, fused with the vector ranking (store/src/insight.rs,
-- `search_windows`): a remembered phrase typed verbatim must find the window that contains it,
-- which a vector ranking alone does not guarantee.
--
-- Text search configuration `english`, chosen over `simple`: transcripts are English speech
-- (Whisper's default language here) and people remember the gist of what was said, not its
-- inflection ("baking the bread" must find "bake bread"), which needs stemming; its stop words
-- ("the", "we", "are") would otherwise make an all-words query require filler and dominate
-- ts_rank_cd. Phrase queries still respect word order and the gaps stop words leave
-- (phraseto_tsquery keeps their positions). A window in another language is still matched
-- word-for-word (the English stemmer leaves most foreign words as they are), only without
-- stemming. The query side must use the same configuration: `search_windows` does.
--
-- No pg_trgm: a trigram index over ~100-word windows is several times the table, and typo
-- tolerance already comes from the vector half (MiniLM's word pieces survive most typos).
ALTER TABLE transcript_windows
    ADD COLUMN text_search tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED;
CREATE INDEX transcript_windows_text_search ON transcript_windows USING gin (text_search);

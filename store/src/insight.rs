//! What ingestion derives from transcripts and what review does with it: clip summaries,
//! embedded transcript windows (pgvector) and their search, episode proposals and decisions,
//! and transcript edits. Every write is idempotent (replace-by-natural-key).

use async_trait::async_trait;
use gt_types::episode::{
    ClipSummary, ReviewStatus, SearchHit, best_matching_start, stream_link, word_ranges,
};
use gt_types::records::VideoClip;
use pgvector::Vector;
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;

use crate::error::{StoreError, StoreResult};
use crate::pg::PgStore;

/// A transcript segment row (times in clip and stream seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    pub idx: i32,
    pub start: f64,
    pub end: f64,
    pub stream_start: f64,
    pub stream_end: f64,
    pub text: String,
    pub edited: bool,
}

/// An embedded transcript window, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    pub stream_start: f64,
    pub stream_end: f64,
    pub text: String,
    pub embedding: Vec<f32>,
}

/// Episode templates of the stream's series (front-end defaults when there is none).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTemplates {
    pub series_id: Option<String>,
    pub stream_title: String,
    pub stream_description: String,
    pub title_template: String,
    pub description_template: String,
    /// The series' highest episode number so far.
    pub max_order_index: i64,
}

impl SeriesTemplates {
    /// The templates as stored, with the front end's defaults for a missing or blank one.
    pub fn with_defaults(
        series_id: Option<String>,
        stream_title: String,
        stream_description: String,
        title_template: Option<String>,
        description_template: Option<String>,
        max_order_index: i64,
    ) -> Self {
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        Self {
            series_id,
            stream_title,
            stream_description,
            title_template: non_empty(title_template)
                .unwrap_or_else(|| "${title} - Episode ${episode_order_index}".into()),
            description_template: non_empty(description_template)
                .unwrap_or_else(|| "${stream_description}".into()),
            max_order_index,
        }
    }
}

/// Replaces one segment row's text and marks it edited; returns the clip's stream id.
async fn edit_segment_text(
    conn: &mut sqlx::PgConnection,
    user_id: &str,
    key: &str,
    idx: i32,
    text: &str,
) -> StoreResult<String> {
    let row = sqlx::query(
        "UPDATE transcript_segments SET text = $4, edited = true, updated_at = now()
         WHERE user_id = $1 AND clip_key = $2 AND idx = $3 RETURNING stream_id",
    )
    .bind(user_id)
    .bind(key)
    .bind(idx)
    .bind(text)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "transcript segment {idx} of clip '{key}' not found"
        ))
    })?;
    Ok(row.get(0))
}

impl PgStore {
    /// A reviewer's correction of one segment row only (for deployments that keep the clip's
    /// transcript JSON in another store); returns the clip's stream id.
    pub async fn edit_segment_row(
        &self,
        user_id: &str,
        key: &str,
        idx: i32,
        text: &str,
    ) -> StoreResult<String> {
        let mut conn = self.pool().acquire().await?;
        edit_segment_text(&mut conn, user_id, key, idx, text).await
    }
}

fn dim_of(v: &[f32]) -> StoreResult<i32> {
    if v.is_empty() || v.len() > 16_000 {
        return Err(StoreError::Invalid(format!(
            "an embedding must have 1 to 16000 dimensions, got {}",
            v.len()
        )));
    }
    Ok(v.len() as i32)
}

/// Reciprocal rank fusion's `k`: a window's fused score is the sum of 1 / (k + rank) over the
/// rankings it appears in. 60 is the value of Cormack, Clarke & Büttcher (2009), which later
/// work found robust; it keeps the first few places of either ranking close together, so a
/// window near the top of both beats one that tops only one.
pub const RRF_K: i64 = 60;

/// How many windows each ranking contributes to the fusion (at least the hits asked for). Deep
/// enough that a window a few dozen places down one ranking and high in the other still
/// surfaces; shallow enough that the HNSW scan stays within a few hundred candidates.
pub const CANDIDATE_DEPTH: i64 = 50;

/// The full-text search configuration; must be the one migration 0008's generated column uses.
pub const TEXT_SEARCH_CONFIG: &str = "english";

/// The `SET LOCAL`s every search runs in its transaction. `hnsw.iterative_scan`: with a filter,
/// HNSW keeps scanning until enough rows pass it (pgvector 0.8). `plan_cache_mode`: the best plan
/// for the full-text half depends on how many windows hold the words (GIN bitmap scan, or the
/// stream index for a small stream), which a generic plan cannot know.
pub const SEARCH_SETTINGS: [&str; 2] = [
    "hnsw.iterative_scan = relaxed_order",
    "plan_cache_mode = force_custom_plan",
];

/// Candidates per ranking for a search asking for `limit` hits.
pub fn candidate_depth(limit: i64) -> i64 {
    limit.max(CANDIDATE_DEPTH)
}

/// The hybrid search `search_windows` runs, for vectors of dimension `dim`. Parameters: $1 the
/// query vector (binary), $2 user, $3 model, $4 stream or NULL, $5 hits, $6 candidate depth,
/// $7 the query text. Two rankings of the caller's windows, each `$6` deep:
/// - the nearest embeddings (cosine), through the dimension's partial HNSW index: the cast must
///   match the index expression, and `dim` is an integer we computed, not caller text. The
///   vector is bound in pgvector's binary form: bound as text, a plan that visits rows one by
///   one re-parsed it per row (an exact scan of 1 M windows went from 1.1 s to 29.6 s);
/// - the windows holding every word of the query (English stems, stop words ignored; GIN index
///   on the generated `text_search`), those holding them as a phrase first, then by cover
///   density (`ts_rank_cd`: the words close together).
///
/// They are fused by reciprocal rank with `RRF_K`; a phrase match counts its text rank twice, so
/// a window holding the remembered phrase outranks one that is only nearest by embedding. Ties
/// go to the window in the text ranking, then to the higher cosine.
pub fn hybrid_search_sql(dim: i32) -> String {
    let (k, cfg) = (RRF_K, TEXT_SEARCH_CONFIG);
    format!(
        "WITH nearest AS (
             SELECT clip_key, idx, row_number() OVER (ORDER BY distance, clip_key, idx) AS rank
             FROM (SELECT clip_key, idx, embedding::vector({dim}) <=> $1::vector({dim}) AS distance
                   FROM transcript_windows
                   WHERE dim = {dim} AND user_id = $2 AND model = $3
                     AND ($4::text IS NULL OR stream_id = $4)
                   ORDER BY embedding::vector({dim}) <=> $1::vector({dim})
                   LIMIT $6) by_vector
         ),
         worded AS (
             SELECT clip_key, idx, phrase,
                    row_number() OVER (ORDER BY phrase DESC, density DESC, clip_key, idx) AS rank
             FROM (SELECT clip_key, idx,
                          text_search @@ phraseto_tsquery('{cfg}', $7) AS phrase,
                          ts_rank_cd(text_search, plainto_tsquery('{cfg}', $7)) AS density
                   FROM transcript_windows
                   WHERE text_search @@ plainto_tsquery('{cfg}', $7)
                     AND dim = {dim} AND user_id = $2 AND model = $3
                     AND ($4::text IS NULL OR stream_id = $4)
                   ORDER BY phrase DESC, density DESC, clip_key, idx
                   LIMIT $6) by_text
         ),
         fused AS (
             SELECT coalesce(n.clip_key, w.clip_key) AS clip_key, coalesce(n.idx, w.idx) AS idx,
                    n.rank AS vector_rank, w.rank AS text_rank,
                    coalesce(w.phrase, false) AS phrase,
                    coalesce(1 / ({k} + n.rank)::float8, 0)
                      + coalesce((CASE WHEN w.phrase THEN 2 ELSE 1 END) / ({k} + w.rank)::float8, 0)
                      AS rank_score
             FROM nearest n FULL JOIN worded w ON w.clip_key = n.clip_key AND w.idx = n.idx
         )
         SELECT t.stream_id, t.clip_key, t.stream_start, t.stream_end, t.text,
                1 - (t.embedding::vector({dim}) <=> $1::vector({dim})) AS score,
                f.rank_score, f.vector_rank, f.text_rank, f.phrase
         FROM fused f
         JOIN transcript_windows t
           ON t.user_id = $2 AND t.model = $3 AND t.clip_key = f.clip_key AND t.idx = f.idx
         ORDER BY f.rank_score DESC, f.text_rank NULLS LAST, score DESC, t.clip_key, t.idx
         LIMIT $5"
    )
}

/// Fills each hit's `matched_words` and `highlights`: the words of the query and of the hits are
/// reduced to lexemes by Postgres with the search's own configuration, so what is highlighted is
/// what full-text search compares (a stop word is never highlighted; "baked" lights up for
/// "baking").
async fn mark_matches(
    conn: &mut sqlx::PgConnection,
    query: &str,
    hits: &mut [SearchHit],
) -> StoreResult<()> {
    use std::collections::{BTreeSet, HashMap, HashSet};
    if hits.is_empty() {
        return Ok(());
    }
    let query_words: Vec<String> = word_ranges(query)
        .into_iter()
        .map(|(_, w)| w.to_lowercase())
        .collect();
    let mut distinct: BTreeSet<String> = query_words.iter().cloned().collect();
    for h in hits.iter() {
        distinct.extend(
            word_ranges(&h.text)
                .into_iter()
                .map(|(_, w)| w.to_lowercase()),
        );
    }
    let distinct: Vec<String> = distinct.into_iter().collect();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT word, array(SELECT lexeme FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', word)))
         FROM unnest($1::text[]) AS word"
    )))
    .bind(&distinct)
    .fetch_all(&mut *conn)
    .await?;
    let lexemes: HashMap<String, Vec<String>> =
        rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
    let of = |w: &str| lexemes.get(w).map(Vec::as_slice).unwrap_or_default();
    let wanted: HashSet<&str> = query_words
        .iter()
        .flat_map(|w| of(w))
        .map(String::as_str)
        .collect();
    for h in hits.iter_mut() {
        let mut present: HashSet<&str> = HashSet::new();
        for (range, word) in word_ranges(&h.text) {
            let found: Vec<&str> = of(&word.to_lowercase())
                .iter()
                .map(String::as_str)
                .filter(|l| wanted.contains(l))
                .collect();
            if !found.is_empty() {
                h.highlights.push(range);
                present.extend(found);
            }
        }
        let mut seen = HashSet::new();
        h.matched_words = query_words
            .iter()
            .filter(|w| of(w).iter().any(|l| present.contains(l.as_str())))
            .filter(|w| seen.insert(w.as_str()))
            .cloned()
            .collect();
    }
    Ok(())
}

/// What ingestion derives from transcripts and what review and search do with it, behind a
/// trait like the records and the pipeline's typed operations (another backend implements it;
/// a DynamoDB deployment keeps this part in Postgres, see ARCHITECTURE.md).
#[async_trait]
pub trait InsightStore: Send + Sync {
    /// The clip's transcript rows in order (they carry edits; the clip's JSON mirrors them).
    async fn transcript_rows(&self, user_id: &str, key: &str) -> StoreResult<Vec<SegmentRow>>;

    /// Replaces one segment's text (a reviewer's correction), on the row and in the clip's
    /// transcript JSON, in one transaction. Returns the clip's stream id.
    async fn edit_segment(
        &self,
        user_id: &str,
        key: &str,
        idx: i32,
        text: &str,
    ) -> StoreResult<String>;

    async fn save_summary(
        &self,
        user_id: &str,
        key: &str,
        summary: &ClipSummary,
    ) -> StoreResult<()>;

    /// Replaces the clip's windows (of every model: the index holds one embedding per window)
    /// with `windows`, in one transaction.
    async fn replace_windows(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        model: &str,
        windows: &[WindowRow],
    ) -> StoreResult<()>;

    /// The `limit` best windows for the query among the user's windows embedded with `model`,
    /// optionally within one stream: the nearest embeddings to `query` (the dimension's HNSW
    /// index) fused by reciprocal rank with full-text search for `text` (the query as typed;
    /// see `hybrid_search_sql`). Each hit says which query words it holds and where, and links
    /// to the segment in its window that shares most words with `text`.
    async fn search_windows(
        &self,
        user_id: &str,
        stream_id: Option<&str>,
        model: &str,
        text: &str,
        query: &[f32],
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>>;

    /// The models the user's windows were embedded with, most rows first.
    async fn window_models(&self, user_id: &str) -> StoreResult<Vec<String>>;

    /// The stream's usable clips in stream order.
    async fn stream_clips(&self, user_id: &str, stream_id: &str) -> StoreResult<Vec<VideoClip>>;

    /// Title/description templates for the stream's episodes.
    async fn series_templates(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> StoreResult<SeriesTemplates>;

    /// Replaces the stream's undecided proposals with `episodes` (full records with ids);
    /// proposals already approved or rejected are kept, and a new proposal with a decided
    /// one's id is skipped. Returns the ids written.
    async fn replace_proposals(
        &self,
        user_id: &str,
        stream_id: &str,
        episodes: &[Value],
    ) -> StoreResult<Vec<String>>;

    /// The stream's proposals (any review state) in stream order.
    async fn proposals(&self, user_id: &str, stream_id: &str) -> StoreResult<Vec<Value>>;

    /// A review in one transaction: each edit merged into its proposal, then the decisions.
    /// Every id must be one of the stream's proposals still awaiting review; otherwise nothing
    /// is written.
    async fn apply_review(
        &self,
        user_id: &str,
        stream_id: &str,
        edits: &[(String, Value)],
        approve: &[String],
        reject: &[String],
    ) -> StoreResult<()>;

    /// Sets the review state of the stream's episodes `ids`. Unknown ids are an error and
    /// change nothing.
    async fn set_review_status(
        &self,
        user_id: &str,
        stream_id: &str,
        ids: &[String],
        status: ReviewStatus,
    ) -> StoreResult<()>;
}

#[async_trait]
impl InsightStore for PgStore {
    async fn transcript_rows(&self, user_id: &str, key: &str) -> StoreResult<Vec<SegmentRow>> {
        let rows = sqlx::query(
            "SELECT idx, start, \"end\", stream_start, stream_end, text, edited
             FROM transcript_segments WHERE user_id = $1 AND clip_key = $2 ORDER BY idx",
        )
        .bind(user_id)
        .bind(key)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SegmentRow {
                idx: r.get(0),
                start: r.get(1),
                end: r.get(2),
                stream_start: r.get(3),
                stream_end: r.get(4),
                text: r.get(5),
                edited: r.get(6),
            })
            .collect())
    }

    async fn edit_segment(
        &self,
        user_id: &str,
        key: &str,
        idx: i32,
        text: &str,
    ) -> StoreResult<String> {
        let mut tx = self.pool().begin().await?;
        let stream_id = edit_segment_text(&mut tx, user_id, key, idx, text).await?;
        // Keep the clip's transcript (the original's shape) in step with the rows.
        sqlx::query(
            "UPDATE video_clips SET
                 transcription = jsonb_set(
                     jsonb_set(transcription, ARRAY['segments', $3::text, 'text'], to_jsonb($4::text)),
                     '{text}',
                     to_jsonb((SELECT string_agg(text, ' ' ORDER BY idx) FROM transcript_segments
                               WHERE user_id = $1 AND clip_key = $2))),
                 updated_at = now()
             WHERE user_id = $1 AND id = $2 AND transcription IS NOT NULL",
        )
        .bind(user_id)
        .bind(key)
        .bind(idx.to_string())
        .bind(text)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(stream_id)
    }

    async fn save_summary(
        &self,
        user_id: &str,
        key: &str,
        summary: &ClipSummary,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE video_clips SET summary = $3, updated_at = now() WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(key)
        .bind(Json(summary))
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("clip '{key}' not found")));
        }
        Ok(())
    }

    async fn replace_windows(
        &self,
        user_id: &str,
        stream_id: &str,
        key: &str,
        model: &str,
        windows: &[WindowRow],
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM transcript_windows WHERE user_id = $1 AND clip_key = $2")
            .bind(user_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        for (i, w) in windows.iter().enumerate() {
            let dim = dim_of(&w.embedding)?;
            sqlx::query(
                "INSERT INTO transcript_windows (user_id, stream_id, clip_key, model, idx, dim,
                     stream_start, stream_end, text, embedding)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(user_id)
            .bind(stream_id)
            .bind(key)
            .bind(model)
            .bind(i as i32)
            .bind(dim)
            .bind(w.stream_start)
            .bind(w.stream_end)
            .bind(&w.text)
            .bind(Vector::from(w.embedding.clone()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn search_windows(
        &self,
        user_id: &str,
        stream_id: Option<&str>,
        model: &str,
        text: &str,
        query: &[f32],
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        let dim = dim_of(query)?;
        let mut tx = self.pool().begin().await?;
        for setting in SEARCH_SETTINGS {
            sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL {setting}")))
                .execute(&mut *tx)
                .await?;
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(hybrid_search_sql(dim)))
            .bind(Vector::from(query.to_vec()))
            .bind(user_id)
            .bind(model)
            .bind(stream_id)
            .bind(limit)
            .bind(candidate_depth(limit))
            .bind(text)
            .fetch_all(&mut *tx)
            .await?;
        let mut hits: Vec<SearchHit> = rows
            .into_iter()
            .map(|r| {
                let start: f64 = r.get(2);
                let rank = |i: usize| r.get::<Option<i64>, _>(i).map(|n| n as u32);
                SearchHit {
                    stream_id: r.get(0),
                    clip_key: r.get(1),
                    start,
                    end: r.get(3),
                    text: r.get(4),
                    score: r.get(5),
                    at: start,
                    link: String::new(),
                    rank_score: r.get(6),
                    vector_rank: rank(7),
                    text_rank: rank(8),
                    phrase_match: r.get(9),
                    matched_words: Vec::new(),
                    highlights: Vec::new(),
                }
            })
            .collect();
        mark_matches(&mut tx, text, &mut hits).await?;
        tx.commit().await?;
        // The moment inside each window: its best-matching segment.
        let keys: Vec<String> = hits.iter().map(|h| h.clip_key.clone()).collect();
        let segments = sqlx::query(
            "SELECT clip_key, stream_start, text FROM transcript_segments
             WHERE user_id = $1 AND clip_key = ANY($2) ORDER BY clip_key, idx",
        )
        .bind(user_id)
        .bind(&keys)
        .fetch_all(self.pool())
        .await?;
        for h in &mut hits {
            let inside = segments.iter().filter_map(|r| {
                let (key, start): (&str, f64) = (r.get(0), r.get(1));
                (key == h.clip_key && start >= h.start - 1e-6 && start < h.end)
                    .then(|| (start, r.get::<&str, _>(2)))
            });
            h.at = best_matching_start(text, inside).unwrap_or(h.start);
            h.link = stream_link(&h.stream_id, h.at);
        }
        Ok(hits)
    }

    async fn window_models(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT model FROM transcript_windows WHERE user_id = $1
             GROUP BY model ORDER BY count(*) DESC",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    async fn stream_clips(&self, user_id: &str, stream_id: &str) -> StoreResult<Vec<VideoClip>> {
        let rows = sqlx::query(
            "SELECT to_jsonb(t) FROM video_clips t
             WHERE user_id = $1 AND stream_id = $2 AND start_time IS NOT NULL AND error IS NULL
             ORDER BY start_time, key",
        )
        .bind(user_id)
        .bind(stream_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let doc: Value = r.get(0);
                serde_json::from_value(doc)
                    .map_err(|e| StoreError::Invalid(format!("a clip has a malformed field: {e}")))
            })
            .collect()
    }

    async fn series_templates(
        &self,
        user_id: &str,
        stream_id: &str,
    ) -> StoreResult<SeriesTemplates> {
        let row = sqlx::query(
            "SELECT s.series_id, coalesce(s.title, s.id), coalesce(s.description, ''),
                    r.episode_title_template, r.episode_description_template,
                    coalesce(r.max_episode_order_index, 0)
             FROM streams s LEFT JOIN series r ON r.user_id = s.user_id AND r.id = s.series_id
             WHERE s.user_id = $1 AND s.id = $2",
        )
        .bind(user_id)
        .bind(stream_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("stream '{stream_id}' not found")))?;
        Ok(SeriesTemplates::with_defaults(
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
        ))
    }

    async fn replace_proposals(
        &self,
        user_id: &str,
        stream_id: &str,
        episodes: &[Value],
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM episodes WHERE user_id = $1 AND stream_id = $2
               AND review_status = 'awaiting_review'",
        )
        .bind(user_id)
        .bind(stream_id)
        .execute(&mut *tx)
        .await?;
        let mut ids = Vec::new();
        for e in episodes {
            let id = e["id"].as_str().unwrap_or_default().to_string();
            let done = sqlx::query(
                "INSERT INTO episodes (user_id, id, title, description, order_index, tracks,
                     stream_id, series_id, cut_list, review_status, chapters, start_time, end_time,
                     upload_status, is_published, tags)
                 SELECT $1, e.id, e.title, e.description, e.order_index, e.tracks, $2,
                        e.series_id, e.cut_list, 'awaiting_review', e.chapters, e.start_time,
                        e.end_time, 'not_ready_to_upload', false, coalesce(e.tags, '[]')
                 FROM jsonb_to_record($3) AS e(id text, title text, description text,
                     order_index bigint, tracks jsonb, series_id text, cut_list jsonb,
                     chapters jsonb, start_time double precision, end_time double precision,
                     tags jsonb)
                 ON CONFLICT (user_id, id) DO NOTHING",
            )
            .bind(user_id)
            .bind(stream_id)
            .bind(Json(e))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                ids.push(id);
            }
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn proposals(&self, user_id: &str, stream_id: &str) -> StoreResult<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT to_jsonb(t) - 'user_id' FROM episodes t
             WHERE user_id = $1 AND stream_id = $2 AND review_status IS NOT NULL
             ORDER BY start_time, id",
        )
        .bind(user_id)
        .bind(stream_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    async fn apply_review(
        &self,
        user_id: &str,
        stream_id: &str,
        edits: &[(String, Value)],
        approve: &[String],
        reject: &[String],
    ) -> StoreResult<()> {
        let writes = edits
            .iter()
            .map(|(id, patch)| {
                crate::write::validate_write(
                    &crate::catalog::EPISODES,
                    patch,
                    crate::write::WriteKind::Update(id),
                )
                .map(|w| (id, w))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut tx = self.pool().begin().await?;
        let named: Vec<&String> = edits
            .iter()
            .map(|(id, _)| id)
            .chain(approve)
            .chain(reject)
            .collect();
        let awaiting: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM episodes WHERE user_id = $1 AND stream_id = $2 AND id = ANY($3)
               AND review_status = 'awaiting_review' FOR UPDATE",
        )
        .bind(user_id)
        .bind(stream_id)
        .bind(&named)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(id) = named.iter().find(|id| !awaiting.contains(id)) {
            return Err(StoreError::Invalid(format!(
                "episode '{id}' is not a proposal of stream '{stream_id}' awaiting review"
            )));
        }
        for (id, write) in &writes {
            crate::pg::update_query(&crate::catalog::EPISODES, user_id, id, write)
                .build()
                .fetch_one(&mut *tx)
                .await?;
        }
        for (ids, status) in [
            (approve, ReviewStatus::Approved),
            (reject, ReviewStatus::Rejected),
        ] {
            sqlx::query(
                "UPDATE episodes SET review_status = $4, updated_at = now()
                 WHERE user_id = $1 AND stream_id = $2 AND id = ANY($3)",
            )
            .bind(user_id)
            .bind(stream_id)
            .bind(ids)
            .bind(status.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_review_status(
        &self,
        user_id: &str,
        stream_id: &str,
        ids: &[String],
        status: ReviewStatus,
    ) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE episodes SET review_status = $4, updated_at = now()
             WHERE user_id = $1 AND stream_id = $2 AND id = ANY($3) AND review_status IS NOT NULL",
        )
        .bind(user_id)
        .bind(stream_id)
        .bind(ids)
        .bind(status.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != ids.len() as u64 {
            return Err(StoreError::NotFound(format!(
                "not every episode in {ids:?} is a proposal of stream '{stream_id}'"
            )));
        }
        tx.commit().await?;
        Ok(())
    }
}

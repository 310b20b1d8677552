// The API as this UI uses it: response shapes (field names exactly as gt-types serializes them)
// and every call the UI makes. `ENDPOINTS` is checked against the live `/openapi.json` by the
// browser test (tests/tests/e2e/browser.rs), so a renamed or removed route fails there.

export type TaskStatus =
  | "PENDING"
  | "RUNNING"
  | "COMPLETED"
  | "FAILED"
  | "TIMED_OUT"
  | "ABORTED"
  | "PENDING_REDRIVE";

export type IngestStage =
  | "starting"
  | "listing"
  | "probing"
  | "recording"
  | "analyzing"
  | "transcribing"
  | "summarizing"
  | "proposing"
  | "awaiting_review"
  | "publishing"
  | "completed"
  | "failed"
  | "cancelled";

export type ReviewStatus = "awaiting_review" | "approved" | "rejected";

export interface Page<T> {
  items: T[];
  cursor: string | null;
}

export interface Stream {
  id: string;
  title?: string;
  description?: string;
  prefix?: string;
  duration?: number;
  series_id?: string;
  stream_date?: string;
  video_clip_count?: number;
  speech_track?: number;
}

export interface Interval {
  start: number;
  end: number;
}

export interface Moment {
  timestamp_start: number;
  timestamp_end: number;
  description: string;
}

export interface TranscriptSegment {
  start: number;
  end: number;
  text: string;
}

export interface VideoClip {
  id?: string;
  key: string;
  stream_id?: string;
  start_time?: number;
  keyframes?: string[];
  error?: string;
  metadata?: { format?: { duration?: number } };
  speech?: { track: number; track_title?: string; speech: Interval[]; silence: Interval[]; start: number; end: number };
  preview?: { segments: { key: string; duration: number }[] };
  transcription?: { segments: TranscriptSegment[] };
  summary?: { title?: string; highlights?: Moment[]; method?: string };
}

export interface Chapter {
  start: number;
  title: string;
}

export interface Episode {
  id: string;
  title?: string;
  description?: string;
  stream_id?: string;
  series_id?: string;
  review_status?: ReviewStatus;
  start_time?: number;
  end_time?: number;
  chapters?: Chapter[];
  render_uri?: string;
  youtube_video_id?: string;
  upload_status?: string;
  error_message?: string;
}

export interface IngestProgress {
  stage: IngestStage;
  clips_total: number;
  clips_done: number;
  clips_failed: number;
  episodes_proposed: number;
  episodes_reviewed: number;
  /** Clips whose preview is built (after the proposals, while the run waits for review). */
  clips_previewed: number;
  percent: number;
}

export interface IngestStatus {
  workflow_id: string;
  run_id: string;
  status: string;
  progress: IngestProgress;
  error?: string;
  note?: string;
}

export interface PublishStatus {
  workflow_id: string;
  run_id: string;
  status: string;
  progress?: {
    stage: string;
    upload_requested: boolean;
    video_id?: string;
    waiting_until?: string;
    message?: string;
  };
  result?: { episode_id: string; status: string; video_id?: string; render_key?: string };
  error?: string;
  note?: string;
}

export interface Task {
  id: string;
  status: TaskStatus;
  task_type: "ingestion" | "upload" | "rendering";
  record_id?: string;
  workflow_id?: string;
  message?: string;
  progress?: number;
  updated_at?: string;
}

export interface TaskUpdateMessage {
  type: "TASK_UPDATE";
  task: Task;
  old_status?: TaskStatus | null;
}

export interface SearchHit {
  stream_id: string;
  clip_key: string;
  start: number;
  end: number;
  text: string;
  score: number;
  at: number;
  link: string;
  /** Matched words as [start, end) ranges of `text`, when the server reports them. */
  highlights?: ([number, number] | { start: number; end: number })[];
  matches?: ([number, number] | { start: number; end: number })[];
}

export interface SearchResults {
  items: SearchHit[];
  model: string;
}

export interface EpisodeEdit {
  id: string;
  title?: string;
  description?: string;
  chapters?: Chapter[];
  /** A new range, stream seconds: the cut list and chapters are made again for it. */
  start_time?: number;
  end_time?: number;
}

export interface ReviewRequest {
  approve: string[];
  reject: string[];
  edits: EpisodeEdit[];
}

export interface EpisodeParams {
  break_gap: number;
  min_length: number;
  max_length: number;
}

export interface StreamIngestRequest {
  streamId: string;
  initialPrompt: string;
  initialSummary: string;
  language?: string;
  episodes?: EpisodeParams;
}

export interface Profile {
  id?: string;
  timezone?: string;
  speechTrack?: number;
  promptTemplate?: string;
  summaryTemplate?: string;
  youtubePrivacy?: "private" | "unlisted" | "public";
  youtubeCaptions?: boolean;
}

export interface Series {
  id: string;
  title?: string;
  description?: string;
  episode_title_template?: string;
  episode_description_template?: string;
  recurrence?: unknown;
  timezone?: string;
  start_time?: string;
}

export interface Project {
  id: string;
  title?: string;
  description?: string;
  status?: string;
}

/**
 * Every (method, OpenAPI path) this UI calls. Not listed because the document does not describe
 * them: `/playlist/{stream_id}.m3u8` (read by the player), `/auth/youtube/*` and the OBS widget
 * page `/widgets/{id}` (an HTML page, shown in the widgets page's previews).
 */
export const ENDPOINTS: [string, string][] = [
  ["get", "/records/streams"],
  ["get", "/records/streams/{id}"],
  ["get", "/records/video_clips/{field}/{value}"],
  ["get", "/records/profiles/{id}"],
  ["put", "/records/profiles/{id}"],
  ["get", "/episodes/{id}/export.srt"],
  ["get", "/episodes/{id}/export.vtt"],
  ["get", "/episodes/{id}/export.otio"],
  ["get", "/episodes/{id}/export.edl"],
  ["post", "/records/streams"],
  ["get", "/records/series"],
  ["post", "/records/series"],
  ["get", "/records/projects"],
  ["post", "/records/projects"],
  ["get", "/records/episodes"],
  ["get", "/records/tasks"],
  ["post", "/stream"],
  ["get", "/stream/{stream_id}/progress"],
  ["post", "/stream/{stream_id}/cancel"],
  ["get", "/stream/{stream_id}/episodes"],
  ["post", "/stream/{stream_id}/review"],
  ["post", "/transcripts/edit"],
  ["get", "/search"],
  ["get", "/ws"],
  ["post", "/render"],
  ["post", "/upload/youtube"],
  ["get", "/episodes/{episode_id}/publish"],
  ["get", "/auth/youtube/token"],
  ["post", "/auth/youtube/url"],
  ["post", "/auth/youtube/callback"],
  ["get", "/auth/twitch/token"],
  ["post", "/auth/twitch/url"],
  ["post", "/auth/twitch/callback"],
  ["get", "/eventsub/chat/status"],
  ["post", "/eventsub/chat/subscribe"],
  ["delete", "/eventsub/chat/subscribe"],
  ["get", "/records/stream_widgets"],
  ["post", "/records/stream_widgets"],
  ["put", "/records/stream_widgets/{id}"],
  ["delete", "/records/stream_widgets/{id}"],
];

/** `GET /eventsub/chat/status`, the parts the profile shows. */
export interface ChatCaptureStatus {
  has_active_subscription: boolean;
  connected?: boolean;
  configured?: boolean;
  capture?: {
    enabled: boolean;
    transport: "webhook" | "websocket";
    token_lost: boolean;
    last_revocation?: string | null;
    workflow?: { state: "subscribing" | "capturing" | "needs_reconnect" | "disabled" } | null;
  };
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "gt-token";

export function takeTokenFromFragment(): void {
  // The local token arrives as `#token=`: fragments never reach a server or its logs. It is
  // moved to storage and removed from the address bar at once.
  const fragment = new URLSearchParams(location.hash.slice(1));
  const t = fragment.get("token");
  if (t) {
    localStorage.setItem(TOKEN_KEY, t);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

export function token(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

export let onUnauthorized: () => void = () => {};
export function setOnUnauthorized(f: () => void): void {
  onUnauthorized = f;
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? "GET",
    headers: { Authorization: token() ?? "", "Content-Type": "application/json" },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  if (res.status === 401) {
    setToken(null);
    onUnauthorized();
    throw new ApiError(401, "your token was refused; paste a new one");
  }
  const text = await res.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { message: text };
    }
  }
  if (!res.ok) {
    const m = (body as { message?: string } | null)?.message;
    throw new ApiError(res.status, m ?? `${res.status} ${res.statusText}`);
  }
  return body as T;
}

/** A file the API serves behind the Authorization header, as an object URL. */
export async function blobUrl(path: string): Promise<string> {
  const res = await fetch(path, { headers: { Authorization: token() ?? "" } });
  if (!res.ok) throw new ApiError(res.status, `${path}: ${res.status}`);
  return URL.createObjectURL(await res.blob());
}

export async function loadAll<T>(path: string): Promise<T[]> {
  let items: T[] = [];
  let cursor: string | null = "null";
  do {
    const page: Page<T> = await api<Page<T>>(`${path}?perPage=100&cursor=${encodeURIComponent(cursor)}`);
    items = items.concat(page.items);
    cursor = page.cursor;
  } while (cursor);
  return items;
}

export const seg = encodeURIComponent;

// OBS widgets as the pages see them (contract: /records/stream_widgets and the /ws protocol):
// record, config and state shapes, the messages, and the pure time arithmetic both the OBS page
// and the dashboard use. No DOM here.

export type WidgetType =
  | "countdown"
  | "text_overlay"
  | "ad_timer"
  | "chat_overlay"
  | "poll"
  | "name_queue"
  | "bot_integration";

/** The kinds that have behaviour (the dashboard offers these). */
export const WIDGET_KINDS: { type: WidgetType; label: string }[] = [
  { type: "countdown", label: "Countdown" },
  { type: "text_overlay", label: "Text overlay" },
  { type: "ad_timer", label: "Ad-break timer" },
  { type: "chat_overlay", label: "Chat overlay" },
];

/** Appearance, every kind (all optional). */
export interface Appearance {
  width?: number;
  height?: number;
  /** rem */
  fontSize?: number;
  fontFamily?: string;
  textColor?: string;
  backgroundColor?: string;
  showBackground?: boolean;
}

export type CountdownFormat = "hh:mm:ss" | "mm:ss" | "auto";
export type CountdownFinish = "text" | "hide" | "count_up";

export interface CountdownConfig extends Appearance {
  duration?: number;
  mode?: "duration" | "until";
  target?: string;
  timezone?: string;
  title?: string;
  text?: string;
  onFinish?: CountdownFinish;
  finishedText?: string;
  format?: CountdownFormat;
  showTitle?: boolean;
  showText?: boolean;
  showProgressBar?: boolean;
  onFinishScene?: string;
}

export interface CountdownState {
  enabled?: boolean;
  duration_left?: number;
  last_tick_timestamp?: string | null;
  finished_at?: string | null;
}

export interface TextOverlayConfig extends Appearance {
  text?: string;
  subtitle?: string;
}

export interface TextOverlayState {
  text?: string;
  subtitle?: string;
  visible?: boolean;
  updated_at?: string | null;
}

export interface AdTimerConfig extends Appearance {
  visibilityThreshold?: number;
  backFromAdsDuration?: number;
  upcomingText?: string;
  runningText?: string;
  welcomeBackText?: string;
}

export type AdPhase = "idle" | "upcoming" | "running" | "welcome_back";

export interface AdTimerState {
  phase?: AdPhase;
  next_ad_at?: string | null;
  last_ad_at?: string | null;
  ad_started_at?: string | null;
  ad_ends_at?: string | null;
  welcome_back_until?: string | null;
  ad_duration?: number | null;
  snooze_count?: number | null;
  snooze_refresh_at?: string | null;
  preroll_free_time?: number | null;
  is_automatic?: boolean | null;
  schedule_checked_at?: string | null;
}

export interface ChatOverlayConfig extends Appearance {
  maxMessages?: number;
  fadeAfter?: number;
  hideCommands?: boolean;
  ignoredUsers?: string[];
  showBadges?: boolean;
  emoteBaseUrl?: string;
}

export interface ChatBadge {
  set_id: string;
  id: string;
  info?: string;
}

export interface ChatFragment {
  type: string;
  text: string;
  emote?: { id: string } | null;
}

export interface ChatMessage {
  id: string;
  user_login?: string;
  user_name?: string;
  color?: string | null;
  badges?: ChatBadge[];
  fragments?: ChatFragment[];
  text?: string;
  timestamp: string;
}

export interface ChatOverlayState {
  messages?: ChatMessage[];
}

/** A `stream_widgets` record. `config` and `state` depend on `type`. */
export interface Widget {
  id: string;
  user_id?: string;
  title: string;
  type: WidgetType;
  active?: boolean;
  showOnDashboard?: boolean;
  config?: Record<string, unknown> | null;
  state?: Record<string, unknown> | null;
  access_token?: string;
  created_at?: string;
  updated_at?: string;
}

// ---- WebSocket messages -------------------------------------------------------------------

export type ClientMessage =
  | { type: "WIDGET_SUBSCRIBE"; widgetId: string }
  | { type: "WIDGET_UNSUBSCRIBE"; widgetId: string }
  | { type: "WIDGET_ACTION"; widgetId: string; action: string; payload: Record<string, unknown> };

export type WidgetServerMessage =
  | { type: "WIDGET_INITIAL_STATE"; widgetId: string; widget: Widget }
  | { type: "WIDGET_STATE_UPDATE"; widgetId: string; state: Record<string, unknown>; timestamp?: string }
  | { type: "WIDGET_CONFIG_UPDATE"; widgetId: string; config: Record<string, unknown> }
  | { type: "WIDGET_ACTION_RESPONSE"; widgetId: string; action: string; success: boolean; error?: string };

const WIDGET_MESSAGE_TYPES = new Set([
  "WIDGET_INITIAL_STATE",
  "WIDGET_STATE_UPDATE",
  "WIDGET_CONFIG_UPDATE",
  "WIDGET_ACTION_RESPONSE",
]);

/** A widget message from a socket frame, or null for anything else (task updates, junk). */
export function parseWidgetMessage(data: unknown): WidgetServerMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(String(data));
  } catch {
    return null;
  }
  if (typeof m !== "object" || m === null) return null;
  const t = (m as { type?: unknown }).type;
  const id = (m as { widgetId?: unknown }).widgetId;
  if (typeof t !== "string" || !WIDGET_MESSAGE_TYPES.has(t) || typeof id !== "string") return null;
  return m as WidgetServerMessage;
}

/**
 * Reconnect delay after `failures` consecutive failed connections: the first retry is quick
 * (a restart of the API is usually over in a moment), then the original front end's backoff
 * min(1000·2^min(n,10), 30000) ms with n counting from 0 at the second retry.
 */
export function reconnectDelay(failures: number): number {
  if (failures <= 0) return 250;
  return Math.min(1000 * 2 ** Math.min(failures - 1, 10), 30000);
}

// ---- time ---------------------------------------------------------------------------------

/** Milliseconds since the epoch of an RFC 3339 time, or null when absent or unreadable. */
export function instant(t: string | null | undefined): number | null {
  if (!t) return null;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

function num(v: unknown, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}

/** Seconds left at `nowMs`: running counts down from the last tick, stopped shows duration_left. */
export function countdownRemaining(state: CountdownState, nowMs: number): number {
  const left = Math.max(0, num(state.duration_left, 0));
  const tick = instant(state.last_tick_timestamp);
  if (!state.enabled || tick === null) return left;
  return Math.max(0, left - Math.max(0, nowMs - tick) / 1000);
}

/** When a running countdown reaches zero (ms since the epoch), else null. */
export function countdownEndsAt(state: CountdownState): number | null {
  const tick = instant(state.last_tick_timestamp);
  if (!state.enabled || tick === null) return null;
  return tick + Math.max(0, num(state.duration_left, 0)) * 1000;
}

export type CountdownPhase = "ready" | "running" | "paused" | "finished";

export interface CountdownView {
  phase: CountdownPhase;
  /** Seconds left (fractional). */
  remaining: number;
  /** Seconds since the end (count_up), 0 before it. */
  overtime: number;
  /** 0..1 of the configured duration still left. */
  fraction: number;
}

/**
 * What the countdown shows at `nowMs`. A running countdown whose end has passed counts as
 * finished here at once (the server's tick confirms it a moment later); the end instant is
 * then the computed one, as the server records it.
 */
export function countdownView(config: CountdownConfig, state: CountdownState, nowMs: number): CountdownView {
  const duration = Math.max(0, num(config.duration, 300));
  // A widget whose state the server has not written yet has not started.
  if (typeof state.duration_left !== "number") state = { ...state, enabled: false, duration_left: duration };
  const remaining = countdownRemaining(state, nowMs);
  const finishedAt = instant(state.finished_at) ?? (state.enabled && remaining <= 0 ? countdownEndsAt(state) : null);
  const fraction = duration > 0 ? Math.min(1, remaining / duration) : 0;
  if (finishedAt !== null) {
    return { phase: "finished", remaining: 0, overtime: Math.max(0, (nowMs - finishedAt) / 1000), fraction: 0 };
  }
  if (state.enabled) return { phase: "running", remaining, overtime: 0, fraction };
  const left = num(state.duration_left, duration);
  // Stopped with time used up is paused; stopped at the full duration has not started.
  return { phase: left < duration ? "paused" : "ready", remaining, overtime: 0, fraction };
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/**
 * A duration as the countdown displays it, whole seconds: "hh:mm:ss" → "01:02:05",
 * "mm:ss" → minutes without a cap ("62:05"), "auto" → "hh:mm:ss" from one hour, else "mm:ss".
 */
export function formatDuration(seconds: number, format: CountdownFormat = "auto"): string {
  const t = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(t / 3600);
  const mm = Math.floor((t % 3600) / 60);
  const ss = t % 60;
  if (format === "hh:mm:ss" || (format !== "mm:ss" && hh > 0)) return `${pad2(hh)}:${pad2(mm)}:${pad2(ss)}`;
  return `${pad2(Math.floor(t / 60))}:${pad2(ss)}`;
}

/**
 * The countdown's clock text: the remaining seconds rounded up (a fresh 5-minute countdown
 * reads 05:00 until a whole second has passed and 00:00 only at the end).
 */
export function countdownClock(remaining: number, format: CountdownFormat = "auto"): string {
  return formatDuration(Math.ceil(remaining - 1e-6), format);
}

/** The ad timer's phase at `nowMs`, from the state's instants (the spec's phase rules). */
export function adPhase(state: AdTimerState, nowMs: number): AdPhase {
  const ends = instant(state.ad_ends_at);
  const back = instant(state.welcome_back_until);
  const next = instant(state.next_ad_at);
  if (ends !== null && nowMs < ends) return "running";
  if (ends !== null && back !== null && nowMs >= ends && nowMs < back) return "welcome_back";
  if (next !== null && next > nowMs) return "upcoming";
  return "idle";
}

/** Chat messages the overlay shows: the config's filters applied, newest last, at most max. */
export function visibleChat(config: ChatOverlayConfig, state: ChatOverlayState): ChatMessage[] {
  const max = Math.min(100, Math.max(1, Math.floor(num(config.maxMessages, 20))));
  const ignored = new Set((config.ignoredUsers ?? []).map((u) => String(u).toLowerCase()));
  const hideCommands = config.hideCommands ?? true;
  const all = Array.isArray(state.messages) ? state.messages : [];
  return all
    .filter((m) => m && typeof m.id === "string")
    .filter((m) => !ignored.has((m.user_login ?? "").toLowerCase()))
    .filter((m) => !(hideCommands && messageText(m).trimStart().startsWith("!")))
    .slice(-max);
}

export function messageText(m: ChatMessage): string {
  if (typeof m.text === "string") return m.text;
  return (Array.isArray(m.fragments) ? m.fragments : []).map((f) => f.text).join("");
}

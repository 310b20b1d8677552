// The OBS browser-source page: `/widgets/{id}?token=<widget access token>`.
//
// It subscribes to one widget over `/ws` with the token from its URL and renders the widget's
// state; it never sends actions (a widget token is read-only). Time-driven displays (countdown,
// ad timer, chat fading) are derived from the state's instants and the clock, and redrawn on
// animation frames and on a timer, so they keep going while disconnected, hidden or unfocused
// (OBS throttles animation frames of sources that are not shown). After a lost connection it
// reconnects with backoff and subscribes again; the last state stays on screen meanwhile.
//
// Hooks for browser tests: `data-widget-kind` and `data-phase` on #widget, `[data-role=time]`,
// `[data-role=text]`, `[data-role=chat-line][data-message-id]`, `[data-role=status]` (its
// `data-state` and text: connecting | connected | reconnecting) and `window.__gtWidget`.

import {
  adPhase,
  countdownClock,
  countdownView,
  formatDuration,
  instant,
  messageText,
  parseWidgetMessage,
  reconnectDelay,
  visibleChat,
} from "./widget-model";
import type {
  AdTimerConfig,
  AdTimerState,
  Appearance,
  ChatMessage,
  ChatOverlayConfig,
  ChatOverlayState,
  CountdownConfig,
  CountdownState,
  TextOverlayConfig,
  TextOverlayState,
  Widget,
  WidgetServerMessage,
} from "./widget-model";

type ConnectionStatus = "connecting" | "connected" | "reconnecting";

/** What browser tests read (`window.__gtWidget`). */
interface WidgetHook {
  widgetId: string | null;
  kind: string | null;
  widget: Widget | null;
  state: Record<string, unknown> | null;
  config: Record<string, unknown> | null;
  connected: boolean;
  status: ConnectionStatus;
  /** WIDGET_STATE_UPDATE messages received. */
  updates: number;
  /** performance.now() when the last WIDGET_STATE_UPDATE arrived (and was drawn), else null. */
  lastUpdateAt: number | null;
  /** WIDGET_INITIAL_STATE messages received (one per subscribe, so one per connection). */
  initialStates: number;
  /** WIDGET_CONFIG_UPDATE messages received. */
  configUpdates: number;
  /** Connections opened so far. */
  connections: number;
  /** The last refusal or close reason, e.g. "token rotated". */
  error: string | null;
  /** OBS scenes this page switched to (countdown `onFinishScene`). */
  scenesSwitched: string[];
}

declare global {
  interface Window {
    __gtWidget: WidgetHook;
    obsstudio?: { setCurrentScene?: (name: string) => void };
  }
}

const root = document.getElementById("widget")!;
const statusEl = document.getElementById("status")!;
const errorEl = document.getElementById("error")!;

const hook: WidgetHook = {
  widgetId: null,
  kind: null,
  widget: null,
  state: null,
  config: null,
  connected: false,
  status: "connecting",
  updates: 0,
  lastUpdateAt: null,
  initialStates: 0,
  configUpdates: 0,
  connections: 0,
  error: null,
  scenesSwitched: [],
};
window.__gtWidget = hook;

// ---- DOM helpers --------------------------------------------------------------------------

function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** Sets text only when it changed (the draw loop runs every frame). */
function setText(e: HTMLElement, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

function setAttr(e: HTMLElement, name: string, value: string): void {
  if (e.getAttribute(name) !== value) e.setAttribute(name, value);
}

function setHidden(e: HTMLElement, hidden: boolean): void {
  if (e.hidden !== hidden) e.hidden = hidden;
}

function str(v: unknown, fallback: string): string {
  return typeof v === "string" ? v : fallback;
}

function setStatus(s: ConnectionStatus): void {
  hook.status = s;
  hook.connected = s === "connected";
  setAttr(statusEl, "data-state", s);
  setText(statusEl, s);
}

function showError(text: string | null): void {
  hook.error = text;
  // Shown only while nothing is drawn: once a widget is on screen, a reconnect problem must not
  // cover the stream with text (the last state stays up).
  setText(errorEl, text ?? "");
  setHidden(errorEl, !text || hook.widget !== null);
}

// ---- appearance ---------------------------------------------------------------------------

function inRange(v: unknown, lo: number, hi: number): number | null {
  return typeof v === "number" && Number.isFinite(v) && v >= lo && v <= hi ? v : null;
}

/** Canvas size, fonts and colours; the page is transparent unless showBackground. */
function applyAppearance(c: Appearance): void {
  const background = c.showBackground ? str(c.backgroundColor, "") || "#18181b" : "transparent";
  for (const e of [document.documentElement, document.body]) e.style.setProperty("background", background);
  const w = inRange(c.width, 100, 3840);
  const h = inRange(c.height, 100, 2160);
  root.style.width = w !== null ? `${w}px` : "100vw";
  root.style.height = h !== null ? `${h}px` : "100vh";
  root.style.fontFamily = str(c.fontFamily, "");
  const size = typeof c.fontSize === "number" && c.fontSize > 0 && Number.isFinite(c.fontSize) ? c.fontSize : null;
  root.style.fontSize = size !== null ? `${size}rem` : "";
  root.style.color = str(c.textColor, "") || "white";
}

// ---- kinds --------------------------------------------------------------------------------

/** One kind's DOM: built from the config, then fed states and redrawn with the clock. */
interface KindView {
  setState(state: Record<string, unknown>): void;
  draw(nowMs: number): void;
}

function countdownView_(config: CountdownConfig): KindView {
  const title = el("div", { class: "title", "data-role": "title" });
  const time = el("div", { class: "time", "data-role": "time" });
  const bar = el("div", { class: "bar" });
  const progress = el("div", { class: "progress", "data-role": "progress" }, bar);
  const text = el("div", { class: "text", "data-role": "countdown-text" });
  const box = el("div", { class: "countdown" }, title, time, progress, text);
  root.replaceChildren(box);
  setText(title, str(config.title, ""));
  setHidden(title, config.showTitle === false || !config.title);
  setText(text, str(config.text, ""));
  setHidden(text, config.showText === false || !config.text);
  const finish = config.onFinish ?? "text";
  const format = config.format ?? "auto";
  let state: CountdownState = {};
  // The scene switch fires once per run, when this page saw it running and then end.
  let sawRunning = false;
  return {
    setState(s) {
      state = s as CountdownState;
    },
    draw(now) {
      const v = countdownView(config, state, now);
      setAttr(root, "data-phase", v.phase);
      if (v.phase === "running") sawRunning = true;
      let shown: string;
      if (v.phase === "finished") {
        shown = finish === "count_up" ? `+${formatDuration(v.overtime, format)}` : finish === "text" ? str(config.finishedText, "Time's up!") : countdownClock(0, format);
        if (sawRunning) {
          sawRunning = false;
          switchScene(config.onFinishScene);
        }
      } else {
        shown = countdownClock(v.remaining, format);
      }
      setText(time, shown);
      setHidden(box, v.phase === "finished" && finish === "hide");
      setHidden(progress, config.showProgressBar === false || (v.phase === "finished" && finish !== "hide"));
      const pct = `${(v.fraction * 100).toFixed(2)}%`;
      if (bar.style.width !== pct) bar.style.width = pct;
    },
  };
}

function switchScene(scene: string | undefined): void {
  const obs = window.obsstudio;
  if (!scene || typeof obs?.setCurrentScene !== "function") return;
  hook.scenesSwitched.push(scene);
  try {
    obs.setCurrentScene(scene);
  } catch (e) {
    // Without the "advanced access" permission OBS refuses; the countdown goes on regardless.
    console.warn("OBS refused the scene switch", e);
  }
}

function textOverlayView(config: TextOverlayConfig): KindView {
  const text = el("div", { class: "text", "data-role": "text" });
  const subtitle = el("div", { class: "subtitle", "data-role": "subtitle" });
  const box = el("div", { class: "text-overlay" }, text, subtitle);
  root.replaceChildren(box);
  let state: TextOverlayState = {};
  return {
    setState(s) {
      state = s as TextOverlayState;
      const visible = state.visible !== false;
      setAttr(root, "data-phase", visible ? "visible" : "hidden");
      setHidden(box, !visible);
      setText(text, str(state.text, str(config.text, "")));
      const sub = str(state.subtitle, str(config.subtitle, ""));
      setText(subtitle, sub);
      setHidden(subtitle, !sub);
    },
    draw() {},
  };
}

function adTimerView(config: AdTimerConfig): KindView {
  const label = el("div", { class: "label", "data-role": "ad-text" });
  const time = el("div", { class: "time", "data-role": "time" });
  const snoozes = el("div", { class: "snoozes", "data-role": "snoozes" });
  const box = el("div", { class: "ad-timer" }, label, time, snoozes);
  root.replaceChildren(box);
  const threshold = typeof config.visibilityThreshold === "number" ? config.visibilityThreshold : 300;
  let state: AdTimerState = {};
  return {
    setState(s) {
      state = s as AdTimerState;
    },
    draw(now) {
      const phase = adPhase(state, now);
      setAttr(root, "data-phase", phase);
      let visible = false;
      if (phase === "running") {
        visible = true;
        setText(label, str(config.runningText, "Ads running — back soon"));
        const left = Math.max(0, ((instant(state.ad_ends_at) ?? now) - now) / 1000);
        setText(time, `${Math.ceil(left - 1e-6)}`);
        setHidden(time, false);
        setHidden(snoozes, true);
      } else if (phase === "welcome_back") {
        visible = true;
        setText(label, str(config.welcomeBackText, "Welcome back!"));
        setText(time, "");
        setHidden(time, true);
        setHidden(snoozes, true);
      } else if (phase === "upcoming") {
        const left = Math.max(0, ((instant(state.next_ad_at) ?? now) - now) / 1000);
        visible = left <= threshold;
        setText(label, str(config.upcomingText, "Ad break in"));
        setText(time, countdownClock(left, "auto"));
        setHidden(time, false);
        const n = state.snooze_count;
        setText(snoozes, typeof n === "number" ? `${n} snooze${n === 1 ? "" : "s"} left` : "");
        setHidden(snoozes, typeof n !== "number");
      }
      setAttr(root, "data-visible", String(visible));
      setHidden(box, !visible);
    },
  };
}

function chatOverlayView(config: ChatOverlayConfig): KindView {
  const list = el("ol", { class: "chat", "data-role": "chat" });
  root.replaceChildren(list);
  const base = str(config.emoteBaseUrl, "https://static-cdn.jtvnw.net/emoticons/v2").replace(/\/+$/, "");
  const fadeAfter = typeof config.fadeAfter === "number" && config.fadeAfter >= 0 ? config.fadeAfter : 30;
  const showBadges = config.showBadges !== false;
  /** Lines by message id, kept across states so a fading line is not redrawn from scratch. */
  const lines = new Map<string, { li: HTMLElement; at: number }>();

  const line = (m: ChatMessage): HTMLElement => {
    const li = el("li", { class: "chat-line", "data-role": "chat-line", "data-message-id": m.id });
    if (showBadges) {
      for (const b of Array.isArray(m.badges) ? m.badges : []) {
        li.append(el("span", { class: "chip", "data-role": "badge", "data-badge": b.set_id, title: b.info ? `${b.set_id} ${b.info}` : b.set_id }, b.set_id));
      }
    }
    const name = el("span", { class: "name", "data-role": "chat-user" }, m.user_name || m.user_login || "");
    name.style.color = m.color || nameColour(m.user_login ?? m.user_name ?? "");
    const body = el("span", { class: "message", "data-role": "chat-text" });
    const frags = Array.isArray(m.fragments) && m.fragments.length ? m.fragments : [{ type: "text", text: messageText(m) }];
    for (const f of frags) {
      const emote = f.type === "emote" ? f.emote?.id : undefined;
      if (emote) {
        const img = el("img", { class: "emote", alt: String(f.text ?? ""), src: `${base}/${encodeURIComponent(emote)}/default/dark/1.0` }) as HTMLImageElement;
        img.addEventListener("error", () => img.replaceWith(document.createTextNode(String(f.text ?? ""))), { once: true });
        body.append(img);
      } else {
        body.append(String(f.text ?? ""));
      }
    }
    li.append(name, el("span", { class: "sep" }, ": "), body);
    return li;
  };

  return {
    setState(s) {
      const shown = visibleChat(config, s as ChatOverlayState);
      const keep = new Set(shown.map((m) => m.id));
      for (const [id, l] of lines) {
        if (!keep.has(id)) {
          l.li.remove();
          lines.delete(id);
        }
      }
      // Re-append in order: moves existing lines, adds new ones at the bottom.
      for (const m of shown) {
        let l = lines.get(m.id);
        if (!l) {
          l = { li: line(m), at: instant(m.timestamp) ?? Date.now() };
          lines.set(m.id, l);
        }
        list.append(l.li);
      }
    },
    draw(now) {
      if (fadeAfter <= 0) return;
      for (const l of lines.values()) {
        const faded = now >= l.at + fadeAfter * 1000;
        if (l.li.classList.contains("faded") !== faded) {
          l.li.classList.toggle("faded", faded);
          l.li.dataset.faded = String(faded);
        }
      }
    },
  };
}

/** A stable colour for users without one (Twitch leaves `color` empty for them). */
function nameColour(login: string): string {
  let h = 0;
  for (const c of login) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360} 80% 65%)`;
}

function unsupportedView(kind: string): KindView {
  root.replaceChildren(el("div", { class: "unsupported", "data-role": "text" }, `This widget type (${kind}) has nothing to show yet.`));
  return { setState() {}, draw() {} };
}

// ---- state --------------------------------------------------------------------------------

let view: KindView | null = null;

/** (Re)builds the page for the current widget and config, then draws the current state. */
function rebuild(): void {
  const w = hook.widget;
  if (!w) return;
  const config = (hook.config ?? {}) as Record<string, unknown>;
  applyAppearance(config as Appearance);
  hook.kind = w.type;
  setAttr(root, "data-widget-kind", w.type);
  root.removeAttribute("data-phase");
  root.removeAttribute("data-visible");
  switch (w.type) {
    case "countdown":
      view = countdownView_(config as CountdownConfig);
      break;
    case "text_overlay":
      view = textOverlayView(config as TextOverlayConfig);
      break;
    case "ad_timer":
      view = adTimerView(config as AdTimerConfig);
      break;
    case "chat_overlay":
      view = chatOverlayView(config as ChatOverlayConfig);
      break;
    default:
      view = unsupportedView(w.type);
  }
  view.setState(hook.state ?? {});
  view.draw(Date.now());
  showError(null);
}

function handle(m: WidgetServerMessage): void {
  if (m.widgetId !== hook.widgetId) return;
  switch (m.type) {
    case "WIDGET_INITIAL_STATE":
      hook.initialStates++;
      // A good subscription: the next loss of connection starts the backoff again.
      failures = 0;
      hook.widget = m.widget;
      hook.config = m.widget.config ?? {};
      hook.state = m.widget.state ?? {};
      rebuild();
      break;
    case "WIDGET_STATE_UPDATE":
      hook.state = m.state ?? {};
      if (view) {
        view.setState(hook.state);
        view.draw(Date.now());
      }
      hook.updates++;
      hook.lastUpdateAt = performance.now();
      break;
    case "WIDGET_CONFIG_UPDATE":
      hook.configUpdates++;
      hook.config = m.config ?? {};
      if (hook.widget) hook.widget.config = hook.config;
      rebuild();
      break;
    case "WIDGET_ACTION_RESPONSE":
      if (!m.success) showError(m.error ?? `${m.action} refused`);
      break;
  }
}

// ---- connection ---------------------------------------------------------------------------

let socket: WebSocket | null = null;
let failures = 0;

function connect(token: string): void {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  let ws: WebSocket;
  try {
    ws = new WebSocket(`${proto}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  } catch (e) {
    showError(`cannot connect: ${e instanceof Error ? e.message : String(e)}`);
    retry(token);
    return;
  }
  socket = ws;
  ws.onopen = () => {
    hook.connections++;
    setStatus("connected");
    ws.send(JSON.stringify({ type: "WIDGET_SUBSCRIBE", widgetId: hook.widgetId }));
  };
  ws.onmessage = (ev) => {
    const m = parseWidgetMessage(ev.data);
    if (m) handle(m);
  };
  ws.onclose = (ev) => {
    if (socket !== ws) return;
    socket = null;
    setStatus("reconnecting");
    if (ev.code === 4001) {
      // Rotated token or deleted widget: this URL will not work again, so retry only slowly.
      showError(ev.reason || "token rotated");
      failures = Math.max(failures, 6);
    }
    retry(token);
  };
}

function retry(token: string): void {
  const delay = reconnectDelay(failures);
  failures++;
  window.setTimeout(() => connect(token), delay);
}

function draw(): void {
  view?.draw(Date.now());
}

function start(): void {
  const m = location.pathname.match(/^\/widgets\/([^/]+)\/?$/);
  const q = new URLSearchParams(location.search);
  hook.widgetId = m ? decodeURIComponent(m[1]) : q.get("widgetId");
  const token = q.get("token");
  setStatus("connecting");
  // Redraw on frames and on a timer: frames stop in hidden or unfocused pages, timers don't.
  const frame = () => {
    draw();
    window.requestAnimationFrame(frame);
  };
  window.requestAnimationFrame(frame);
  window.setInterval(draw, 250);
  if (!hook.widgetId || !token) {
    setStatus("reconnecting");
    showError(!hook.widgetId ? "no widget id in the URL" : "no token in the URL (?token=…)");
    return;
  }
  connect(token);
}

start();

// `/ui/widgets`: the streamer's OBS widgets. Create one, see it live (an <iframe> of its OBS
// page on a checkerboard, so transparency shows), copy its OBS URL, rotate its token, and
// control it: actions go as WIDGET_ACTION over the UI's own WebSocket (the user's token, full
// control), and the page subscribes to every widget so its state line and the answers to
// actions arrive on the same socket.
//
// Hooks for browser tests: each card is `[data-widget-id=…]` (with `data-widget-type`), its
// buttons `[data-action=start|pause|resume|reset|add_time|set_duration|set_text|show|hide|
// clear|snooze|start_commercial|copy-url|rotate-token|delete]` (`add_time` carries
// `data-seconds`, `start_commercial` `data-length`), `[data-role=action-error]`,
// `[data-role=widget-state]`, `[data-role=obs-url]`, `[data-role=preview]` (the iframe),
// `[data-role=config-form]`; the card's `data-last-action` / `data-last-result` (ok | error)
// record the last WIDGET_ACTION_RESPONSE.

import { api, loadAll, seg } from "./api";
import { clearFormErrors, field, flash, formError, h, message, parseClock } from "./dom";
import {
  WIDGET_KINDS,
  adPhase,
  countdownClock,
  countdownView,
  instant,
  parseWidgetMessage,
  visibleChat,
} from "./widget-model";
import type {
  AdTimerState,
  ChatOverlayConfig,
  ChatOverlayState,
  ClientMessage,
  CountdownConfig,
  CountdownFormat,
  CountdownState,
  TextOverlayState,
  Widget,
  WidgetServerMessage,
  WidgetType,
} from "./widget-model";

/** The UI's WebSocket as this page uses it (owned by main.ts, which reconnects it). */
export interface LiveSocket {
  /** Sends now if the socket is open; false when it is not (nothing is queued). */
  send(m: ClientMessage): boolean;
  /** Every frame received; returns the unsubscribe. */
  onMessage(f: (data: unknown) => void): () => void;
  /** Every (re)open; returns the unsubscribe. */
  onOpen(f: () => void): () => void;
}

const RESOURCE = "/records/stream_widgets";
/** Preview width on the dashboard; larger canvases are scaled down. */
const PREVIEW_MAX_WIDTH = 480;
const DEFAULT_PREVIEW = { width: 480, height: 270 };
const COMMERCIAL_LENGTHS = [30, 60, 90, 120, 180];

function kindLabel(t: WidgetType): string {
  return WIDGET_KINDS.find((k) => k.type === t)?.label ?? t;
}

function obsUrl(w: Widget): string {
  return `${location.origin}/widgets/${seg(w.id)}?token=${encodeURIComponent(w.access_token ?? "")}`;
}

function canvasSize(config: Record<string, unknown> | null | undefined): { width: number; height: number } {
  const c = config ?? {};
  const ok = (v: unknown, lo: number, hi: number) => typeof v === "number" && v >= lo && v <= hi;
  return {
    width: ok(c.width, 100, 3840) ? (c.width as number) : DEFAULT_PREVIEW.width,
    height: ok(c.height, 100, 2160) ? (c.height as number) : DEFAULT_PREVIEW.height,
  };
}

// ---- the config editor --------------------------------------------------------------------

type FieldKind = "int" | "number" | "text" | "bool" | "list" | { options: string[] };

interface ConfigField {
  name: string;
  label: string;
  kind: FieldKind;
  /** What the widget does when the field is absent (checkboxes show it). */
  fallback?: boolean;
  min?: number;
  max?: number;
  placeholder?: string;
}

const APPEARANCE_FIELDS: ConfigField[] = [
  { name: "width", label: "Width (px)", kind: "int", min: 100, max: 3840 },
  { name: "height", label: "Height (px)", kind: "int", min: 100, max: 2160 },
  { name: "fontSize", label: "Font size (rem)", kind: "number", min: 0.1, max: 50 },
  { name: "fontFamily", label: "Font family (installed fonts)", kind: "text", placeholder: "e.g. Inter, sans-serif" },
  { name: "textColor", label: "Text colour", kind: "text", placeholder: "white" },
  { name: "backgroundColor", label: "Background colour", kind: "text", placeholder: "e.g. #18181b" },
  { name: "showBackground", label: "Show background (else transparent)", kind: "bool", fallback: false },
];

const KIND_FIELDS: Partial<Record<WidgetType, ConfigField[]>> = {
  countdown: [
    { name: "title", label: "Title", kind: "text" },
    { name: "text", label: "Text", kind: "text" },
    { name: "format", label: "Format", kind: { options: ["auto", "hh:mm:ss", "mm:ss"] } },
    { name: "onFinish", label: "At zero", kind: { options: ["text", "hide", "count_up"] } },
    { name: "finishedText", label: "Text at zero", kind: "text", placeholder: "Time's up!" },
    { name: "mode", label: "Mode", kind: { options: ["duration", "until"] } },
    { name: "target", label: "Until (YYYY-MM-DDTHH:MM, local time)", kind: "text" },
    { name: "timezone", label: "Time zone of “until”", kind: "text", placeholder: "UTC" },
    { name: "onFinishScene", label: "OBS scene at zero (optional)", kind: "text" },
    { name: "showTitle", label: "Show title", kind: "bool", fallback: true },
    { name: "showText", label: "Show text", kind: "bool", fallback: true },
    { name: "showProgressBar", label: "Show progress bar", kind: "bool", fallback: true },
  ],
  ad_timer: [
    { name: "visibilityThreshold", label: "Show upcoming ad within (s)", kind: "int", min: 0, placeholder: "300" },
    { name: "backFromAdsDuration", label: "“Welcome back” for (s)", kind: "int", min: 0, placeholder: "30" },
    { name: "upcomingText", label: "Upcoming text", kind: "text", placeholder: "Ad break in" },
    { name: "runningText", label: "Running text", kind: "text", placeholder: "Ads running — back soon" },
    { name: "welcomeBackText", label: "Welcome back text", kind: "text", placeholder: "Welcome back!" },
  ],
  chat_overlay: [
    { name: "maxMessages", label: "Messages shown", kind: "int", min: 1, max: 100, placeholder: "20" },
    { name: "fadeAfter", label: "Fade after (s, 0 = never)", kind: "int", min: 0, placeholder: "30" },
    { name: "ignoredUsers", label: "Ignored users (bots), comma-separated", kind: "list" },
    { name: "emoteBaseUrl", label: "Emote base URL", kind: "text", placeholder: "https://static-cdn.jtvnw.net/emoticons/v2" },
    { name: "hideCommands", label: "Hide !commands", kind: "bool", fallback: true },
    { name: "showBadges", label: "Show badges", kind: "bool", fallback: true },
  ],
};

function configInput(f: ConfigField, config: Record<string, unknown>): HTMLElement {
  const v = config[f.name];
  if (f.kind === "bool") {
    const box = h("input", { type: "checkbox", name: f.name, "data-api": f.name, checked: typeof v === "boolean" ? v : !!f.fallback });
    return h("label", { class: "choice" }, box, f.label);
  }
  if (typeof f.kind === "object") {
    const current = typeof v === "string" ? v : f.kind.options[0];
    return field(f.label, h("select", { name: f.name, "data-api": f.name }, ...f.kind.options.map((o) => h("option", { value: o, selected: o === current }, o))));
  }
  const numeric = f.kind === "int" || f.kind === "number";
  const value = f.kind === "list" ? (Array.isArray(v) ? v.join(", ") : "") : v === undefined || v === null ? "" : String(v);
  return field(
    f.label,
    h("input", {
      name: f.name,
      "data-api": f.name,
      value,
      type: numeric ? "number" : "text",
      step: f.kind === "number" ? "any" : numeric ? 1 : undefined,
      min: f.min,
      max: f.max,
      placeholder: f.placeholder,
    }),
  );
}

/** The form's values merged into `config`: an emptied field is removed (the default applies). */
function readConfig(form: HTMLFormElement, fields: ConfigField[], config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const f of fields) {
    const input = form.elements.namedItem(f.name) as HTMLInputElement | HTMLSelectElement | null;
    if (!input) continue;
    if (f.kind === "bool") {
      out[f.name] = (input as HTMLInputElement).checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === "") {
      delete out[f.name];
    } else if (f.kind === "int" || f.kind === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n) || (f.kind === "int" && !Number.isInteger(n))) throw new Error(`${f.name} must be ${f.kind === "int" ? "a whole number" : "a number"}`);
      if ((f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max)) throw new Error(`${f.name} must be between ${f.min ?? "-∞"} and ${f.max ?? "∞"}`);
      out[f.name] = n;
    } else if (f.kind === "list") {
      out[f.name] = raw.split(/[\s,]+/).filter(Boolean);
    } else {
      out[f.name] = raw;
    }
  }
  return out;
}

// ---- one card -----------------------------------------------------------------------------

interface Card {
  widget: Widget;
  el: HTMLElement;
  /** Redraws the state line from the widget's state and the clock. */
  drawState(now: number): void;
  /** The widget record changed (token, config, flags). */
  update(): void;
  response(m: Extract<WidgetServerMessage, { type: "WIDGET_ACTION_RESPONSE" }>): void;
  /** Sends an action that was clicked while the socket was down (called on reconnect). */
  flush(): void;
}

/** How long a click made while disconnected waits for the connection before it is dropped. */
const QUEUED_ACTION_TTL_MS = 10_000;

function stateLine(w: Widget, now: number): string {
  const config = (w.config ?? {}) as Record<string, unknown>;
  const state = (w.state ?? {}) as Record<string, unknown>;
  switch (w.type) {
    case "countdown": {
      const c = config as CountdownConfig;
      const v = countdownView(c, state as CountdownState, now);
      return `${v.phase} · ${countdownClock(v.remaining, (c.format ?? "auto") as CountdownFormat)}`;
    }
    case "text_overlay": {
      const s = state as TextOverlayState;
      return `${s.visible === false ? "hidden" : "shown"}${s.text ? ` · ${s.text}` : ""}`;
    }
    case "ad_timer": {
      const s = state as AdTimerState;
      const phase = adPhase(s, now);
      const at = phase === "running" ? instant(s.ad_ends_at) : phase === "upcoming" ? instant(s.next_ad_at) : null;
      const snoozes = typeof s.snooze_count === "number" ? ` · ${s.snooze_count} snoozes left` : "";
      return `${phase.replace("_", " ")}${at !== null ? ` · ${countdownClock(Math.max(0, (at - now) / 1000))}` : ""}${snoozes}`;
    }
    case "chat_overlay":
      return `${visibleChat(config as ChatOverlayConfig, state as ChatOverlayState).length} messages`;
    default:
      return "";
  }
}

function makeCard(widget: Widget, live: LiveSocket, remove: (id: string) => void): Card {
  const w = widget;
  const stateEl = h("span", { class: "badge", "data-role": "widget-state" });
  const errorEl = h("p", { class: "field-error", role: "alert", "data-role": "action-error" });
  const iframe = h("iframe", { "data-role": "preview", title: `${w.title} preview` }) as HTMLIFrameElement;
  const previewBox = h("div", { class: "widget-preview", "data-role": "preview-box" }, iframe);
  const urlInput = h("input", { readonly: true, "data-role": "obs-url", "aria-label": "OBS URL", class: "obs-url" }) as HTMLInputElement;
  const dashboardBox = h("input", { type: "checkbox", "data-action": "toggle-dashboard" }) as HTMLInputElement;
  const el = h("article", { class: "card widget-card", "data-widget-id": w.id, "data-widget-type": w.type });

  const showError = (text: string) => {
    errorEl.textContent = text;
  };

  let queued: { message: ClientMessage; at: number } | null = null;
  const act = (action: string, payload: Record<string, unknown> = {}) => {
    showError("");
    el.dataset.pendingAction = action;
    const message: ClientMessage = { type: "WIDGET_ACTION", widgetId: w.id, action, payload };
    if (!live.send(message)) {
      // The socket is (re)connecting: the click goes out when it opens, if that is soon.
      queued = { message, at: Date.now() };
      showError("Not connected to the server yet; the action is sent when the connection is back.");
    }
  };

  const button = (label: string, action: string, payload: () => Record<string, unknown> | null = () => ({}), extra: Record<string, string> = {}) =>
    h(
      "button",
      {
        type: "button",
        "data-action": action,
        ...extra,
        onclick: () => {
          try {
            const p = payload();
            if (p) act(action, p);
          } catch (e) {
            showError(message(e));
          }
        },
      },
      label,
    );

  const controls = h("div", { class: "actions", "data-role": "controls" });
  if (w.type === "countdown") {
    const duration = h("input", { name: "duration", "aria-label": "duration (seconds or m:ss)", placeholder: "5:00", size: 6 }) as HTMLInputElement;
    controls.append(
      button("Start", "start"),
      button("Pause", "pause"),
      button("Resume", "resume"),
      button("Reset", "reset"),
      button("−1 min", "add_time", () => ({ seconds: -60 }), { "data-seconds": "-60" }),
      button("+1 min", "add_time", () => ({ seconds: 60 }), { "data-seconds": "60" }),
      h(
        "span",
        { class: "inline" },
        duration,
        button("Set duration", "set_duration", () => {
          const s = parseClock(duration.value);
          if (s === null || s < 0) throw new Error("duration: seconds (300) or minutes:seconds (5:00)");
          return { duration: s };
        }),
      ),
    );
  } else if (w.type === "text_overlay") {
    const s = (w.state ?? {}) as TextOverlayState;
    const text = h("input", { name: "text", "aria-label": "text", maxlength: 500, value: s.text ?? "", placeholder: "Now talking about…" }) as HTMLInputElement;
    const subtitle = h("input", { name: "subtitle", "aria-label": "subtitle", value: s.subtitle ?? "", placeholder: "subtitle (optional)" }) as HTMLInputElement;
    controls.append(
      text,
      subtitle,
      button("Set text", "set_text", () => (subtitle.value ? { text: text.value, subtitle: subtitle.value } : { text: text.value })),
      button("Show", "show"),
      button("Hide", "hide"),
      button("Clear", "clear"),
    );
  } else if (w.type === "ad_timer") {
    controls.append(
      button("Snooze next ad", "snooze"),
      ...COMMERCIAL_LENGTHS.map((len) => button(`Ads ${len} s`, "start_commercial", () => ({ length: len }), { "data-length": String(len) })),
    );
  } else if (w.type === "chat_overlay") {
    controls.append(h("small", { class: "muted" }, "Messages come from chat capture (Profile → Capture chat)."));
  }

  // Appearance and settings.
  const fields = [...APPEARANCE_FIELDS, ...(KIND_FIELDS[w.type] ?? [])];
  const configForm = h("form", { class: "config-form", "data-role": "config-form" }) as HTMLFormElement;
  const drawConfigForm = () =>
    configForm.replaceChildren(
      ...fields.map((f) => configInput(f, (w.config ?? {}) as Record<string, unknown>)),
      h("button", { type: "submit", "data-action": "save-config" }, "Save settings"),
    );
  drawConfigForm();
  configForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearFormErrors(configForm);
    try {
      const config = readConfig(configForm, fields, (w.config ?? {}) as Record<string, unknown>);
      // Only `config`: a body naming access_token would rotate it.
      const saved = await api<Widget>(`${RESOURCE}/${seg(w.id)}`, { method: "PUT", body: { config } });
      Object.assign(w, saved);
      card.update();
      flash("Settings saved.", "ok");
    } catch (err) {
      formError(configForm, err);
    }
  });

  const rotate = h(
    "button",
    {
      type: "button",
      class: "secondary",
      "data-action": "rotate-token",
      onclick: async () => {
        try {
          // Naming the server-managed token in a PUT makes the server generate a new one (its
          // value is ignored); pages with the old token are disconnected.
          const saved = await api<Widget>(`${RESOURCE}/${seg(w.id)}`, { method: "PUT", body: { access_token: null } });
          Object.assign(w, saved);
          card.update();
          flash("New OBS URL: the old one no longer works.", "ok");
        } catch (e) {
          showError(message(e));
        }
      },
    },
    "Rotate token",
  );

  const copy = h(
    "button",
    {
      type: "button",
      "data-action": "copy-url",
      onclick: async () => {
        urlInput.select();
        try {
          await navigator.clipboard.writeText(urlInput.value);
          flash("OBS URL copied.", "ok");
        } catch {
          // No clipboard (not a secure context, or refused): the URL is selected for Ctrl+C.
          flash("Press Ctrl+C to copy the selected URL.", "ok");
        }
      },
    },
    "Copy OBS URL",
  );

  let confirmDelete = false;
  const del = h(
    "button",
    {
      type: "button",
      class: "secondary",
      "data-action": "delete",
      onclick: async () => {
        if (!confirmDelete) {
          confirmDelete = true;
          del.textContent = "Really delete?";
          return;
        }
        try {
          await api(`${RESOURCE}/${seg(w.id)}`, { method: "DELETE" });
          remove(w.id);
        } catch (e) {
          showError(message(e));
        }
      },
    },
    "Delete",
  );

  dashboardBox.addEventListener("change", async () => {
    const on = dashboardBox.checked;
    try {
      const saved = await api<Widget>(`${RESOURCE}/${seg(w.id)}`, { method: "PUT", body: { showOnDashboard: on } });
      Object.assign(w, saved);
      card.update();
    } catch (e) {
      dashboardBox.checked = !on;
      showError(message(e));
    }
  });

  const details = h("details", { class: "widget-details" }, h("summary", {}, "Preview and controls")) as HTMLDetailsElement;
  details.append(
    h(
      "div",
      { class: "widget-body" },
      previewBox,
      h(
        "div",
        { class: "widget-side" },
        controls,
        errorEl,
        h("div", { class: "actions" }, urlInput, copy, rotate),
        h("details", {}, h("summary", {}, "Appearance and settings"), configForm),
        h("div", { class: "actions" }, del),
      ),
    ),
  );
  el.append(
    h(
      "header",
      { class: "widget-head" },
      h("h2", {}, w.title || w.id),
      h("span", { class: "badge" }, kindLabel(w.type)),
      stateEl,
      h("label", { class: "choice" }, dashboardBox, "Show on dashboard"),
    ),
    details,
  );

  let shownUrl = "";
  let shownSize = "";
  let shownOnDashboard: boolean | null = null;
  const card: Card = {
    widget: w,
    el,
    drawState(now) {
      const text = stateLine(w, now);
      if (stateEl.textContent !== text) stateEl.textContent = text;
    },
    update() {
      const url = obsUrl(w);
      if (url !== shownUrl) {
        shownUrl = url;
        urlInput.value = url;
        iframe.src = url;
      }
      const { width, height } = canvasSize(w.config);
      const size = `${width}x${height}`;
      if (size !== shownSize) {
        shownSize = size;
        // The page renders at its real canvas size, scaled down to fit the card.
        const scale = Math.min(1, PREVIEW_MAX_WIDTH / width);
        iframe.width = String(width);
        iframe.height = String(height);
        iframe.style.transform = `scale(${scale})`;
        previewBox.style.width = `${Math.round(width * scale)}px`;
        previewBox.style.height = `${Math.round(height * scale)}px`;
        previewBox.dataset.scale = String(scale);
      }
      if (shownOnDashboard !== !!w.showOnDashboard) {
        // Only a change of the flag opens or folds the card, so a config update does not.
        shownOnDashboard = !!w.showOnDashboard;
        dashboardBox.checked = shownOnDashboard;
        el.classList.toggle("off-dashboard", !shownOnDashboard);
        details.open = shownOnDashboard;
      }
      card.drawState(Date.now());
    },
    response(m) {
      delete el.dataset.pendingAction;
      el.dataset.lastAction = m.action;
      el.dataset.lastResult = m.success ? "ok" : "error";
      showError(m.success ? "" : m.error || `${m.action} was refused`);
    },
    flush() {
      if (!queued) return;
      const q = queued;
      queued = null;
      if (Date.now() - q.at > QUEUED_ACTION_TTL_MS) {
        delete el.dataset.pendingAction;
        showError("Not sent: the connection came back too late; click again.");
      } else if (live.send(q.message)) {
        showError("");
      } else {
        queued = q;
      }
    },
  };
  card.update();
  return card;
}

// ---- the page -----------------------------------------------------------------------------

export async function widgetsPage(main: HTMLElement, live: LiveSocket, cleanup: (() => void)[]): Promise<void> {
  const typeSelect = h("select", { name: "type", "data-api": "type" }, ...WIDGET_KINDS.map((k) => h("option", { value: k.type }, k.label))) as HTMLSelectElement;
  const durationField = field("Duration (seconds or m:ss)", h("input", { name: "duration", "data-api": "duration", value: "5:00" }));
  const form = h(
    "form",
    { class: "card", id: "new-widget" },
    h("h2", {}, "Add a widget"),
    field("Title", h("input", { name: "title", "data-api": "title", required: true })),
    field("Type", typeSelect),
    durationField,
    h("button", { type: "submit" }, "Add widget"),
  ) as HTMLFormElement;
  const syncType = () => (durationField.hidden = typeSelect.value !== "countdown");
  typeSelect.addEventListener("change", syncType);
  syncType();

  const onDashboard = h("div", { id: "widgets", class: "widget-grid" });
  const others = h("div", { id: "other-widgets", class: "widget-grid" });
  const othersSection = h("section", {}, h("h2", {}, "Not on the dashboard"), others);
  main.append(
    h("h1", {}, "Widgets"),
    h("p", { class: "muted" }, "Add a widget's OBS URL as a Browser source (its size is the widget's width × height). The page is transparent unless “Show background” is on."),
    form,
    onDashboard,
    othersSection,
  );

  const cards = new Map<string, Card>();
  const subscribeAll = () => {
    for (const id of cards.keys()) live.send({ type: "WIDGET_SUBSCRIBE", widgetId: id });
    for (const c of cards.values()) c.flush();
  };
  const place = (c: Card) => {
    const target = c.widget.showOnDashboard ? onDashboard : others;
    if (c.el.parentElement !== target) target.append(c.el);
    othersSection.hidden = others.childElementCount === 0;
  };
  const remove = (id: string) => {
    const c = cards.get(id);
    if (!c) return;
    live.send({ type: "WIDGET_UNSUBSCRIBE", widgetId: id });
    c.el.remove();
    cards.delete(id);
    othersSection.hidden = others.childElementCount === 0;
    drawEmpty();
  };
  const empty = h("p", { class: "muted", id: "no-widgets" }, "No widgets yet.");
  const drawEmpty = () => {
    if (cards.size === 0) onDashboard.append(empty);
    else empty.remove();
  };
  const add = (w: Widget) => {
    const c = makeCard(w, live, remove);
    // Placing follows the dashboard flag whenever the record changes.
    const update = c.update.bind(c);
    c.update = () => {
      update();
      place(c);
    };
    cards.set(w.id, c);
    place(c);
    drawEmpty();
    live.send({ type: "WIDGET_SUBSCRIBE", widgetId: w.id });
  };

  cleanup.push(
    live.onOpen(subscribeAll),
    live.onMessage((data) => {
      const m = parseWidgetMessage(data);
      const c = m && cards.get(m.widgetId);
      if (!m || !c) return;
      switch (m.type) {
        case "WIDGET_INITIAL_STATE":
          // The socket's copy may leave the token out: keep what the records API gave.
          Object.assign(c.widget, { ...m.widget, access_token: m.widget.access_token ?? c.widget.access_token });
          c.update();
          break;
        case "WIDGET_STATE_UPDATE":
          c.widget.state = m.state;
          c.drawState(Date.now());
          break;
        case "WIDGET_CONFIG_UPDATE":
          c.widget.config = m.config;
          c.update();
          break;
        case "WIDGET_ACTION_RESPONSE":
          c.response(m);
          break;
      }
    }),
  );
  const timer = window.setInterval(() => {
    const now = Date.now();
    for (const c of cards.values()) c.drawState(now);
  }, 250);
  cleanup.push(() => {
    window.clearInterval(timer);
    for (const id of cards.keys()) live.send({ type: "WIDGET_UNSUBSCRIBE", widgetId: id });
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const f = new FormData(form);
    const type = String(f.get("type")) as WidgetType;
    const config: Record<string, unknown> = {};
    if (type === "countdown") {
      const d = parseClock(String(f.get("duration") ?? ""));
      if (d === null || d <= 0) return formError(form, new Error("duration: seconds (300) or minutes:seconds (5:00)"));
      config.duration = d;
    }
    try {
      const w = await api<Widget>(RESOURCE, {
        method: "POST",
        body: { title: String(f.get("title") ?? "").trim(), type, active: true, showOnDashboard: true, config },
      });
      add(w);
      form.reset();
      syncType();
      flash(`Added “${w.title}”. Copy its OBS URL into an OBS Browser source.`, "ok");
    } catch (err) {
      formError(form, err);
    }
  });

  const widgets = await loadAll<Widget>(RESOURCE);
  widgets.sort((a, b) => (a.created_at ?? "").localeCompare(b.created_at ?? ""));
  for (const w of widgets) add(w);
  drawEmpty();
  onDashboard.dataset.loaded = "1";
}

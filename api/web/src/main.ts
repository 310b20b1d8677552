// The streamer's web UI: streams and ingestion with live progress, the stream page (player,
// transcript, timeline, review), search, series, projects, profile, episodes and OBS widgets
// (src/widgets-page.ts; the OBS page itself is the separate bundle src/widget.ts).
// Pages are real paths (`/streams/{id}?t=` is the link search hits carry); the API's routes
// never collide with them because the other pages live under `/ui/`.

import Hls from "hls.js";
import {
  api,
  ApiError,
  blobUrl,
  loadAll,
  seg,
  setOnUnauthorized,
  setToken,
  takeTokenFromFragment,
  token,
} from "./api";
import type {
  Chapter,
  ChatCaptureStatus,
  Episode,
  EpisodeParams,
  IngestStage,
  IngestStatus,
  Profile,
  Project,
  PublishStatus,
  ReviewRequest,
  SearchHit,
  SearchResults,
  Series,
  Stream,
  StreamIngestRequest,
  Task,
  TaskUpdateMessage,
  VideoClip,
} from "./api";
import {
  $,
  clearFormErrors,
  clock,
  field,
  flash,
  formError,
  h,
  message,
  parseClock,
} from "./dom";
import type { Attrs, Child } from "./dom";
import { widgetsPage } from "./widgets-page";
import type { LiveSocket } from "./widgets-page";

// ---- live state: tasks and ingestion progress --------------------------------------------

const tasks = new Map<string, Task>();
/** Stream titles seen so far, for the task list. */
const streamTitles = new Map<string, string>();
/** Episode titles seen so far, for the task list. */
const episodeTitles = new Map<string, string>();
const progress = new Map<string, IngestStatus>();
const listeners = new Set<() => void>();
/** Called when a task about this record (an episode's render or upload) changes. */
const recordListeners = new Map<string, () => void>();
let socket: WebSocket | null = null;
/** Pages listening on the socket (the widgets page): every frame, and every (re)open. */
const socketMessageListeners = new Set<(data: unknown) => void>();
const socketOpenListeners = new Set<() => void>();
const live: LiveSocket = {
  send(m) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(m));
    return true;
  },
  onMessage(f) {
    socketMessageListeners.add(f);
    return () => socketMessageListeners.delete(f);
  },
  onOpen(f) {
    socketOpenListeners.add(f);
    return () => socketOpenListeners.delete(f);
  },
};

function changed(): void {
  renderTasks();
  for (const f of listeners) f();
}

/** What a stream's ingestion is doing, in words the UI shows ("awaiting review" is its own). */
function ingestState(p: IngestStatus | undefined): { label: string; kind: string } {
  if (!p) return { label: "not ingested", kind: "idle" };
  if (p.status === "RUNNING" && p.progress.stage === "awaiting_review")
    return { label: "awaiting review", kind: "review" };
  // The last stage is set (and the task row written) just before the run itself ends.
  if (p.progress.stage === "completed") return { label: "completed", kind: "done" };
  if (p.progress.stage === "failed" || p.progress.stage === "cancelled") return { label: p.progress.stage, kind: "failed" };
  if (p.status === "RUNNING")
    return { label: `${stageName(p.progress.stage)} ${Math.round(p.progress.percent)}%`, kind: "running" };
  if (p.status === "COMPLETED") return { label: "completed", kind: "done" };
  return { label: p.status.toLowerCase().replace(/_/g, " "), kind: "failed" };
}

function stageName(s: IngestStage): string {
  return s.replace(/_/g, " ");
}

/**
 * Stages set just before the run ends: the task row's last write arrives a moment before
 * Temporal reports the run's own end, so the progress is asked again until it does.
 */
const ENDING_STAGES: IngestStage[] = ["completed", "failed", "cancelled"];
const watched = new Map<string, number>();

/** The latest progress request per stream: an older answer arriving later is dropped. */
const progressTickets = new Map<string, number>();
let nextTicket = 0;

async function refreshProgress(streamId: string): Promise<IngestStatus | undefined> {
  const ticket = ++nextTicket;
  progressTickets.set(streamId, ticket);
  try {
    const p = await api<IngestStatus>(`/stream/${seg(streamId)}/progress`);
    const known = progress.get(streamId);
    // A run that has ended never runs again: a RUNNING answer about it is stale.
    const stale = known && known.run_id === p.run_id && known.status !== "RUNNING" && p.status === "RUNNING";
    if (progressTickets.get(streamId) !== ticket || stale) return progress.get(streamId);
    progress.set(streamId, p);
    watchStages(streamId, p);
  } catch (e) {
    if (progressTickets.get(streamId) !== ticket) return progress.get(streamId);
    if (!(e instanceof ApiError && e.status === 404)) throw e;
    progress.delete(streamId);
  }
  changed();
  return progress.get(streamId);
}

/**
 * The ingestion writes its task row at every stage change (stage in the message, percent in
 * `progress`), and each write arrives on the WebSocket, which refreshes the progress: no
 * polling. Only the moment between the last stage ("completed", …) and the run's own end is
 * bridged by asking again after half a second.
 */
function watchStages(streamId: string, p: IngestStatus): void {
  const ending = p.status === "RUNNING" && ENDING_STAGES.includes(p.progress.stage);
  const timer = watched.get(streamId);
  if (ending && timer === undefined) {
    watched.set(
      streamId,
      window.setTimeout(() => {
        watched.delete(streamId);
        refreshProgress(streamId).catch((e) => flash(message(e)));
      }, 500),
    );
  }
}

function connectSocket(): void {
  const t = token();
  if (!t || socket) return;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  // Browsers cannot set headers on a WebSocket: the token goes in the query, as the API asks.
  const ws = new WebSocket(`${proto}://${location.host}/ws?token=${encodeURIComponent(t)}`);
  socket = ws;
  ws.onopen = () => {
    $("live").replaceChildren(h("span", { class: "dot on" }), "live");
    // Subscriptions do not survive a connection: the pages that hold some send them again.
    for (const f of socketOpenListeners) f();
  };
  ws.onmessage = (ev) => {
    for (const f of socketMessageListeners) f(ev.data);
    let m: TaskUpdateMessage;
    try {
      m = JSON.parse(String(ev.data));
    } catch {
      return;
    }
    if (m.type !== "TASK_UPDATE") return;
    tasks.set(m.task.id, m.task);
    if (m.task.record_id) recordListeners.get(m.task.record_id)?.();
    if (m.task.task_type === "ingestion" && m.task.record_id) {
      refreshProgress(m.task.record_id).catch((e) => flash(message(e)));
    } else {
      changed();
    }
  };
  ws.onclose = () => {
    socket = null;
    $("live").replaceChildren(h("span", { class: "dot" }), "offline");
    // The socket closes when the token expires or the server restarts: reconnect once a
    // token is there again (a refused token shows the login instead).
    if (token()) window.setTimeout(connectSocket, 3000);
  };
}

async function loadTasks(): Promise<void> {
  const page = await api<{ items: Task[] }>("/records/tasks?perPage=100&cursor=null");
  for (const t of page.items) tasks.set(t.id, t);
  $("tasks").dataset.loaded = "1";
  changed();
}

function taskLabel(t: Task): { label: string; kind: string } {
  if (t.task_type === "ingestion" && t.record_id && t.status === "RUNNING") {
    return ingestState(progress.get(t.record_id));
  }
  const kinds: Record<string, string> = { RUNNING: "running", COMPLETED: "done", PENDING: "idle" };
  return { label: t.status.toLowerCase().replace(/_/g, " "), kind: kinds[t.status] ?? "failed" };
}

function renderTasks(): void {
  const list = Array.from(tasks.values()).sort((a, b) => (b.updated_at ?? "").localeCompare(a.updated_at ?? ""));
  const waiting = list.filter((t) => taskLabel(t).kind === "review").length;
  $("tasks-count").textContent = waiting ? `${waiting} awaiting review` : String(list.length);
  $("tasks").replaceChildren(
    ...list.slice(0, 30).map((t) => {
      const s = taskLabel(t);
      const target =
        t.task_type === "ingestion" && t.record_id
          ? link(`/streams/${seg(t.record_id)}`, streamTitles.get(t.record_id) ?? t.record_id)
          : t.record_id
            ? link("/ui/episodes", episodeTitles.get(t.record_id) ?? t.record_id)
            : "";
      return h(
        "li",
        { class: "task", "data-task": t.id },
        h("span", { class: `badge ${s.kind}`, "data-state": s.label }, s.label),
        h("span", {}, t.task_type, " ", target),
        t.message ? h("small", { class: "muted" }, t.message) : null,
      );
    }),
  );
}

// ---- routing -------------------------------------------------------------------------------

let cleanup: (() => void)[] = [];

function link(href: string, text: Child, attrs: Attrs = {}): HTMLElement {
  return h(
    "a",
    {
      href,
      ...attrs,
      onclick: ((e: MouseEvent) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey) return;
        e.preventDefault();
        navigate(href);
      }) as EventListener,
    },
    text,
  );
}

function navigate(href: string): void {
  history.pushState(null, "", href);
  route();
}

function route(): void {
  for (const f of cleanup) f();
  cleanup = [];
  listeners.clear();
  recordListeners.clear();
  const main = $("main");
  main.replaceChildren();
  flash("");
  const path = location.pathname;
  document.querySelectorAll("nav a").forEach((a) => {
    const on = a.getAttribute("href") === path || (path.startsWith("/streams") && a.getAttribute("href") === "/");
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  let page: Promise<void>;
  const m = path.match(/^\/streams\/([^/]+)$/);
  if (m) page = streamPage(main, decodeURIComponent(m[1]));
  else if (path === "/ui/search") page = searchPage(main);
  else if (path === "/ui/series") page = seriesPage(main);
  else if (path === "/ui/projects") page = projectsPage(main);
  else if (path === "/ui/profile") page = profilePage(main);
  else if (path === "/ui/episodes") page = episodesPage(main);
  else if (path === "/ui/widgets") page = widgetsPage(main, live, cleanup);
  else if (path === "/youtube/callback") page = youtubeCallback(main);
  else if (path === "/twitch/callback") page = twitchCallback(main);
  else page = streamsPage(main);
  page.catch((e) => flash(message(e)));
  main.focus({ preventScroll: true });
}

// ---- streams -----------------------------------------------------------------------------

async function streamsPage(main: HTMLElement): Promise<void> {
  const form = h(
    "form",
    { id: "new-stream", class: "card" },
    h("h2", {}, "Add a stream"),
    field("Title", h("input", { name: "title", "data-api": "title", required: true })),
    field(
      "Recordings folder",
      h("input", { name: "prefix", "data-api": "prefix", required: true, placeholder: "e.g. 2026-11-28" }),
    ),
    h("button", { type: "submit" }, "Add stream"),
  ) as HTMLFormElement;
  const tbody = h("tbody", { id: "streams" });
  main.append(
    h("h1", {}, "Streams"),
    form,
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ...["Stream", "Folder", "Clips", "Duration", "Ingestion", ""].map((c) => h("th", {}, c)))),
      tbody,
    ),
  );
  let streams = await loadAll<Stream>("/records/streams");
  const draw = () => {
    for (const s of streams) streamTitles.set(s.id, s.title || s.id);
    drawRows();
    renderTasks();
  };
  const drawRows = () =>
    tbody.replaceChildren(
      ...streams.map((s) => {
        const st = ingestState(progress.get(s.id));
        const p = progress.get(s.id);
        return h(
          "tr",
          { "data-stream": s.id },
          h("td", {}, link(`/streams/${seg(s.id)}`, s.title || s.id)),
          h("td", {}, s.prefix ?? ""),
          h("td", {}, s.video_clip_count ?? ""),
          h("td", {}, clock(s.duration)),
          h(
            "td",
            {},
            h("span", { class: `badge ${st.kind}`, "data-state": st.label }, st.label),
            p && p.status === "RUNNING" && st.kind === "running"
              ? h("progress", { max: 100, value: p.progress.percent, "aria-label": "ingestion progress" })
              : null,
          ),
          h("td", {}, link(`/streams/${seg(s.id)}`, "Open", { class: "button" })),
        );
      }),
    );
  draw();
  tbody.dataset.loaded = "1";
  listeners.add(draw);
  await Promise.all(streams.map((s) => refreshProgress(s.id).catch(() => undefined)));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const f = new FormData(form);
    const body = { title: String(f.get("title")).trim(), prefix: String(f.get("prefix")).trim() };
    try {
      const created = await api<Stream>("/records/streams", { method: "POST", body });
      form.reset();
      streams = await loadAll<Stream>("/records/streams");
      draw();
      flash(`Added “${created.title ?? created.id}”. Open it to ingest.`, "ok");
    } catch (err) {
      formError(form, err);
    }
  });
}

// ---- the stream page -----------------------------------------------------------------------

interface Line {
  clip: VideoClip;
  idx: number;
  /** Stream seconds. */
  start: number;
  end: number;
  /** Seconds on the player (the preview concatenates clip previews). */
  playerStart: number;
  text: string;
  el?: HTMLElement;
}

async function streamPage(main: HTMLElement, streamId: string): Promise<void> {
  const stream = await api<Stream>(`/records/streams/${seg(streamId)}`);
  streamTitles.set(stream.id, stream.title || stream.id);
  const wantT = parseFloat(new URLSearchParams(location.search).get("t") ?? "");
  main.append(
    h("h1", {}, stream.title || stream.id),
    h("p", { class: "muted" }, `Folder ${stream.prefix ?? "(none)"}`, stream.description ? ` · ${stream.description}` : ""),
  );
  const status = h("div", { id: "ingest-status", class: "card" });
  const ingestForm = ingestFormFor(stream);
  main.append(status, ingestForm);
  const drawStatus = () => {
    const p = progress.get(streamId);
    const st = ingestState(p);
    const parts: Child[] = [
      h("strong", {}, "Ingestion: "),
      h("span", { class: `badge ${st.kind}`, id: "stream-state", "data-state": st.label }, st.label),
      p ? h("progress", { max: 100, value: p.progress.percent, "aria-label": "ingestion progress" }) : null,
      p
        ? h(
            "small",
            { class: "muted" },
            ` ${p.progress.clips_done}/${p.progress.clips_total} clips`,
            p.progress.clips_failed ? ` · ${p.progress.clips_failed} failed` : "",
            p.progress.episodes_proposed ? ` · ${p.progress.episodes_proposed} episodes proposed` : "",
            p.error ? ` · ${p.error}` : "",
          )
        : null,
      p && st.kind !== "done" && st.kind !== "failed" && p.status === "RUNNING"
        ? h(
            "button",
            {
              type: "button",
              class: "secondary",
              onclick: () =>
                api(`/stream/${seg(streamId)}/cancel`, { method: "POST" })
                  .then(() => flash("Cancelling…", "ok"))
                  .catch((e) => flash(message(e))),
            },
            "Cancel ingestion",
          )
        : null,
    ];
    status.replaceChildren(...(parts.filter((c) => c !== null && c !== undefined && c !== false) as (Node | string)[]));
    ingestForm.hidden = !!p && p.status === "RUNNING";
  };
  listeners.add(drawStatus);
  const layout = h("div", { class: "stream-layout" });
  const reviewBox = h("section", { id: "review", class: "card" });
  const timelineBox = h("section", { id: "timeline", class: "card" });
  main.append(layout, timelineBox, reviewBox);

  let loadedStage: string | undefined;
  const video = h("video", { id: "player", controls: true, preload: "metadata", playsinline: true }) as HTMLVideoElement;
  let lines: Line[] = [];
  let hls: Hls | null = null;
  cleanup.push(() => {
    hls?.destroy();
    playerListeners.clear();
  });

  const loadDerived = async () => {
    const clips = (await api<{ items: VideoClip[] }>(`/records/video_clips/stream_id/${seg(streamId)}`)).items;
    clips.sort((a, b) => (a.start_time ?? 1e12) - (b.start_time ?? 1e12) || a.key.localeCompare(b.key));
    const episodes = (await api<{ items: Episode[] }>(`/stream/${seg(streamId)}/episodes`)).items;
    lines = transcriptLines(clips);
    drawPlayerAndTranscript(layout, video, lines, streamId, clips, (x) => (hls = x), wantT);
    drawTimeline(timelineBox, clips, episodes, lines, video);
    drawReview(reviewBox, streamId, episodes, progress.get(streamId));
  };
  // Refetch the derived data when the stage moves to one that produced new rows, or a preview
  // was built (previews come after the proposals, while the run waits for review).
  listeners.add(() => {
    const p = progress.get(streamId);
    const key = p
      ? `${p.status}/${p.progress.stage}/${p.progress.episodes_reviewed}/${p.progress.clips_previewed}`
      : "none";
    if (key !== loadedStage) {
      loadedStage = key;
      loadDerived().catch((e) => flash(message(e)));
    }
  });
  await refreshProgress(streamId);
}

function ingestFormFor(stream: Stream): HTMLFormElement {
  const lang = localStorage.getItem("gt-language") ?? "";
  const form = h(
    "form",
    { id: "ingest-form", class: "card" },
    h("h2", {}, "Ingest the recordings"),
    field("Language", h("input", { name: "language", "data-api": "language", value: lang, placeholder: "auto", size: 6 })),
    h(
      "details",
      {},
      h("summary", {}, "Episode rules"),
      field("Break that ends an episode (s)", h("input", { name: "break_gap", "data-api": "break_gap", inputmode: "decimal", placeholder: "120" })),
      field("Shortest episode (s)", h("input", { name: "min_length", "data-api": "min_length", inputmode: "decimal", placeholder: "60" })),
      field("Longest episode (s)", h("input", { name: "max_length", "data-api": "max_length", inputmode: "decimal", placeholder: "1800" })),
    ),
    h("button", { type: "submit", id: "ingest" }, "Ingest"),
  ) as HTMLFormElement;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const f = new FormData(form);
    const num = (k: string, dflt: number) => {
      const v = String(f.get(k) ?? "").trim();
      return v === "" ? dflt : Number(v);
    };
    const req: StreamIngestRequest = { streamId: stream.id, initialPrompt: "", initialSummary: "" };
    const language = String(f.get("language") ?? "").trim();
    if (language) req.language = language;
    if (["break_gap", "min_length", "max_length"].some((k) => String(f.get(k) ?? "").trim() !== "")) {
      const episodes: EpisodeParams = {
        break_gap: num("break_gap", 120),
        min_length: num("min_length", 60),
        max_length: num("max_length", 1800),
      };
      req.episodes = episodes;
    }
    try {
      await api("/stream", { method: "POST", body: req });
      await refreshProgress(stream.id);
    } catch (err) {
      formError(form, err);
    }
  });
  return form;
}

function transcriptLines(clips: VideoClip[]): Line[] {
  const out: Line[] = [];
  let playerOffset = 0;
  for (const c of clips) {
    const segs = c.transcription?.segments ?? [];
    const clipStart = c.start_time ?? 0;
    segs.forEach((s, idx) =>
      out.push({ clip: c, idx, start: clipStart + s.start, end: clipStart + s.end, playerStart: playerOffset + s.start, text: s.text.trim() }),
    );
    const previewLength = (c.preview?.segments ?? []).reduce((a, s) => a + s.duration, 0);
    playerOffset += previewLength;
  }
  return out;
}

/** Stream seconds → player seconds (the preview is the clips' previews back to back). */
function playerTime(clips: VideoClip[], t: number): number {
  let offset = 0;
  for (const c of clips) {
    const len = (c.preview?.segments ?? []).reduce((a, s) => a + s.duration, 0);
    const start = c.start_time ?? 0;
    if (t < start + len || c === clips[clips.length - 1]) return offset + Math.max(0, t - start);
    offset += len;
  }
  return t;
}

function drawPlayerAndTranscript(
  layout: HTMLElement,
  video: HTMLVideoElement,
  lines: Line[],
  streamId: string,
  clips: VideoClip[],
  setHls: (h: Hls) => void,
  wantT: number,
): void {
  const hasPreview = clips.some((c) => (c.preview?.segments ?? []).length > 0);
  const playerBox = h("div", { class: "player" });
  const transcript = h("ol", { id: "transcript", class: "transcript", "aria-label": "transcript" });
  layout.replaceChildren(playerBox, h("section", { class: "transcript-box" }, h("h2", {}, "Transcript"), transcript));
  if (!hasPreview) {
    playerBox.append(h("p", { class: "muted" }, "No preview yet: it appears once the episodes are proposed and the previews are built."));
  } else if (!video.dataset.loaded) {
    video.dataset.loaded = "1";
    const src = `/playlist/${seg(streamId)}.m3u8`;
    if (Hls.isSupported()) {
      // The playlist takes the token as a header; its segment links are signed.
      const player = new Hls({
        xhrSetup: (xhr, url) => {
          if (new URL(url, location.href).pathname.startsWith("/playlist/")) xhr.setRequestHeader("Authorization", token() ?? "");
        },
      });
      player.loadSource(src);
      player.attachMedia(video);
      setHls(player);
    } else {
      // Native HLS (Safari, iOS) cannot send a header: the playlist is the one place the
      // token goes into a URL.
      video.src = `${src}?token=${encodeURIComponent(token() ?? "")}`;
    }
    if (Number.isFinite(wantT)) {
      const seekTo = playerTime(clips, wantT);
      video.addEventListener("loadedmetadata", () => (video.currentTime = seekTo), { once: true });
    }
  }
  if (hasPreview) playerBox.append(video, h("p", { class: "muted", id: "player-time" }));
  if (!lines.length) transcript.append(h("li", { class: "muted" }, "No transcript yet."));
  for (const line of lines) {
    const row = h("li", { class: "line", "data-start": line.start.toFixed(2) });
    line.el = row;
    const drawLine = () => {
      row.replaceChildren(
        h(
          "button",
          {
            type: "button",
            class: "seek",
            title: "Play from here",
            onclick: () => {
              video.currentTime = line.playerStart;
              void video.play().catch(() => undefined);
            },
          },
          h("time", {}, clock(line.start)),
          " ",
          h("span", { class: "text" }, line.text),
        ),
        h("button", { type: "button", class: "edit secondary", "aria-label": `Edit line at ${clock(line.start)}`, onclick: edit }, "Edit"),
      );
    };
    const edit = () => {
      const input = h("input", { class: "line-input", value: line.text, "aria-label": "Corrected text", "data-api": "text" }) as HTMLInputElement;
      const form = h(
        "form",
        { class: "line-edit" },
        input,
        h("button", { type: "submit" }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: drawLine }, "Cancel"),
      ) as HTMLFormElement;
      form.addEventListener("keydown", (e) => {
        if (e.key === "Escape") drawLine();
      });
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          await api("/transcripts/edit", {
            method: "POST",
            body: { clipKey: line.clip.key, segments: [{ idx: line.idx, text: input.value }] },
          });
          line.text = input.value.trim();
          drawLine();
          row.classList.add("saved");
          flash("Saved; the search index is being updated.", "ok");
        } catch (err) {
          formError(form, err);
        }
      });
      row.replaceChildren(form);
      input.focus();
    };
    drawLine();
    transcript.append(row);
  }
  let current: Line | undefined;
  const follow = () => {
    const t = video.currentTime;
    const el = document.getElementById("player-time");
    if (el) el.textContent = `at ${clock(t)}`;
    let now: Line | undefined;
    for (const l of lines) if (l.playerStart <= t + 0.05) now = l;
    if (now === current) return;
    current?.el?.classList.remove("current");
    current = now;
    if (now?.el) {
      now.el.classList.add("current");
      // Scroll the transcript only, never the page.
      const box = transcript;
      const top = now.el.offsetTop - box.offsetTop;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - now.el.clientHeight) box.scrollTop = top - 40;
    }
  };
  onPlayer(video, "timeupdate", follow);
  onPlayer(video, "seeked", follow);
}

/** Player listeners of the drawn transcript and timeline, replaced when they are redrawn. */
const playerListeners = new Map<string, EventListener>();
function onPlayer(video: HTMLVideoElement, event: "timeupdate" | "seeked", key: string | EventListener, f?: EventListener): void {
  const name = typeof key === "string" ? `${event}/${key}` : event;
  const listener = typeof key === "string" ? f! : key;
  const old = playerListeners.get(name);
  if (old) video.removeEventListener(event, old);
  playerListeners.set(name, listener);
  video.addEventListener(event, listener);
}

function drawTimeline(box: HTMLElement, clips: VideoClip[], episodes: Episode[], lines: Line[], video: HTMLVideoElement): void {
  const end = Math.max(
    1,
    ...clips.map((c) => (c.start_time ?? 0) + (c.metadata?.format?.duration ?? 0)),
    ...episodes.map((e) => e.end_time ?? 0),
  );
  const pct = (t: number) => `${((100 * t) / end).toFixed(3)}%`;
  const band = (cls: string, a: number, b: number, title: string, extra: Attrs = {}) =>
    h("div", { class: `band ${cls}`, style: `left:${pct(a)};width:${pct(Math.max(0, b - a))}`, title, ...extra });
  const speech = h("div", { class: "lane", "aria-label": "speech and silence" });
  const marks = h("div", { class: "lane", "aria-label": "highlights and chapters" });
  const eps = h("div", { class: "lane", "aria-label": "proposed episodes" });
  for (const c of clips) {
    const o = c.start_time ?? 0;
    for (const s of c.speech?.silence ?? []) speech.append(band("silence", o + s.start, o + s.end, `silence ${clock(o + s.start)}–${clock(o + s.end)}`));
    for (const s of c.speech?.speech ?? []) speech.append(band("speech", o + s.start, o + s.end, `speech ${clock(o + s.start)}–${clock(o + s.end)}`));
    for (const m of c.summary?.highlights ?? [])
      marks.append(band("highlight", o + m.timestamp_start, o + m.timestamp_end, `highlight: ${m.description}`));
  }
  for (const e of episodes) {
    const a = e.start_time ?? 0;
    for (const ch of e.chapters ?? []) marks.append(band("chapter", a + ch.start, a + ch.start + end / 400, `chapter: ${ch.title}`));
    eps.append(band(`episode ${e.review_status ?? ""}`, a, e.end_time ?? a, `${e.title ?? e.id}: ${clock(a)}–${clock(e.end_time)}`, { "data-episode": e.id }));
  }
  const cursor = h("div", { class: "cursor" });
  const track = h("div", { class: "track", role: "slider", tabindex: 0, "aria-label": "timeline: click or use arrow keys to seek", "aria-valuemin": 0, "aria-valuemax": Math.round(end) }, speech, marks, eps, cursor);
  const seekStream = (t: number) => {
    const l = [...lines].reverse().find((x) => x.start <= t);
    video.currentTime = l ? l.playerStart + (t - l.start) : t;
  };
  track.addEventListener("click", (e) => {
    const r = track.getBoundingClientRect();
    seekStream(((e.clientX - r.left) / r.width) * end);
  });
  track.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") video.currentTime += 5;
    else if (e.key === "ArrowLeft") video.currentTime = Math.max(0, video.currentTime - 5);
  });
  onPlayer(video, "timeupdate", "timeline", () => {
    cursor.style.left = pct(video.currentTime);
    track.setAttribute("aria-valuenow", String(Math.round(video.currentTime)));
  });
  box.replaceChildren(
    h("h2", {}, "Timeline"),
    h(
      "p",
      { class: "legend muted" },
      h("span", { class: "key speech" }), "speech ", h("span", { class: "key silence" }), "silence ",
      h("span", { class: "key highlight" }), "highlight ", h("span", { class: "key chapter" }), "chapter ",
      h("span", { class: "key episode" }), "proposed episode",
    ),
    track,
    h("p", { class: "muted" }, `0:00 – ${clock(end)}`),
  );
}

function chaptersText(ch: Chapter[] | undefined): string {
  return (ch ?? []).map((c) => `${clock(c.start)} ${c.title}`).join("\n");
}

function parseChapters(text: string): Chapter[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [t, ...rest] = l.split(/\s+/);
      const start = parseClock(t);
      if (start === null) throw new ApiError(400, `chapters: “${l}” must start with a time like 1:05`);
      return { start, title: rest.join(" ") };
    });
}

function drawReview(box: HTMLElement, streamId: string, episodes: Episode[], p: IngestStatus | undefined): void {
  for (const e of episodes) episodeTitles.set(e.id, e.title || e.id);
  renderTasks();
  const awaiting = episodes.filter((e) => e.review_status === "awaiting_review");
  const decided = episodes.filter((e) => e.review_status !== "awaiting_review");
  box.replaceChildren(h("h2", {}, "Proposed episodes"));
  if (!episodes.length) {
    box.append(h("p", { class: "muted" }, "No proposals yet."));
    return;
  }
  const canReview = p?.status === "RUNNING" && p.progress.stage === "awaiting_review" && awaiting.length > 0;
  const form = h("form", { id: "review-form" }) as HTMLFormElement;
  for (const e of awaiting) {
    const name = `decision-${e.id}`;
    const radio = (value: string, label: string, checked = false) =>
      h("label", { class: "choice" }, h("input", { type: "radio", name, value, checked }), label);
    form.append(
      h(
        "fieldset",
        { class: "proposal", "data-episode": e.id },
        h("legend", {}, `${clock(e.start_time)}–${clock(e.end_time)} (${clock((e.end_time ?? 0) - (e.start_time ?? 0))})`),
        field("Title", h("input", { name: `title-${e.id}`, value: e.title ?? "", "data-api": "title" })),
        h(
          "div",
          { class: "range" },
          field("Starts at (stream time)", h("input", { name: `start-${e.id}`, value: clock(e.start_time), inputmode: "decimal", "data-api": "range" })),
          field("Ends at", h("input", { name: `end-${e.id}`, value: clock(e.end_time), inputmode: "decimal", "data-api": "range" })),
        ),
        field("Description", h("textarea", { name: `description-${e.id}`, rows: 2, "data-api": "description" }, e.description ?? "")),
        field("Chapters (one per line: time title)", h("textarea", { name: `chapters-${e.id}`, rows: 3, "data-api": "chapters" }, chaptersText(e.chapters))),
        h("div", { class: "choices", role: "radiogroup", "aria-label": "decision" }, radio("approve", "Approve"), radio("reject", "Reject"), radio("later", "Decide later", true)),
      ),
    );
  }
  if (awaiting.length) {
    form.append(h("button", { type: "submit", id: "submit-review", disabled: !canReview }, "Submit review"));
    if (!canReview) form.append(h("p", { class: "muted" }, "The ingestion is not waiting for a review right now."));
    box.append(form);
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFormErrors(form);
    const f = new FormData(form);
    const req: ReviewRequest = { approve: [], reject: [], edits: [] };
    try {
      for (const e of awaiting) {
        const d = f.get(`decision-${e.id}`);
        if (d === "approve") req.approve.push(e.id);
        else if (d === "reject") req.reject.push(e.id);
        const title = String(f.get(`title-${e.id}`) ?? "");
        const description = String(f.get(`description-${e.id}`) ?? "");
        const chapters = parseChapters(String(f.get(`chapters-${e.id}`) ?? ""));
        const edit: ReviewRequest["edits"][number] = { id: e.id };
        if (title !== (e.title ?? "")) edit.title = title;
        if (description !== (e.description ?? "")) edit.description = description;
        if (JSON.stringify(chapters) !== JSON.stringify((e.chapters ?? []).map((c) => ({ start: Math.floor(c.start), title: c.title }))))
          edit.chapters = chapters;
        // The range: sent only when changed (the fields show whole seconds).
        for (const [key, name, was] of [["start_time", "start", e.start_time], ["end_time", "end", e.end_time]] as const) {
          const text = String(f.get(`${name}-${e.id}`) ?? "").trim();
          if (text === clock(was)) continue;
          const at = parseClock(text);
          if (at === null) throw new ApiError(400, `range: “${text}” must be a time like 1:05 or 65.5`);
          edit[key] = at;
        }
        if (Object.keys(edit).length > 1 && d !== "reject") req.edits.push(edit);
      }
      if (!req.approve.length && !req.reject.length && !req.edits.length) throw new ApiError(400, "choose approve or reject for at least one episode");
      await api(`/stream/${seg(streamId)}/review`, { method: "POST", body: req });
      flash(`Review sent: ${req.approve.length} approved, ${req.reject.length} rejected.`, "ok");
      await refreshProgress(streamId);
    } catch (err) {
      formError(form, err);
    }
  });
  if (decided.length) {
    box.append(h("h3", {}, "Decided"), h("ul", { class: "decided" }, ...decided.map((e) => episodeRow(e))));
  }
}

function episodeRow(e: Episode): HTMLElement {
  episodeTitles.set(e.id, e.title || e.id);
  const state = h("span", { class: "publish muted" });
  const row = h(
    "li",
    { "data-episode": e.id, "data-review": e.review_status ?? "" },
    h("span", { class: `badge ${e.review_status === "approved" ? "done" : e.review_status === "rejected" ? "failed" : "review"}` }, (e.review_status ?? "").replace(/_/g, " ")),
    " ",
    h("strong", { class: "episode-title" }, e.title ?? e.id),
    " ",
    h("small", { class: "muted" }, `${clock(e.start_time)}–${clock(e.end_time)}`),
    " ",
    state,
  );
  if (e.review_status === "approved") {
    const show = async () => {
      try {
        const p = await api<PublishStatus>(`/episodes/${seg(e.id)}/publish`);
        state.textContent = describePublish(p);
      } catch (err) {
        state.textContent = message(err);
      }
    };
    void show();
    // The render and upload write task rows: each change arrives on the WebSocket.
    recordListeners.set(e.id, () => void show());
    row.append(
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => api("/render", { method: "POST", body: { episodeIds: [e.id] } }).then(show).catch((x) => (state.textContent = message(x))) }, "Render"),
        h("button", { type: "button", class: "secondary", onclick: () => api("/upload/youtube", { method: "POST", body: { episode_ids: [e.id] } }).then(show).catch((x) => (state.textContent = message(x))) }, "Upload to YouTube"),
        ...["srt", "vtt", "otio", "edl"].map((ext) =>
          h("button", { type: "button", class: "link", onclick: () => download(`/episodes/${seg(e.id)}/export.${ext}`, `${e.id}.${ext}`, state) }, ext.toUpperCase()),
        ),
      ),
    );
  }
  return row;
}

/** A publish run in words: its stage, then what it made or why it stopped. */
function describePublish(p: PublishStatus): string {
  const parts = [p.progress?.stage ? p.progress.stage.replace(/_/g, " ") : p.status.toLowerCase()];
  if (p.result?.status) parts.push(p.result.status.replace(/_/g, " "));
  if (p.progress?.video_id) parts.push(`YouTube video ${p.progress.video_id}`);
  if (p.progress?.waiting_until) parts.push(`waiting for quota until ${p.progress.waiting_until}`);
  if (p.progress?.message) parts.push(p.progress.message);
  if (p.error) parts.push(p.error);
  return parts.join(" · ");
}

async function download(path: string, name: string, note: HTMLElement): Promise<void> {
  try {
    const url = await blobUrl(path);
    const a = h("a", { href: url, download: name }) as HTMLAnchorElement;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (e) {
    note.textContent = message(e);
  }
}

// ---- search ------------------------------------------------------------------------------

function highlighted(hit: SearchHit, query: string): HTMLElement {
  const out = h("span", { class: "hit-text" });
  // The server's matched-word ranges when it sends them ([start, end] or {start, end}), else
  // the query's words found in the text.
  let ranges: [number, number][] | undefined = (hit.highlights ?? hit.matches)?.map((r) =>
    Array.isArray(r) ? r : [r.start, r.end],
  );
  if (!ranges) {
    const words = new Set(query.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 2));
    ranges = [];
    for (const m of hit.text.matchAll(/[\p{L}\p{N}]+/gu)) if (words.has(m[0].toLowerCase())) ranges.push([m.index!, m.index! + m[0].length]);
  }
  let at = 0;
  for (const [a, b] of ranges) {
    if (a < at) continue;
    out.append(hit.text.slice(at, a), h("mark", {}, hit.text.slice(a, b)));
    at = b;
  }
  out.append(hit.text.slice(at));
  return out;
}

async function searchPage(main: HTMLElement): Promise<void> {
  const params = new URLSearchParams(location.search);
  const q = params.get("q") ?? "";
  const only = params.get("stream_id") ?? "";
  const streams = await loadAll<Stream>("/records/streams");
  for (const s of streams) streamTitles.set(s.id, s.title || s.id);
  const form = h(
    "form",
    { id: "search-form", role: "search", class: "card" },
    field("Search what was said", h("input", { name: "q", type: "search", value: q, "data-api": "q", autofocus: true })),
    field(
      "In",
      h(
        "select",
        { name: "stream_id", "data-api": "stream_id" },
        h("option", { value: "" }, "all streams"),
        ...streams.map((s) => h("option", { value: s.id, selected: s.id === only }, s.title || s.id)),
      ),
    ),
    h("button", { type: "submit" }, "Search"),
  ) as HTMLFormElement;
  const results = h("ol", { id: "results", class: "results" });
  main.append(h("h1", {}, "Search"), form, results);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const v = String(f.get("q") ?? "");
    const sid = String(f.get("stream_id") ?? "");
    history.replaceState(null, "", `/ui/search?q=${encodeURIComponent(v)}${sid ? `&stream_id=${encodeURIComponent(sid)}` : ""}`);
    run(v, sid);
  });
  const run = async (query: string, streamId: string) => {
    clearFormErrors(form);
    results.replaceChildren();
    try {
      const scope = streamId ? `&stream_id=${encodeURIComponent(streamId)}` : "";
      const r = await api<SearchResults>(`/search?q=${encodeURIComponent(query)}&limit=20${scope}`);
      if (!r.items.length) results.append(h("li", { class: "muted" }, "Nothing found."));
      for (const hit of r.items)
        results.append(
          h("li", { class: "hit" },
            link(hit.link, h("span", {}, h("time", {}, clock(hit.at)), ` ${streamTitles.get(hit.stream_id) ?? hit.stream_id}`), { class: "hit-link", "data-at": hit.at }),
            h("p", {}, highlighted(hit, query)),
          ),
        );
    } catch (err) {
      formError(form, err);
    }
  };
  if (q) await run(q, only);
}

// ---- series, projects, profile, episodes ---------------------------------------------------

async function recordsPage<T extends { id: string; title?: string }>(
  main: HTMLElement,
  title: string,
  resource: string,
  fields: [string, string, "input" | "textarea"][],
  describe: (r: T) => Child,
): Promise<void> {
  const form = h(
    "form",
    { class: "card", id: `new-${resource}` },
    h("h2", {}, `Add to ${title.toLowerCase()}`),
    ...fields.map(([name, label, kind]) => field(label, h(kind, { name, "data-api": name, rows: kind === "textarea" ? 2 : undefined }))),
    h("button", { type: "submit" }, "Add"),
  ) as HTMLFormElement;
  const list = h("ul", { class: "records" });
  main.append(h("h1", {}, title), form, list);
  const draw = async () => {
    const items = await loadAll<T>(`/records/${resource}`);
    list.replaceChildren(...items.map((r) => h("li", {}, h("strong", {}, r.title || r.id), " ", describe(r))));
    if (!items.length) list.append(h("li", { class: "muted" }, "None yet."));
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const body: Record<string, string> = {};
    new FormData(form).forEach((v, k) => {
      if (String(v).trim() !== "") body[k] = String(v);
    });
    try {
      await api(`/records/${resource}`, { method: "POST", body });
      form.reset();
      await draw();
    } catch (err) {
      formError(form, err);
    }
  });
  await draw();
}

function seriesPage(main: HTMLElement): Promise<void> {
  return recordsPage<Series>(
    main,
    "Series",
    "series",
    [
      ["title", "Title", "input"],
      ["episode_title_template", "Episode title template (${title}, ${episode_order_index})", "input"],
      ["episode_description_template", "Episode description template", "textarea"],
      ["timezone", "Time zone of the schedule", "input"],
      ["start_time", "Usual start time (HH:MM)", "input"],
    ],
    (s) => h("small", { class: "muted" }, [s.episode_title_template, s.timezone, s.start_time].filter(Boolean).join(" · ")),
  );
}

function projectsPage(main: HTMLElement): Promise<void> {
  return recordsPage<Project>(
    main,
    "Projects",
    "projects",
    [
      ["title", "Title", "input"],
      ["description", "Description", "textarea"],
    ],
    (p) => h("small", { class: "muted" }, p.status ?? "", p.description ? ` ${p.description}` : ""),
  );
}

async function profilePage(main: HTMLElement): Promise<void> {
  const p = await api<Profile>("/records/profiles/my-profile");
  const form = h(
    "form",
    { class: "card", id: "profile-form" },
    field("Default transcription language (this browser)", h("input", { name: "language", value: localStorage.getItem("gt-language") ?? "", placeholder: "auto, or e.g. en" })),
    field("Speech track (audio track with your microphone, from 0)", h("input", { name: "speechTrack", "data-api": "speechTrack", inputmode: "numeric", value: p.speechTrack ?? "" })),
    field("Time zone", h("input", { name: "timezone", "data-api": "timezone", value: p.timezone ?? "" })),
    field("Transcription prompt template", h("textarea", { name: "promptTemplate", "data-api": "promptTemplate", rows: 2 }, p.promptTemplate ?? "")),
    field("Summary template", h("textarea", { name: "summaryTemplate", "data-api": "summaryTemplate", rows: 2 }, p.summaryTemplate ?? "")),
    field(
      "YouTube privacy",
      h("select", { name: "youtubePrivacy", "data-api": "youtubePrivacy" }, ...["private", "unlisted", "public"].map((v) => h("option", { value: v, selected: p.youtubePrivacy === v }, v))),
    ),
    h("button", { type: "submit" }, "Save profile"),
  ) as HTMLFormElement;
  const connections = h("section", { class: "card", id: "connections" }, h("h2", {}, "Connections"));
  main.append(h("h1", {}, "Profile"), form, connections);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const f = new FormData(form);
    localStorage.setItem("gt-language", String(f.get("language") ?? "").trim());
    // Only what changed is sent (PUT merges), so an untouched field is never re-validated.
    const body: Record<string, unknown> = {};
    for (const k of ["timezone", "promptTemplate", "summaryTemplate", "youtubePrivacy"] as const) {
      const v = String(f.get(k) ?? "");
      if (v !== String(p[k] ?? (k === "youtubePrivacy" ? "private" : ""))) body[k] = v;
    }
    const track = String(f.get("speechTrack") ?? "").trim();
    if (track !== String(p.speechTrack ?? "")) body.speechTrack = /^\d+$/.test(track) ? Number(track) : track;
    try {
      Object.assign(p, await api<Profile>("/records/profiles/my-profile", { method: "PUT", body }));
      flash("Profile saved.", "ok");
    } catch (err) {
      formError(form, err);
    }
  });
  const yt = h("p", {}, "YouTube: …");
  const tw = h("p", { id: "twitch" }, "Twitch: …");
  const capture = h("p", { id: "chat-capture" }, "");
  connections.append(yt, tw, capture);
  void drawTwitch(tw, capture);
  try {
    const t = await api<Record<string, unknown>>("/auth/youtube/token");
    yt.textContent = `YouTube: ${t.access_token || t.connected ? "connected" : "not connected"}`;
  } catch (e) {
    yt.textContent = `YouTube: ${message(e)}`;
  }
  yt.append(
    " ",
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          try {
            const r = await api<{ url: string }>("/auth/youtube/url", { method: "POST", body: { scopes: [], redirect_uri: `${location.origin}/youtube/callback` } });
            location.assign(r.url);
          } catch (e) {
            yt.append(h("span", { class: "field-error", role: "alert" }, message(e)));
          }
        },
      },
      "Connect YouTube",
    ),
  );
}

/** The Twitch line of the profile: who is connected, Connect, and the chat-capture switch. */
async function drawTwitch(tw: HTMLElement, capture: HTMLElement): Promise<void> {
  const t: Record<string, unknown> = await api<Record<string, unknown>>("/auth/twitch/token").catch((e) => ({ error: message(e) }));
  const connected = typeof t.access_token === "string";
  tw.replaceChildren(
    connected ? `Twitch: connected as ${String(t.login)}` : `Twitch: ${typeof t.error === "string" ? t.error : t.needs_reconnect ? "reconnect needed" : "not connected"}`,
    " ",
    h(
      "button",
      {
        type: "button",
        id: "connect-twitch",
        onclick: async () => {
          try {
            const r = await api<{ url: string }>("/auth/twitch/url", { method: "POST", body: { scopes: [], redirect_uri: `${location.origin}/twitch/callback` } });
            location.assign(r.url);
          } catch (e) {
            tw.append(h("span", { class: "field-error", role: "alert" }, message(e)));
          }
        },
      },
      connected ? "Reconnect Twitch" : "Connect Twitch",
    ),
  );
  if (!connected) {
    capture.replaceChildren();
    return;
  }
  const s = await api<ChatCaptureStatus>("/eventsub/chat/status");
  const on = s.capture?.enabled ?? false;
  const state = s.capture?.workflow?.state ?? (on ? "starting" : "off");
  capture.dataset.state = on ? state : "off";
  capture.replaceChildren(
    on ? `Chat capture: ${state.replace("_", " ")} (${s.capture?.transport})` : "Chat capture: off",
    " ",
    h(
      "button",
      {
        type: "button",
        id: "chat-capture-toggle",
        onclick: async () => {
          try {
            await api("/eventsub/chat/subscribe", { method: on ? "DELETE" : "POST", body: on ? undefined : {} });
            await drawTwitch(tw, capture);
          } catch (e) {
            capture.append(h("span", { class: "field-error", role: "alert" }, message(e)));
          }
        },
      },
      on ? "Turn chat capture off" : "Capture chat",
    ),
  );
}

async function twitchCallback(main: HTMLElement): Promise<void> {
  const q = new URLSearchParams(location.search);
  main.append(h("h1", {}, "Connecting Twitch…"));
  await api("/auth/twitch/callback", { method: "POST", body: { code: q.get("code"), state: q.get("state"), scope: [] } });
  history.replaceState(null, "", "/ui/profile");
  route();
}

async function youtubeCallback(main: HTMLElement): Promise<void> {
  const q = new URLSearchParams(location.search);
  main.append(h("h1", {}, "Connecting YouTube…"));
  await api("/auth/youtube/callback", { method: "POST", body: { code: q.get("code"), state: q.get("state"), scopes: [] } });
  history.replaceState(null, "", "/ui/profile");
  route();
}

async function episodesPage(main: HTMLElement): Promise<void> {
  const eps = await loadAll<Episode>("/records/episodes");
  main.append(h("h1", {}, "Episodes"), h("ul", { class: "decided" }, ...eps.map((e) => episodeRow(e))));
  if (!eps.length) main.append(h("p", { class: "muted" }, "No episodes yet: ingest a stream and review its proposals."));
}

// ---- start -------------------------------------------------------------------------------

function showLogin(): void {
  $("login").hidden = false;
  $("app").hidden = true;
}

let started = false;

async function start(): Promise<void> {
  takeTokenFromFragment();
  if (started) return;
  setOnUnauthorized(showLogin);
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(($("token") as HTMLInputElement).value.trim());
    if (started) location.reload();
    else void start();
  });
  if (!token()) return showLogin();
  started = true;
  $("login").hidden = true;
  $("app").hidden = false;
  document.querySelectorAll<HTMLAnchorElement>("nav a").forEach((a) =>
    a.addEventListener("click", (e) => {
      e.preventDefault();
      navigate(a.getAttribute("href")!);
    }),
  );
  $("sign-out").addEventListener("click", () => {
    setToken(null);
    socket?.close();
    showLogin();
  });
  window.addEventListener("popstate", route);
  try {
    const me = await api<Profile>("/records/profiles/my-profile");
    $("who").textContent = me.id ?? "";
  } catch (e) {
    flash(message(e));
  }
  connectSocket();
  loadTasks().catch((e) => flash(message(e)));
  route();
}

void start();

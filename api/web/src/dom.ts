// Small DOM helpers shared by the web UI's pages: element building, clock text, the flash
// line and form errors.

export type Child = Node | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

export function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export const $ = (id: string) => document.getElementById(id)!;

export function clock(s: number | undefined | null): string {
  if (s === undefined || s === null || !Number.isFinite(s)) return "";
  const t = Math.max(0, Math.floor(s));
  const hh = Math.floor(t / 3600);
  const mm = Math.floor((t % 3600) / 60);
  const ss = String(t % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** "1:02:03", "2:03" or "123.4" → seconds. */
export function parseClock(s: string): number | null {
  const parts = s.trim().split(":");
  if (parts.some((p) => p === "" || Number.isNaN(Number(p)))) return null;
  return parts.reduce((acc, p) => acc * 60 + Number(p), 0);
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

let flashTimer: number | undefined;
export function flash(text: string, kind: "ok" | "err" = "err"): void {
  const box = $("flash");
  box.className = kind;
  box.textContent = text;
  // Confirmations fade; errors stay until the next page or message.
  window.clearTimeout(flashTimer);
  if (kind === "ok" && text) flashTimer = window.setTimeout(() => (box.textContent = ""), 6000);
}

/**
 * Shows an API error next to the form field it names (the message mentions the field's API
 * name), else at the form's foot. The form's values are left as typed.
 */
export function formError(form: HTMLFormElement, e: unknown): void {
  clearFormErrors(form);
  const text = message(e);
  const fields = Array.from(form.querySelectorAll<HTMLElement>("[data-api]"));
  let best: { el: HTMLElement; at: number } | null = null;
  for (const f of fields) {
    const at = text.indexOf(f.dataset.api!);
    if (at >= 0 && (!best || at < best.at)) best = { el: f, at };
  }
  const target = best?.el;
  const note = h("span", { class: "field-error", role: "alert" }, text);
  if (target) {
    target.setAttribute("aria-invalid", "true");
    const label = target.closest("label");
    if (label) label.append(note);
    else target.after(note);
  } else {
    form.append(note);
  }
}

export function clearFormErrors(form: HTMLElement): void {
  form.querySelectorAll(".field-error").forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
}

export function field(label: string, input: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

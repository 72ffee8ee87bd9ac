// Sessions and tokens (revocation), usage over time, and the audit log.
import { api, enc } from "./api.js";
import { confirmed, errorSlot, field, guarded, h, onLeave, table, time } from "./dom.js";
import { lineChart, SERIES } from "./chart.js";

export async function renderSessions(body, instance) {
  const result = h("p", { class: "ok", "aria-live": "polite" });
  const revokeWith = (label, key, hint) => {
    const [wrap, input] = field(label, { pattern: "[A-Za-z0-9_\\-]{1,128}", required: true }, hint);
    const error = errorSlot();
    const button = h("button", { type: "submit", class: "danger" }, "Revoke");
    const form = h("form", { class: "card stack" }, wrap, button, error);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(button, error, async () => {
        const value = input.value.trim();
        if (!confirmed(`Revoke ${label.toLowerCase()} ${value}?`)) return;
        await api("POST", `/instances/${enc(instance.id)}/revoke-tokens`, { [key]: value });
        input.value = "";
        result.textContent = `Revoked ${label.toLowerCase()} ${value}.`;
      });
    });
    return form;
  };
  const allError = errorSlot();
  const all = h("button", { type: "button", class: "danger" }, "Revoke all tokens");
  all.addEventListener("click", () =>
    guarded(all, allError, async () => {
      if (!confirmed(`Revoke every token of ${instance.name}? Every client must authenticate again.`)) return;
      await api("POST", `/instances/${enc(instance.id)}/revoke-tokens`, {});
      result.textContent = "Revoked every token of the instance.";
    }));
  body.append(
    h("p", {}, "Access tokens can be revoked one by one (token id, the jti claim), by session (sid: the token and every refresh of it), or all at once."),
    revokeWith("Token id", "jti", "The jti claim of an access token."),
    revokeWith("Session id", "sid", "The sid claim: the whole refresh family."),
    h("div", { class: "card stack" }, h("h3", {}, "Every token"), all, allError),
    result);
}

const RANGES = [
  ["3600", "minute", "Last hour (per minute)"],
  ["86400", "minute", "Last 24 hours (per minute)"],
  ["172800", "hour", "Last 48 hours (per hour)"],
  ["2592000", "hour", "Last 30 days (per hour)"],
];

export async function renderUsage(body, instance) {
  const [rangeWrap, range] = field("Range", { tag: "select" });
  RANGES.forEach(([seconds, step, text], i) => range.append(h("option", { value: String(i) }, text)));
  const [credWrap, cred] = field("Credential", { tag: "select" });
  const chart = h("div", { class: "chart" });
  const totals = h("div", {});
  const error = errorSlot();
  let series = null;
  let drawnWidth = 0;
  const draw = () => {
    if (!series) return;
    const [seconds, step] = RANGES[Number(range.value)];
    const stepSeconds = step === "minute" ? 60 : 3600;
    const to = Math.floor(series.to / stepSeconds) * stepSeconds;
    const from = to - Number(seconds) + stepSeconds;
    const byTime = new Map(series.buckets.map((b) => [b.t, b]));
    const points = [];
    for (let t = from; t <= to; t += stepSeconds) {
      const bucket = byTime.get(t);
      const counts = bucket ? (cred.value ? bucket.credentials[cred.value] || {} : bucket.total) : {};
      points.push({ t, ...Object.fromEntries(SERIES.map(([k]) => [k, counts[k] || 0])) });
    }
    drawnWidth = chart.clientWidth;
    chart.replaceChildren(lineChart(points, stepSeconds, `Usage of ${cred.value || "all credentials"}`, drawnWidth || 720));
  };
  const load = async () => {
    const [seconds, step] = RANGES[Number(range.value)];
    const to = Math.floor(Date.now() / 1000);
    series = await api("GET", `/instances/${enc(instance.id)}/usage/series?from=${to - Number(seconds)}&to=${to}&step=${step}`);
    series.to = to;
    const ids = new Set();
    for (const b of series.buckets) for (const id of Object.keys(b.credentials)) ids.add(id);
    const chosen = cred.value;
    cred.replaceChildren(h("option", { value: "" }, "All credentials (total)"), [...ids].sort().map((id) => h("option", { value: id }, id)));
    cred.value = ids.has(chosen) ? chosen : "";
    draw();
    const { credentials } = await api("GET", `/instances/${enc(instance.id)}/usage`);
    totals.replaceChildren(credentials.length
      ? table(["Credential", "Requests", "Rate limited", "Auth ok", "Auth failed", "Last use"],
          credentials.map((c) => h("tr", {}, h("td", {}, h("code", {}, c.credential_id)), h("td", {}, String(c.requests)), h("td", {}, String(c.rate_limited)), h("td", {}, String(c.auth_ok)), h("td", {}, String(c.auth_failed)), h("td", {}, time(c.last_used_at)))),
          "Totals since the instance was created")
      : h("p", {}, "No usage yet."));
  };
  const reload = h("button", { type: "button" }, "Refresh");
  reload.addEventListener("click", () => guarded(reload, error, load));
  range.addEventListener("change", () => guarded(reload, error, load));
  cred.addEventListener("change", draw);
  // Redrawn at the new size when the window turns (a phone) or is resized.
  const resized = new ResizeObserver(() => {
    if (chart.clientWidth !== drawnWidth) draw();
  });
  resized.observe(chart);
  onLeave(() => resized.disconnect());
  body.append(h("div", { class: "row" }, rangeWrap, credWrap, reload), error, chart, totals);
  await load();
}

const PAGE = 20;

export async function renderAudit(body, instance) {
  const [filterWrap, filter] = field("Action", { tag: "select" });
  filter.append(h("option", { value: "" }, "All actions"));
  const list = h("div", {});
  const pager = h("nav", { class: "row", "aria-label": "Audit pages" });
  const error = errorSlot();
  let offset = 0;
  const load = async () => {
    const page = await api("GET", `/instances/${enc(instance.id)}/audit?offset=${offset}&limit=${PAGE}`);
    const actions = new Set([...filter.options].map((o) => o.value));
    for (const e of page.entries) {
      if (!actions.has(e.action)) {
        actions.add(e.action);
        filter.append(h("option", { value: e.action }, e.action));
      }
    }
    const shown = page.entries.filter((e) => !filter.value || e.action === filter.value);
    list.replaceChildren(shown.length
      ? table(["Time", "Action", "Actor", "Target", "Credential", "IP", "Detail"], shown.map((e) => h("tr", {},
          h("td", {}, time(e.at)), h("td", {}, h("code", {}, e.action)), h("td", {}, e.actor), h("td", {}, e.target || ""),
          h("td", {}, e.credential_id || ""), h("td", {}, e.ip || ""), h("td", {}, [e.reason, e.detail ? JSON.stringify(e.detail) : null].filter(Boolean).join(" ")))),
          `Entries ${page.total ? offset + 1 : 0}–${offset + page.entries.length} of ${page.total}, newest first`)
      : h("p", {}, "No entries on this page."));
    const prev = h("button", { type: "button", disabled: offset === 0 }, "Newer");
    prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); guarded(prev, error, load); });
    const next = h("button", { type: "button", disabled: page.next_offset == null }, "Older");
    next.addEventListener("click", () => { offset = page.next_offset; guarded(next, error, load); });
    pager.replaceChildren(prev, next);
  };
  filter.addEventListener("change", () => load().catch((e) => error.show(e)));
  body.append(h("div", { class: "row" }, filterWrap), error, list, pager);
  await load();
}

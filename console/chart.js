// A small line chart drawn as inline SVG (no library): one line per counter,
// a legend, and a hidden data table for screen readers.
import { h } from "./dom.js";

export const SERIES = [
  ["requests", "Requests"],
  ["rate_limited", "Rate limited"],
  ["auth_ok", "Auth ok"],
  ["auth_failed", "Auth failed"],
];

const NS = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function label(t, stepSeconds) {
  const d = new Date(t * 1000);
  return stepSeconds < 3600 ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit" });
}

/** `width`: the space the chart gets, in CSS pixels; the SVG is drawn at that
 * size so its labels stay readable on a phone instead of shrinking. */
export function lineChart(points, stepSeconds, title, width = 720) {
  const W = Math.round(Math.max(300, width)), H = W < 500 ? 220 : 260, L = 44, R = 12, T = 12, B = 30;
  const max = Math.max(1, ...points.flatMap((p) => SERIES.map(([k]) => p[k])));
  const x = (i) => L + (points.length < 2 ? 0 : (i * (W - L - R)) / (points.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: peak ${max} per ${stepSeconds < 3600 ? "minute" : "hour"}`, class: "chart-svg", "data-step": stepSeconds, "data-from": points.length ? points[0].t : "", "data-to": points.length ? points[points.length - 1].t : "" });
  for (const frac of [0, 0.5, 1]) {
    const v = Math.round(max * frac);
    svg.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }), s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, String(v)));
  }
  const ticks = Math.min(Math.max(2, Math.floor((W - L - R) / 110)), points.length);
  for (let j = 0; j < ticks; j++) {
    const i = Math.round((j * (points.length - 1)) / Math.max(1, ticks - 1));
    // The first and last labels grow inwards so neither is cut at the edge.
    const anchor = ticks > 1 && j === 0 ? "start" : ticks > 1 && j === ticks - 1 ? "end" : "middle";
    svg.append(s("text", { x: x(i), y: H - 8, "text-anchor": anchor, class: "axis" }, label(points[i].t, stepSeconds)));
  }
  SERIES.forEach(([key], n) => {
    const d = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
    svg.append(s("path", { d, class: `line line-${n}` }));
    points.forEach((p, i) => {
      if (p[key] > 0) svg.append(s("circle", { cx: x(i), cy: y(p[key]), r: 3, class: `dot line-${n}`, "data-series": key, "data-t": p.t, "data-value": p[key] }));
    });
  });
  const legend = h("ul", { class: "legend" }, SERIES.map(([key, text], n) =>
    h("li", {}, h("span", { class: `swatch line-${n}`, "aria-hidden": "true" }), `${text}: ${points.reduce((a, p) => a + p[key], 0)}`)));
  const nonZero = points.filter((p) => SERIES.some(([k]) => p[k] > 0));
  // A table grows to its content whatever its width, so the clipping box is
  // a wrapper: a bare hidden table would widen the page on a phone.
  const data = h("div", { class: "visually-hidden" }, h("table", {}, h("caption", {}, `${title}, non-zero steps`),
    h("tr", {}, h("th", {}, "Time"), SERIES.map(([, t]) => h("th", {}, t))),
    nonZero.map((p) => h("tr", {}, h("td", {}, new Date(p.t * 1000).toISOString()), SERIES.map(([k]) => h("td", {}, String(p[k])))))));
  return h("figure", {}, svg, h("figcaption", {}, legend), data);
}

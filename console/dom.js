// DOM helpers. Every string becomes a text node: names and values typed by
// operators are text, never HTML (there is no innerHTML in the console).

/** h("tag", {attr: value, onclick: fn}, ...children) */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

/** Appends children like h(): strings as text, null/false skipped (the DOM's
 * own append would write "null"). */
export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let ids = 0;
export const uid = (prefix) => `${prefix}-${++ids}`;

/** A labelled input: returns [wrapper, input]. */
export function field(label, attrs = {}, hint) {
  const id = uid("f");
  const input = attrs.tag === "select" ? h("select", { ...attrs, tag: null, id }) : attrs.tag === "textarea" ? h("textarea", { ...attrs, tag: null, id }) : h("input", { type: "text", ...attrs, id });
  return [h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", {}, hint) : null), input];
}

/** A status line next to a control: shows an API error as readable text. */
export function errorSlot() {
  const slot = h("p", { class: "error", role: "alert" });
  slot.show = (e) => {
    slot.textContent = e ? e.message || String(e) : "";
  };
  return slot;
}

/** Runs `work` with the button disabled; errors go to `slot`. */
export async function guarded(button, slot, work) {
  slot.show(null);
  button.disabled = true;
  try {
    await work();
  } catch (e) {
    slot.show(e);
  } finally {
    button.disabled = false;
  }
}

export function copyButton(value, label = "Copy") {
  const status = h("span", { class: "copied", "aria-live": "polite" });
  const button = h("button", {
    type: "button",
    class: "small",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(typeof value === "function" ? value() : value);
        status.textContent = "Copied";
      } catch {
        status.textContent = "Copy failed: select the text and copy it by hand";
      }
      setTimeout(() => (status.textContent = ""), 2500);
    },
  }, label);
  return h("span", { class: "copy" }, button, status);
}

/** A value shown once, with Copy and the warning. */
export function shownOnce(label, value) {
  return h("div", { class: "once", role: "group", "aria-label": `${label} (shown once)` },
    h("strong", {}, label),
    h("code", { class: "value" }, value),
    copyButton(value),
    h("p", { class: "warning" }, "Copy it now: you will not see it again."));
}

export function time(iso) {
  if (!iso) return "never";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** Grace choice: now, 1 h, 24 h, 7 days, or a custom number of hours. */
export function graceField() {
  const [wrap, select] = field("Grace", { tag: "select" });
  for (const [value, text] of [["0", "now (no grace)"], ["3600", "1 hour"], ["86400", "24 hours"], ["604800", "7 days"], ["custom", "custom…"]]) {
    select.append(h("option", { value }, text));
  }
  const [customWrap, custom] = field("Custom grace (hours)", { type: "number", min: "0", max: "720", step: "any" });
  customWrap.hidden = true;
  select.addEventListener("change", () => (customWrap.hidden = select.value !== "custom"));
  const seconds = () => (select.value === "custom" ? Math.round(Number(custom.value || 0) * 3600) : Number(select.value));
  return { node: h("div", { class: "grace" }, wrap, customWrap), seconds };
}

export function confirmed(message) {
  return window.confirm(message);
}

export function table(headers, rows, caption) {
  // The wrapper scrolls sideways on a phone: keyboard users reach it with Tab
  // (a focusable region with a name), as axe's scrollable-region rule asks.
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": caption || `Table: ${headers.join(", ")}` },
    h("table", {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
}

/** Values shown once (a new instance's secret), in memory only: a reload forgets them. */
export const onceStore = new Map();

let leaving = [];
/** Registers a timer's stop, run when the screen changes. */
export function onLeave(stop) {
  leaving.push(stop);
}
export function leaveAll() {
  for (const stop of leaving) stop();
  leaving = [];
}

// One instance: its tabs, and the overview (API key, the secret shown once
// after creation, edit, delete).
import { api, enc } from "./api.js";
import { append, confirmed, copyButton, errorSlot, field, guarded, h, onceStore, shownOnce, time } from "./dom.js";
import { renderDomainKeys, renderSecrets } from "./credentials.js";
import { renderExperiences } from "./experiences.js";
import { renderAudit, renderSessions, renderUsage } from "./reports.js";

const TABS = [
  ["overview", "Overview"],
  ["secrets", "Secrets"],
  ["domain-keys", "Domain keys"],
  ["experiences", "Experiences"],
  ["sessions", "Sessions and tokens"],
  ["usage", "Usage"],
  ["audit", "Audit log"],
];

const RENDER = {
  secrets: renderSecrets,
  "domain-keys": renderDomainKeys,
  experiences: renderExperiences,
  sessions: renderSessions,
  usage: renderUsage,
  audit: renderAudit,
};

export async function renderInstance(view, id, tab) {
  const instance = await api("GET", `/instances/${enc(id)}`);
  const current = TABS.some(([t]) => t === tab) ? tab : "overview";
  const label = TABS.find(([t]) => t === current)[1];
  document.title = `${instance.name} · ${label} · keybroker console`;
  const nav = h("nav", { class: "tabs", "aria-label": "Instance sections" },
    TABS.map(([t, text]) => h("a", { href: `#/instances/${enc(id)}/${t}`, "aria-current": t === current ? "page" : null }, text)));
  const body = h("section", { "aria-labelledby": "section-title" }, h("h2", { id: "section-title" }, label));
  view.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: "#/instances" }, "Instances"), " / "),
    h("h1", {}, instance.name),
    nav,
    body);
  if (current === "overview") {
    renderOverview(body, instance);
  } else {
    await RENDER[current](body, instance);
  }
}

function renderOverview(body, instance) {
  const once = onceStore.get(`secret:${instance.id}`);
  onceStore.delete(`secret:${instance.id}`);
  const products = Object.entries(instance.products || {});
  append(body,
    h("dl", { class: "facts" },
      h("dt", {}, "API key"), h("dd", {}, h("code", {}, instance.api_key), " ", copyButton(instance.api_key)),
      h("dt", {}, "Instance id"), h("dd", {}, h("code", {}, instance.id)),
      h("dt", {}, "Token lifetime"), h("dd", {}, `${instance.token_ttl_seconds} s`),
      h("dt", {}, "Products"), h("dd", {}, products.length ? products.map(([slug, p]) => h("div", {}, h("code", {}, slug), " → ", p.upstream)) : "none"),
      h("dt", {}, "Created"), h("dd", {}, time(instance.created_at))),
    once ? h("div", { class: "card" }, h("h3", {}, "First secret"), shownOnce("Secret", once.value)) : null,
    editForm(instance),
    deleteForm(instance));
}

function editForm(instance) {
  const [nameWrap, name] = field("Name", { required: true, maxlength: "200" });
  name.value = instance.name;
  const [ttlWrap, ttl] = field("Token lifetime (seconds)", { type: "number", min: "60", max: "86400" });
  ttl.value = String(instance.token_ttl_seconds);
  const [productsWrap, products] = field("Product upstreams", { tag: "textarea", rows: "3" }, "One slug=upstream per line; a slug left out is removed.");
  products.value = Object.entries(instance.products || {}).map(([s, p]) => `${s}=${p.upstream}`).join("\n");
  const error = errorSlot();
  const save = h("button", { type: "submit" }, "Save changes");
  const done = h("p", { class: "ok", "aria-live": "polite" });
  const form = h("form", { class: "card stack", "aria-labelledby": "edit-title" },
    h("h3", { id: "edit-title" }, "Edit instance"), nameWrap, ttlWrap, productsWrap, save, done, error);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    done.textContent = "";
    guarded(save, error, async () => {
      const next = {};
      for (const line of products.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
        const at = line.indexOf("=");
        if (at < 1) throw new Error(`"${line}" is not slug=upstream`);
        const slug = line.slice(0, at).trim();
        next[slug] = { ...(instance.products[slug] || {}), upstream: line.slice(at + 1).trim() };
      }
      const updated = await api("PATCH", `/instances/${enc(instance.id)}`, {
        name: name.value,
        token_ttl_seconds: Number(ttl.value),
        products: next,
      });
      Object.assign(instance, updated);
      document.querySelector("h1").textContent = updated.name;
      done.textContent = "Saved.";
    });
  });
  return form;
}

function deleteForm(instance) {
  const error = errorSlot();
  const button = h("button", { type: "button", class: "danger" }, "Delete instance");
  button.addEventListener("click", () =>
    guarded(button, error, async () => {
      if (!confirmed(`Delete the instance "${instance.name}" and every credential of it? Its tokens stop working.`)) return;
      await api("DELETE", `/instances/${enc(instance.id)}`);
      location.hash = "#/instances";
    }));
  return h("div", { class: "card danger-zone" }, h("h3", {}, "Delete"), h("p", {}, "Removes the instance, its secrets, keys and experiences."), button, error);
}

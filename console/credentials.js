// Secrets and domain keys: a new value is shown once; the list shows masks.
// Pending domain keys count down to `active_at` and turn active on their own.
import { api, clockOffsetMs, enc } from "./api.js";
import { confirmed, errorSlot, field, graceField, guarded, h, onLeave, shownOnce, table, time } from "./dom.js";

function statusCell(record) {
  return h("span", { class: `status status-${record.status}` }, record.status);
}

function revokeButton(instance, path, what, refresh) {
  const error = errorSlot();
  const button = h("button", { type: "button", class: "small danger" }, "Revoke");
  button.addEventListener("click", () =>
    guarded(button, error, async () => {
      if (!confirmed(`Revoke ${what}? Everything that uses it stops working at once.`)) return;
      await api("DELETE", `/instances/${enc(instance.id)}/${path}`);
      await refresh();
    }));
  return [button, error];
}

export async function renderSecrets(body, instance) {
  const list = h("div", {});
  const once = h("div", { "aria-live": "polite" });
  const grace = graceField();
  const refresh = async () => {
    const { secrets } = await api("GET", `/instances/${enc(instance.id)}/secrets`);
    const rows = secrets.map((s) => {
      const error = errorSlot();
      const rotate = h("button", { type: "button", class: "small" }, "Rotate");
      rotate.addEventListener("click", () =>
        guarded(rotate, error, async () => {
          const seconds = grace.seconds();
          const when = seconds ? `in ${seconds} s` : "at once";
          if (!confirmed(`Rotate ${s.masked}? The old secret stops working ${when}.`)) return;
          const created = await api("POST", `/instances/${enc(instance.id)}/secrets/${enc(s.id)}/rotate`, { grace_seconds: seconds });
          once.replaceChildren(shownOnce("New secret", created.value));
          await refresh();
        }));
      const [revoke, revokeError] = revokeButton(instance, `secrets/${enc(s.id)}`, `the secret ${s.masked}`, refresh);
      const live = s.status === "active" || s.status === "expiring";
      return h("tr", {},
        h("td", {}, h("code", {}, s.masked)),
        h("td", {}, statusCell(s), s.expires_at ? ` until ${time(s.expires_at)}` : null),
        h("td", {}, time(s.last_used_at)),
        h("td", {}, time(s.created_at)),
        h("td", { class: "actions" }, live ? [rotate, revoke] : null, error, revokeError));
    });
    list.replaceChildren(rows.length ? table(["Secret", "Status", "Last use", "Created", "Actions"], rows) : h("p", {}, "No secrets."));
  };
  const error = errorSlot();
  const add = h("button", { type: "button" }, "Add secret");
  add.addEventListener("click", () =>
    guarded(add, error, async () => {
      const created = await api("POST", `/instances/${enc(instance.id)}/secrets`);
      once.replaceChildren(shownOnce("New secret", created.value));
      await refresh();
    }));
  body.append(h("p", {}, "Secrets are for servers: they exchange one for an access token at /v1/auth."),
    h("div", { class: "row" }, add, error), once, h("div", { class: "card" }, h("h3", {}, "Rotation"), grace.node), list);
  await refresh();
}

function countdown(key, cell, refresh) {
  const activeAt = Date.parse(key.active_at);
  let fired = false;
  const tick = () => {
    const left = Math.ceil((activeAt - (Date.now() + clockOffsetMs)) / 1000);
    if (left > 0) {
      cell.textContent = `pending, active in ${left} s`;
    } else if (!fired) {
      fired = true;
      cell.textContent = "active";
      cell.className = "status status-active";
      refresh().catch(() => {});
    }
  };
  tick();
  const timer = setInterval(tick, 1000);
  onLeave(() => clearInterval(timer));
  return timer;
}

export async function renderDomainKeys(body, instance) {
  const list = h("div", {});
  const once = h("div", { "aria-live": "polite" });
  let timers = [];
  const refresh = async () => {
    for (const t of timers) clearInterval(t);
    timers = [];
    const { domain_keys: keys } = await api("GET", `/instances/${enc(instance.id)}/domain-keys`);
    const rows = keys.map((k) => {
      const cell = statusCell(k);
      if (k.status === "pending" && k.active_at) timers.push(countdown(k, cell, refresh));
      const [revoke, revokeError] = revokeButton(instance, `domain-keys/${enc(k.id)}`, `the domain key ${k.masked}`, refresh);
      const editError = errorSlot();
      const [editWrap, edit] = field(`Edit domains of ${k.masked}`, {});
      edit.value = (k.domains || []).join(", ");
      const save = h("button", { type: "button", class: "small" }, "Save domains");
      save.addEventListener("click", () =>
        guarded(save, editError, async () => {
          await api("PATCH", `/instances/${enc(instance.id)}/domain-keys/${enc(k.id)}`, { domains: splitList(edit.value) });
          await refresh();
        }));
      const live = k.status !== "revoked";
      return h("tr", {},
        h("td", {}, h("code", {}, k.masked)),
        h("td", {}, cell),
        h("td", {}, live ? h("div", { class: "inline" }, editWrap, save, editError) : (k.domains || []).join(", ")),
        h("td", {}, time(k.last_used_at)),
        h("td", { class: "actions" }, live ? revoke : null, revokeError));
    });
    list.replaceChildren(rows.length ? table(["Domain key", "Status", "Domains", "Last use", "Actions"], rows) : h("p", {}, "No domain keys."));
  };
  const [domainsWrap, domains] = field("Domains", { placeholder: "shop.example.com, *.example.org" }, "Comma-separated hosts (host:port allowed) where the key works.");
  const error = errorSlot();
  const add = h("button", { type: "submit" }, "Add domain key");
  const form = h("form", { class: "card stack" }, domainsWrap, add, error);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(add, error, async () => {
      const created = await api("POST", `/instances/${enc(instance.id)}/domain-keys`, { domains: splitList(domains.value) });
      domains.value = "";
      once.replaceChildren(shownOnce("New domain key", created.value));
      await refresh();
    });
  });
  body.append(h("p", {}, "Domain keys are for browsers: they work only from the listed domains, after a propagation delay."), form, once, list);
  await refresh();
}

export function splitList(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

// Experiences (Interakt-style): masked token, Copy, Regenerate with a grace,
// allowed origins, operations, limits, upstream, a curl sample and the SDK
// embed snippet; the token's value appears only in the moment it is issued.
import { api, enc } from "./api.js";
import { append, copyButton, errorSlot, field, graceField, guarded, h, shownOnce } from "./dom.js";
import { splitList } from "./credentials.js";

const PLACEHOLDER = "<experience token: shown once, when created or regenerated>";

function curlSample(slug, exp, tokenValue) {
  const op = Array.isArray(exp.operations) && exp.operations[0] && exp.operations[0] !== "*" ? exp.operations[0] : "search";
  return `curl -s '${location.origin}/prod/${slug}/v1/${op}?q=hello' -H 'X-Access-Token: ${tokenValue || "$EXPERIENCE_TOKEN"}'`;
}

function embedSnippet(slug, tokenValue) {
  const base = location.origin;
  return `<script type="module">
  import { KeyBroker } from "${base}/sdk/keybroker.js";
  const kb = await KeyBroker.connect({
    baseUrl: "${base}",
    experience: "${slug}",
    experienceToken: "${tokenValue || PLACEHOLDER}",
  });
  const response = await kb.fetch("${slug}", "/v1/search?q=hello");
  console.log(await response.json());
</script>`;
}

function block(label, text) {
  return h("div", { class: "snippet" }, h("div", { class: "row" }, h("strong", {}, label), copyButton(text)), h("pre", {}, h("code", {}, text)));
}

function experienceCard(instance, exp, fresh, refresh) {
  const slug = exp.slug;
  const tokenValue = fresh && fresh.token && fresh.token.value;
  const grace = graceField();
  const error = errorSlot();
  const regenerate = h("button", { type: "button" }, "Regenerate");
  const card = h("article", { class: "card", "aria-labelledby": `exp-${slug}` });
  regenerate.addEventListener("click", () =>
    guarded(regenerate, error, async () => {
      const seconds = grace.seconds();
      if (!window.confirm(`Regenerate the token of ${slug}? The current one stops working ${seconds ? `in ${seconds} s` : "at once"}.`)) return;
      const issued = await api("POST", `/instances/${enc(instance.id)}/experiences/${enc(slug)}/regenerate-token`, { grace_seconds: seconds });
      await refresh(issued);
    }));
  const previous = (exp.previous_tokens || []).map((t) => h("li", {}, h("code", {}, t.masked), ` ${t.status}`, t.expires_at ? ` until ${new Date(t.expires_at).toLocaleString()}` : ""));
  append(card,
    h("h3", { id: `exp-${slug}` }, slug, " ", h("small", {}, exp.kind || "")),
    h("dl", { class: "facts" },
      h("dt", {}, "Token"), h("dd", {}, exp.token ? [h("code", {}, exp.token.masked), " ", h("span", { class: `status status-${exp.token.status}` }, exp.token.status)] : "none yet: Regenerate issues one"),
      previous.length ? [h("dt", {}, "Older tokens"), h("dd", {}, h("ul", {}, previous))] : null,
      h("dt", {}, "Upstream"), h("dd", {}, h("code", {}, exp.upstream)),
      h("dt", {}, "Allowed origins"), h("dd", {}, (exp.allowed_origins || []).length ? exp.allowed_origins.join(", ") : "any (no Origin check)"),
      h("dt", {}, "Operations"), h("dd", {}, (exp.operations || []).join(", ")),
      h("dt", {}, "Limits"), h("dd", {}, `${exp.rate_limit_per_minute} per minute`, exp.daily_cap ? `, ${exp.daily_cap} per day` : ", no daily cap")),
    tokenValue ? shownOnce("Experience token", tokenValue) : null,
    block("Sample curl", curlSample(slug, exp, tokenValue)),
    block("Embed snippet (SDK, experienceToken mode)", embedSnippet(slug, tokenValue)),
    h("div", { class: "row" }, grace.node, regenerate),
    error);
  return card;
}

export async function renderExperiences(body, instance) {
  const list = h("div", { class: "cards" });
  const refresh = async (fresh) => {
    const { experiences } = await api("GET", `/instances/${enc(instance.id)}/experiences`);
    list.replaceChildren(...experiences.map((exp) => experienceCard(instance, exp, fresh && fresh.slug === exp.slug ? fresh : null, refresh)));
    if (!experiences.length) list.append(h("p", {}, "No experiences yet."));
  };
  const [slugWrap, slug] = field("Slug", { required: true, pattern: "[a-z0-9][a-z0-9_\\-]*", placeholder: "search" });
  const [kindWrap, kind] = field("Kind", { tag: "select" });
  for (const k of ["custom", "search", "chat"]) kind.append(h("option", { value: k }, k));
  const [upWrap, upstream] = field("Upstream", { required: true, type: "url", placeholder: "https://search.internal.example" });
  const [originsWrap, origins] = field("Allowed origins", { placeholder: "https://shop.example.com" }, "Comma-separated; empty: any.");
  const [opsWrap, ops] = field("Operations", { placeholder: "search, autocomplete" }, "Comma-separated; empty: the kind's defaults.");
  const [minuteWrap, minute] = field("Minute limit", { type: "number", min: "1", placeholder: "60" });
  const [capWrap, cap] = field("Daily cap", { type: "number", min: "1", placeholder: "none" });
  const error = errorSlot();
  const create = h("button", { type: "submit" }, "Create experience");
  const form = h("form", { class: "card grid", "aria-labelledby": "new-exp" },
    h("h3", { id: "new-exp" }, "New experience"), slugWrap, kindWrap, upWrap, originsWrap, opsWrap, minuteWrap, capWrap, h("div", {}, create, error));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(create, error, async () => {
      const request = { slug: slug.value.trim(), kind: kind.value, upstream: upstream.value.trim() };
      if (origins.value.trim()) request.allowed_origins = splitList(origins.value);
      if (ops.value.trim()) request.operations = splitList(ops.value);
      if (minute.value) request.rate_limit_per_minute = Number(minute.value);
      if (cap.value) request.daily_cap = Number(cap.value);
      const created = await api("POST", `/instances/${enc(instance.id)}/experiences`, request);
      form.reset();
      await refresh(created);
    });
  });
  body.append(form, list);
  await refresh(null);
}

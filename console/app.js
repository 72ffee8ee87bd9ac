// The console's shell: sign-in, the instances list and the hash router
// (`#/instances`, `#/instances/<id>/<tab>`). The hash never holds a credential.
import { api, enc, token } from "./api.js";
import { copyButton, errorSlot, field, guarded, h, leaveAll, onceStore, table, time } from "./dom.js";
import { renderInstance } from "./instance.js";

const view = document.getElementById("view");
const signIn = document.getElementById("sign-in");
const signOut = document.getElementById("sign-out");
const form = document.getElementById("sign-in-form");
const signInError = document.getElementById("sign-in-error");

function showSignIn(message) {
  view.hidden = true;
  view.replaceChildren();
  signIn.hidden = false;
  signOut.hidden = true;
  signInError.textContent = message || "";
  document.getElementById("admin-token").focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("admin-token");
  token.set(input.value.trim());
  try {
    await api("GET", "/instances");
  } catch (e) {
    token.clear();
    showSignIn(e.status === 401 || e.status === 403 ? `Sign-in failed: ${e.message}` : e.message);
    return;
  }
  input.value = "";
  if (!location.hash || location.hash === "#/") {
    location.hash = "#/instances"; // hashchange routes
  } else {
    route();
  }
});

signOut.addEventListener("click", () => {
  token.clear();
  onceStore.clear();
  location.hash = "";
  showSignIn("Signed out.");
});

// Each route renders off-screen and is shown only if no later navigation
// started meanwhile: a slow answer for a screen the operator already left
// (sign-in's list, then a tab) must not replace the screen they went to.
let routed = 0;

async function route() {
  leaveAll();
  const mine = ++routed;
  if (!token.get()) return showSignIn();
  signIn.hidden = true;
  signOut.hidden = false;
  view.hidden = false;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const stage = document.createElement("div");
  try {
    if (parts[0] === "instances" && parts[1]) {
      await renderInstance(stage, parts[1], parts[2] || "overview");
    } else {
      await renderInstances(stage);
    }
  } catch (e) {
    if (mine !== routed) return;
    if (e.status === 401 || e.status === 403) {
      token.clear();
      return showSignIn(`Signed out: ${e.message}`);
    }
    stage.replaceChildren(h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, e.message));
  }
  if (mine === routed) view.replaceChildren(...stage.childNodes);
}

/** Products as `slug=upstream` lines, the create form's text. */
function parseProducts(text) {
  const products = {};
  for (const line of text.split(/\n|,/).map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`"${line}" is not slug=upstream`);
    products[line.slice(0, at).trim()] = { upstream: line.slice(at + 1).trim() };
  }
  return products;
}

async function renderInstances(view) {
  const { instances } = await api("GET", "/instances");
  document.title = "Instances · keybroker console";
  const [nameWrap, name] = field("Name", { required: true, maxlength: "200" });
  const [productsWrap, products] = field("Products", { tag: "textarea", rows: "2", placeholder: "search=https://search.internal.example" }, "One slug=upstream per line (optional).");
  const [ttlWrap, ttl] = field("Token lifetime (seconds)", { type: "number", min: "60", max: "86400", placeholder: "default" });
  const error = errorSlot();
  const created = h("div", { "aria-live": "polite" });
  const createButton = h("button", { type: "submit" }, "Create instance");
  const createForm = h("form", { class: "card stack", "aria-labelledby": "create-title" },
    h("h2", { id: "create-title" }, "New instance"), nameWrap, productsWrap, ttlWrap, createButton, error);
  createForm.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(createButton, error, async () => {
      const body = { name: name.value, products: parseProducts(products.value) };
      if (ttl.value) body.token_ttl_seconds = Number(ttl.value);
      const instance = await api("POST", "/instances", body);
      onceStore.set(`secret:${instance.id}`, instance.secret);
      location.hash = `#/instances/${enc(instance.id)}/overview`;
    });
  });
  const rows = instances.map((i) => h("tr", {},
    h("td", {}, h("a", { href: `#/instances/${enc(i.id)}/overview` }, i.name)),
    h("td", {}, h("code", {}, i.api_key), " ", copyButton(i.api_key)),
    h("td", {}, String(Object.keys(i.products || {}).length)),
    h("td", {}, time(i.created_at))));
  view.replaceChildren(
    h("h1", {}, "Instances"),
    instances.length ? table(["Name", "API key", "Products", "Created"], rows) : h("p", {}, "No instances yet."),
    created,
    createForm);
}

window.addEventListener("hashchange", route);
route();

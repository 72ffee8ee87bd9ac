// The admin console (/console, SPEC §11) in Debian's Chromium against a real
// broker on Redis: issue 12's browser cases. Screenshots of each screen at
// 1280×800 and 390×844 go to target/console-screenshots/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { chromium } from "playwright-core";

import { startWorld } from "./harness.mjs";

const root = new URL("../../", import.meta.url).pathname;
const shots = process.env.KEYBROKER_CONSOLE_SCREENSHOTS || `${process.env.CARGO_TARGET_DIR || `${root}target`}/console-screenshots`;
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
let world;
let browser;
// Tests 4 and 5 share one instance: 5 reads the usage and audit of what 4 did.
let shared;

before(async () => {
  world = await startWorld({ env: { KEYBROKER_DOMAIN_KEY_PROPAGATION_SECONDS: "5" } });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (world) await world.stop();
});

/** A fresh tab on the console, recording page errors, console errors and CSP violations. */
async function open(size = "desktop") {
  const context = await browser.newContext({ viewport: SIZES[size] });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: world.broker });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("dialog", (d) => d.accept());
  await context.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(`${world.broker}/console`);
  return { page, context, problems };
}

async function signIn(page, token = world.adminToken) {
  await page.getByLabel("Admin token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function shoot(page, name) {
  for (const [size, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: `${shots}/${name}-${size}.png`, fullPage: true });
  }
  await page.setViewportSize(SIZES.desktop);
}

test("1. sign in: a wrong token shows an error and no data; sign out clears sessionStorage", async () => {
  const { page, context, problems } = await open();
  await shoot(page, "sign-in");
  await signIn(page, "not-the-admin-token-but-long-enough-000");
  await page.getByRole("alert").filter({ hasText: "Sign-in failed" }).waitFor();
  assert.equal(await page.getByRole("heading", { name: "Instances" }).count(), 0);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await signIn(page);
  await page.getByRole("heading", { name: "Instances" }).waitFor();
  assert.equal(await page.evaluate(() => Object.keys(sessionStorage).length), 1);
  assert.equal(await page.evaluate(() => localStorage.length + document.cookie.length), 0);
  assert.ok(!page.url().includes(world.adminToken));
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.deepEqual(problems.filter((p) => !p.includes("401")), []);
  await context.close();
});

test("2. create an instance: API key and secret shown once, Copy works, a reload masks it", async () => {
  const { page, context } = await open();
  await signIn(page);
  await page.getByLabel("Name", { exact: true }).fill("Console shop");
  await page.getByLabel("Products").fill(`search=${world.upstream}/search`);
  await page.getByRole("button", { name: "Create instance" }).click();
  await page.getByRole("heading", { name: "Console shop" }).waitFor();
  const once = page.getByRole("group", { name: "Secret (shown once)" });
  await once.getByText("you will not see it again").waitFor();
  const secret = (await once.locator("code").textContent()).trim();
  assert.match(secret, /^kb_sk_/);
  await once.getByRole("button", { name: "Copy" }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  const { instances } = await world.admin("GET", "/instances");
  const created = instances.find((i) => i.name === "Console shop");
  assert.ok(created, "the instance exists through the admin API");
  await shoot(page, "overview");
  await page.reload();
  await page.getByRole("heading", { name: "Console shop" }).waitFor();
  assert.equal(await page.getByText(secret).count(), 0, "a reload shows no secret");
  await page.getByRole("link", { name: "Secrets" }).click();
  await page.getByRole("button", { name: "Add secret" }).waitFor();
  assert.equal(await page.getByText(secret).count(), 0, "the list shows only masks");
  assert.ok((await page.locator("tbody code").first().textContent()).includes("…"));
  await shoot(page, "secrets");
  await context.close();
});

test("3. a domain key with a 5 s delay counts down and turns active without a reload", async () => {
  const { page, context } = await open();
  const inst = await world.instance();
  await signIn(page);
  await page.goto(`${world.broker}/console#/instances/${inst.id}/domain-keys`);
  await page.getByLabel("Domains", { exact: true }).fill(world.allowedOrigin.replace("http://", ""));
  await page.getByRole("button", { name: "Add domain key" }).click();
  const value = (await page.getByRole("group", { name: "New domain key (shown once)" }).locator("code").textContent()).trim();
  await page.getByText(/pending, active in \d s/).waitFor();
  await shoot(page, "domain-keys");
  await page.getByText("active", { exact: true }).waitFor({ timeout: 10000 });
  const response = await fetch(`${world.broker}/v1/auth`, {
    method: "POST",
    headers: { "x-inbenta-key": inst.apiKey, origin: world.allowedOrigin, "content-type": "application/json" },
    body: JSON.stringify({ domain_key: value }),
  });
  assert.equal(response.status, 200);
  await context.close();
});

test("6. CSP: no violation or console error; a name with markup is text, never run", async () => {
  const { page, context, problems } = await open();
  await signIn(page);
  const evil = `<img src=x onerror="window.pwned=1">`;
  await page.getByLabel("Name", { exact: true }).fill(evil);
  await page.getByRole("button", { name: "Create instance" }).click();
  await page.getByRole("heading", { name: evil }).waitFor();
  await page.getByRole("link", { name: "Instances" }).first().click();
  await page.getByRole("link", { name: evil }).waitFor();
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.equal(await page.locator("img").count(), 0);
  for (const tab of ["Usage", "Audit log", "Experiences", "Sessions and tokens"]) {
    await page.getByRole("link", { name: evil }).click();
    await page.getByRole("link", { name: tab }).click();
    await page.getByRole("heading", { name: tab, level: 2 }).waitFor();
    await page.waitForTimeout(200);
    await shoot(page, tab.toLowerCase().replace(/ /g, "-"));
    await page.getByRole("link", { name: "Instances" }).first().click();
  }
  await shoot(page, "instances");
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(problems, []);
  await context.close();
});

/** A gateway call with an experience token; answers status, Deprecation and reason. */
async function withExperienceToken(slug, value) {
  const response = await fetch(`${world.broker}/prod/${slug}/v1/search?q=console`, { headers: { "x-access-token": value } });
  const body = await response.text();
  return { status: response.status, deprecation: response.headers.get("deprecation"), reason: reasonOf(body) };
}

function reasonOf(body) {
  try {
    return JSON.parse(body).error.reason;
  } catch {
    return null;
  }
}

test("4. experiences: create, Regenerate with 1 h grace (both work, the old one deprecated); Revoke a secret refuses its tokens", async () => {
  const { page, context, problems } = await open();
  const inst = await world.instance();
  await signIn(page);
  await page.goto(`${world.broker}/console#/instances/${inst.id}/experiences`);
  await page.getByLabel("Slug", { exact: true }).fill("help");
  await page.getByLabel("Kind", { exact: true }).selectOption("search");
  await page.getByLabel("Upstream", { exact: true }).fill(`${world.upstream}/help`);
  await page.getByRole("button", { name: "Create experience" }).click();
  const card = page.getByRole("article", { name: /^help/ });
  const firstOnce = card.getByRole("group", { name: "Experience token (shown once)" });
  const first = (await firstOnce.locator("code").textContent()).trim();
  assert.match(first, /^kb_xt_/);
  assert.ok((await card.locator("pre code").first().textContent()).includes(first), "the curl sample carries the token while it is shown");
  assert.deepEqual(await withExperienceToken("help", first), { status: 200, deprecation: null, reason: null });

  await card.getByLabel("Grace", { exact: true }).selectOption("3600");
  await card.getByRole("button", { name: "Regenerate" }).click();
  const secondOnce = page.getByRole("article", { name: /^help/ }).getByRole("group", { name: "Experience token (shown once)" });
  await secondOnce.locator("code").filter({ hasNotText: first }).waitFor();
  const second = (await secondOnce.locator("code").textContent()).trim();
  assert.match(second, /^kb_xt_/);
  assert.notEqual(second, first);
  await page.getByRole("article", { name: /^help/ }).getByText(/expiring until/).waitFor();
  assert.deepEqual(await withExperienceToken("help", second), { status: 200, deprecation: null, reason: null });
  const old = await withExperienceToken("help", first);
  assert.equal(old.status, 200, "the old token works during the grace");
  assert.equal(old.deprecation, "true");
  await shoot(page, "experiences-regenerated");

  // A server token minted with the instance's secret works until the
  // secret is revoked in the console.
  const auth = await fetch(`${world.broker}/v1/auth`, {
    method: "POST",
    headers: { "x-inbenta-key": inst.apiKey, "content-type": "application/json" },
    body: JSON.stringify({ secret: inst.secret }),
  });
  assert.equal(auth.status, 200);
  const { accessToken } = await auth.json();
  const product = () =>
    fetch(`${world.broker}/prod/search/v1/search?q=console`, { headers: { "x-inbenta-key": inst.apiKey, authorization: `Bearer ${accessToken}` } });
  assert.equal((await product()).status, 200);
  await page.getByRole("link", { name: "Secrets" }).click();
  const row = page.getByRole("row").filter({ hasText: "active" });
  await row.getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("row").filter({ hasText: "revoked" }).waitFor();
  const refused = await product();
  assert.equal(refused.status, 401);
  assert.equal(reasonOf(await refused.text()), "token_revoked");
  const again = await fetch(`${world.broker}/v1/auth`, {
    method: "POST",
    headers: { "x-inbenta-key": inst.apiKey, "content-type": "application/json" },
    body: JSON.stringify({ secret: inst.secret }),
  });
  assert.equal(again.status, 401);
  assert.equal(reasonOf(await again.text()), "invalid_credentials");
  assert.deepEqual(problems, []);
  shared = { inst, token: second };
  await context.close();
});

test("5. usage: traffic shows as non-zero points of its minute; the audit log lists the actions newest first", async () => {
  assert.ok(shared, "test 4 ran");
  const { inst, token } = shared;
  const minuteOf = (ms) => Math.floor(ms / 60000) * 60;
  const minutes = new Set([minuteOf(Date.now())]);
  const calls = 5;
  for (let i = 0; i < calls; i++) assert.equal((await withExperienceToken("help", token)).status, 200);
  minutes.add(minuteOf(Date.now()));
  // The broker flushes its counters once a second.
  await new Promise((r) => setTimeout(r, 1500));
  const { page, context, problems } = await open();
  await signIn(page);
  await page.goto(`${world.broker}/console#/instances/${inst.id}/usage`);
  await page.getByRole("heading", { name: "Usage", level: 2 }).waitFor();
  const chart = page.locator("svg.chart-svg");
  await chart.waitFor();
  assert.equal(await chart.getAttribute("data-step"), "60");
  const dots = await page.locator('svg.chart-svg circle[data-series="requests"]').evaluateAll((nodes) =>
    nodes.map((n) => ({ t: Number(n.dataset.t), value: Number(n.dataset.value) })));
  const inMinute = dots.filter((d) => minutes.has(d.t));
  assert.ok(inMinute.length > 0, `a requests point in the traffic's minute: ${JSON.stringify(dots)}`);
  // Test 4's calls fall in the same window; at least this test's are counted.
  assert.ok(inMinute.reduce((a, d) => a + d.value, 0) >= calls, JSON.stringify(inMinute));
  await shoot(page, "usage-traffic");

  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByRole("heading", { name: "Audit log", level: 2 }).waitFor();
  await page.getByRole("table").waitFor();
  const actions = await page.locator("tbody tr td:nth-child(2)").allTextContents();
  const admin = actions.filter((a) => !a.startsWith("auth."));
  assert.deepEqual(admin, ["secret.revoke", "experience.regenerate_token", "experience.create", "instance.create"], JSON.stringify(actions));
  await shoot(page, "audit-actions");
  assert.deepEqual(problems, []);
  await context.close();
});

/** axe-core's source, injected as @axe-core/playwright does (see the test). */
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

async function axe(page, screen) {
  await page.evaluate(axeSource);
  const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${screen}: ${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
}

/** Looks that broke before: a page wider than the window (a phone scrolling
 * sideways), and a stray "null"/"undefined" written as text. */
async function layout(page, screen, noStrayText) {
  const found = [];
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  if (scroll > inner) found.push(`${screen}: the page is ${scroll} px wide in a ${inner} px window`);
  const text = await page.locator("#view").innerText();
  if (noStrayText && /\b(null|undefined)\b/.test(text)) found.push(`${screen}: "null" or "undefined" shown as text`);
  return found;
}

test("accessibility and layout: axe-core finds no serious or critical violation on any screen, at either size; no screen overflows a phone", async () => {
  const { page, context, problems } = await open();
  // An inline <script> (what addScriptTag({content}) inserts) is refused by
  // the console's CSP, so axe goes in through the DevTools protocol instead
  // (page.evaluate of its source, as @axe-core/playwright does), which no
  // page policy governs: the CSP stays on.
  await page.addScriptTag({ content: "window.inlineRan = true;" }).catch(() => {});
  assert.equal(await page.evaluate(() => window.inlineRan), undefined, "the CSP refuses inline scripts");
  assert.equal((await page.evaluate(() => window.cspViolations)).length, 1);
  await page.evaluate(() => (window.cspViolations = []));
  problems.length = 0;

  const inst = await world.instance();
  await world.admin("POST", `/instances/${inst.id}/experiences`, { slug: "help", kind: "search", upstream: `${world.upstream}/help` });
  await world.domainKey(inst.id);
  const found = [];
  for (const [size, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.goto(`${world.broker}/console`);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    found.push(...(await axe(page, `sign-in ${size}`)));
    await signIn(page);
    await page.getByRole("heading", { name: "Instances" }).waitFor();
    found.push(...(await axe(page, `instances ${size}`)));
    found.push(...(await layout(page, `instances ${size}`, true)));
    for (const tab of ["overview", "secrets", "domain-keys", "experiences", "sessions", "usage", "audit"]) {
      await page.goto(`${world.broker}/console#/instances/${inst.id}/${tab}`);
      await page.locator("nav.tabs a[aria-current=page]").waitFor();
      await page.waitForLoadState("networkidle");
      found.push(...(await axe(page, `${tab} ${size}`)));
      found.push(...(await layout(page, `${tab} ${size}`, tab !== "audit")));
    }
    await page.getByRole("button", { name: "Sign out" }).click();
  }
  assert.deepEqual(found, []);
  assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  assert.deepEqual(problems, []);
  await context.close();
});

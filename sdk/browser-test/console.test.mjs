// The admin console (/console, SPEC §11) in Debian's Chromium against a real
// broker on Redis: issue 12's browser cases. Screenshots of each screen at
// 1280×800 and 390×844 go to target/console-screenshots/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

import { chromium } from "playwright-core";

import { startWorld } from "./harness.mjs";

const root = new URL("../../", import.meta.url).pathname;
const shots = process.env.KEYBROKER_CONSOLE_SCREENSHOTS || `${process.env.CARGO_TARGET_DIR || `${root}target`}/console-screenshots`;
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
let world;
let browser;

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

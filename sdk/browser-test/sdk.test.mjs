// The SDK in Debian's Chromium against a real broker on Redis (issue 11's
// browser cases 1–7), plus Node's `secret` mode and the `experienceToken`
// mode. The page is served from one origin and imports the SDK from the
// broker on another, so every call is real CORS.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { chromium } from "playwright-core";

import { startDemo, startWorld, upstreamLog } from "./harness.mjs";

const shots = process.env.KEYBROKER_SDK_SCREENSHOTS || new URL("./screenshots/", import.meta.url).pathname;
let world;
let browser;

before(async () => {
  world = await startWorld();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // Root in CI has no user namespace for Chromium's sandbox.
    args: ["--no-sandbox"],
  });
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (world) await world.stop();
});

/**
 * A page on `origin` that has imported the SDK from the broker and connected
 * with `options` (functions written as strings). Events land in
 * `window.events`, with `performance.now()` times; the KeyBroker in `window.kb`.
 */
async function openPage(origin, options, { context, initScript } = {}) {
  const ctx = context || (await browser.newContext());
  if (initScript) await ctx.addInitScript(initScript);
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(`${origin}/`);
  const outcome = await page.evaluate(
    async ({ broker, options }) => {
      window.events = [];
      window.productCalls = 0;
      const realFetch = window.fetch.bind(window);
      window.fetch = (url, init) => {
        if (String(url).includes("/prod/")) window.productCalls += 1;
        return realFetch(url, init);
      };
      const { KeyBroker, KeyBrokerError } = await import(`${broker}/sdk/keybroker.js`);
      window.KeyBrokerError = KeyBrokerError;
      try {
        window.kb = await KeyBroker.connect({ baseUrl: broker, ...options });
      } catch (error) {
        return { error: { name: error.name, status: error.status, reason: error.reason, typed: error instanceof KeyBrokerError } };
      }
      for (const type of ["token", "refresh", "refresherror", "expired", "revoked"]) {
        window.kb.addEventListener(type, (event) =>
          window.events.push({ type, at: performance.now(), token: event.detail && event.detail.accessToken }),
        );
      }
      window.connectedAt = performance.now();
      return { apis: window.kb.apis, token: await window.kb.accessToken() };
    },
    { broker: world.broker, options },
  );
  return { page, context: ctx, outcome, errors };
}

function call(page, product, path, init = {}) {
  return page.evaluate(
    async ({ product, path, init }) => {
      try {
        const response = await window.kb.fetch(product, path, init);
        return { status: response.status, body: await response.text() };
      } catch (error) {
        return { error: { name: error.name, status: error.status, reason: error.reason } };
      }
    },
    { product, path, init },
  );
}

function events(page, type) {
  return page.evaluate((type) => window.events.filter((e) => type === undefined || e.type === type), type);
}

test("1. a domain key connects across origins, a product answers, apis are read", async () => {
  const instance = await world.instance();
  const key = await world.domainKey(instance.id);
  const { page, context, outcome, errors } = await openPage(world.allowedOrigin, {
    apiKey: instance.apiKey,
    domainKey: key.value,
  });
  assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
  assert.deepEqual(Object.keys(outcome.apis).sort(), ["limited", "search"]);
  assert.equal(outcome.apis.search, `${world.broker}/prod/search`);
  const answer = await call(page, "search", "/v1/search?q=hello");
  assert.equal(answer.status, 200, answer.body);
  assert.equal(JSON.parse(answer.body).path, "/search/v1/search");
  assert.deepEqual(errors, []);

  // The SRI hash holds: a page pinning another hash cannot import the SDK.
  const tampered = await context.newPage();
  await tampered.goto(`${world.allowedOrigin}/tampered`);
  const imported = await tampered.evaluate((broker) => import(`${broker}/sdk/keybroker.js`).then(() => "imported", (e) => e.name), world.broker);
  assert.equal(imported, "TypeError");
  await context.close();
});

// Date shifted three hours ahead in the page only: timers are not, so the
// SDK must work in broker time to refresh on time.
const SHIFT_DATE = `(() => {
  const shift = 3 * 3600 * 1000;
  const RealDate = Date;
  class ShiftedDate extends RealDate {
    constructor(...args) { if (args.length === 0) super(RealDate.now() + shift); else super(...args); }
    static now() { return RealDate.now() + shift; }
  }
  globalThis.Date = ShiftedDate;
})();`;

test("2–3. one refresh ~10 s after connect (ttl 60, lead 50), also with the page's clock 3 h ahead", async () => {
  const instance = await world.instance(60);
  const runs = await Promise.all(
    [undefined, SHIFT_DATE].map(async (initScript) => {
      const key = await world.domainKey(instance.id);
      const opened = await openPage(
        world.allowedOrigin,
        { apiKey: instance.apiKey, domainKey: key.value, refreshBeforeSeconds: 50 },
        { initScript },
      );
      assert.equal(opened.outcome.error, undefined, JSON.stringify(opened.outcome.error));
      return opened;
    }),
  );
  const before = await Promise.all(runs.map(({ page }) => call(page, "search", "/v1/search?q=before")));
  await sleep(13000);
  const afterwards = await Promise.all(runs.map(({ page }) => call(page, "search", "/v1/search?q=after")));
  for (const [index, { page, context }] of runs.entries()) {
    const label = index === 0 ? "true clock" : "clock +3 h";
    assert.equal(before[index].status, 200, label);
    assert.equal(afterwards[index].status, 200, label);
    const connectedAt = await page.evaluate(() => window.connectedAt);
    const refreshes = await events(page, "refresh");
    assert.equal(refreshes.length, 1, `${label}: exactly one refresh`);
    const after = (refreshes[0].at - connectedAt) / 1000;
    assert.ok(after > 8.5 && after < 11.5, `${label}: refreshed ${after.toFixed(1)} s after connect`);
    assert.equal(await page.evaluate(() => window.kb.accessToken()), refreshes[0].token);
    await context.close();
  }
});

test("4. two tabs of one origin: one refresh in all, both end with the same token", async () => {
  const instance = await world.instance(60);
  const key = await world.domainKey(instance.id);
  const context = await browser.newContext();
  const options = { apiKey: instance.apiKey, domainKey: key.value, refreshBeforeSeconds: 50 };
  const before = await world.refreshCount();
  const first = await openPage(world.allowedOrigin, options, { context });
  await sleep(500);
  const second = await openPage(world.allowedOrigin, options, { context });
  assert.equal(first.outcome.error, undefined);
  assert.equal(second.outcome.error, undefined);
  await sleep(12500);
  const refreshed = (await world.refreshCount()) - before;
  assert.equal(refreshed, 1, "the broker minted one refresh for both tabs");
  const tokens = await Promise.all([first.page, second.page].map((p) => p.evaluate(() => window.kb.accessToken())));
  assert.equal(tokens[0], tokens[1]);
  assert.notEqual(tokens[0], first.outcome.token);
  const peer = await events(second.page, "token");
  assert.ok(peer.some((e) => e.token === tokens[0]), "the other tab got it over the BroadcastChannel");
  for (const { page } of [first, second]) {
    assert.equal((await call(page, "search", "/v1/search?q=tabs")).status, 200);
  }
  await context.close();
});

test("5. a revoked domain key: refresherror and the notice, default or custom labels", async () => {
  const instance = await world.instance(60);
  const keys = [await world.domainKey(instance.id), await world.domainKey(instance.id)];
  // A key that stays active keeps the origin in the preflight index, so the
  // refusal is readable (not a CORS failure).
  await world.domainKey(instance.id);
  const custom = { REFRESH_TITLE: "Session over", REFRESH_INVALID_ACCESS_TOKEN: "Please reload", REFRESH_BUTTON: "Reload now" };
  const pages = await Promise.all(
    keys.map((key, index) =>
      openPage(world.allowedOrigin, {
        apiKey: instance.apiKey,
        domainKey: key.value,
        refreshBeforeSeconds: 56,
        ...(index === 1 ? { labels: custom } : {}),
      }),
    ),
  );
  for (const key of keys) await world.admin("DELETE", `/instances/${instance.id}/domain-keys/${key.id}`);
  const expected = [
    ["Oooops...!", "Something went wrong. Please, refresh the page", "Refresh"],
    ["Session over", "Please reload", "Reload now"],
  ];
  for (const [index, { page, context }] of pages.entries()) {
    const notice = page.getByRole("alertdialog");
    await notice.waitFor({ timeout: 15000 });
    const [title, text, button] = expected[index];
    assert.equal(await page.getByRole("alertdialog", { name: title }).count(), 1);
    assert.ok((await notice.textContent()).includes(text));
    const reload = page.getByRole("button", { name: button });
    assert.equal(await reload.count(), 1);
    assert.ok(await reload.evaluate((el) => el === document.activeElement), "the button has the focus");
    assert.equal((await events(page, "refresherror")).length, 1);
    const error = await page.evaluate(() =>
      window.kb.accessToken().then(
        () => null,
        (e) => ({ status: e.status, reason: e.reason, typed: e instanceof window.KeyBrokerError }),
      ),
    );
    assert.ok(error && error.typed && error.status >= 400, JSON.stringify(error));
    await page.screenshot({ path: `${shots}/notice-${index === 0 ? "default" : "custom"}.png` });
    // The button reloads the page.
    await Promise.all([page.waitForEvent("load"), reload.click()]);
    assert.equal(await page.getByRole("alertdialog").count(), 0);
    await context.close();
  }
});

test("6. a product's 429 with a short Retry-After is retried; token_revoked emits revoked, not retried", async () => {
  const instance = await world.instance();
  const key = await world.domainKey(instance.id);
  const { page, context, outcome } = await openPage(world.allowedOrigin, { apiKey: instance.apiKey, domainKey: key.value });
  assert.equal(outcome.error, undefined);
  const started = Date.now();
  const answer = await call(page, "limited", "/v1/search?key=six");
  assert.equal(answer.status, 200, answer.body);
  assert.ok(Date.now() - started >= 1000, "waited for Retry-After");
  assert.equal(upstreamLog.filter((e) => e.query === "?key=six").length, 2);
  assert.equal(await page.evaluate(() => window.productCalls), 2);

  const sid = JSON.parse(Buffer.from(outcome.token.split(".")[1], "base64url")).sid;
  await world.admin("POST", `/instances/${instance.id}/revoke-tokens`, { sid });
  const callsBefore = await page.evaluate(() => window.productCalls);
  const refused = await call(page, "search", "/v1/search?q=revoked");
  assert.equal(refused.status, 401);
  assert.equal(JSON.parse(refused.body).error.reason, "token_revoked");
  assert.equal((await events(page, "revoked")).length, 1);
  assert.equal(await page.evaluate(() => window.productCalls), callsBefore + 1, "not retried");
  await context.close();
});

test("7. a page on an origin the key does not allow gets a KeyBrokerError and no token", async () => {
  const instance = await world.instance();
  const key = await world.domainKey(instance.id);
  const { page, context, outcome } = await openPage(world.otherOrigin, { apiKey: instance.apiKey, domainKey: key.value });
  assert.ok(outcome.error, "connect was refused");
  assert.equal(outcome.error.typed, true);
  assert.equal(outcome.error.name, "KeyBrokerError");
  assert.ok(outcome.error.status === 0 || outcome.error.status === 403, JSON.stringify(outcome.error));
  assert.equal(await page.evaluate(() => window.kb), undefined);
  await context.close();
});

test("experienceToken mode: its experience answers on an allowed origin, not on another", async () => {
  const instance = await world.instance();
  const experience = await world.admin("POST", `/instances/${instance.id}/experiences`, {
    slug: "help",
    kind: "search",
    upstream: `${world.upstream}/help`,
    allowed_origins: [world.allowedOrigin],
  });
  const options = { experienceToken: experience.token.value, experience: "help" };
  const allowed = await openPage(world.allowedOrigin, options);
  assert.equal(allowed.outcome.error, undefined);
  const answer = await call(allowed.page, "help", "/search?q=exp");
  assert.equal(answer.status, 200, answer.body);
  assert.equal(JSON.parse(answer.body).path, "/help/search");
  await allowed.context.close();

  const other = await openPage(world.otherOrigin, options);
  const refused = await call(other.page, "help", "/search?q=exp");
  assert.ok(
    (refused.error && refused.error.name === "KeyBrokerError") || refused.status === 403,
    JSON.stringify(refused),
  );
  await other.context.close();
});

test("Node: secret mode connects, calls a product, and refreshes", async () => {
  const { KeyBroker } = await import("../keybroker.js");
  const instance = await world.instance(60);
  const kb = await KeyBroker.connect({
    baseUrl: world.broker,
    apiKey: instance.apiKey,
    secret: instance.secret,
    refreshBeforeSeconds: 58,
  });
  const refreshed = new Promise((resolve) => kb.addEventListener("refresh", (e) => resolve(e.detail), { once: true }));
  const first = await kb.fetch("search", "/v1/search?q=node");
  assert.equal(first.status, 200);
  const detail = await Promise.race([refreshed, sleep(6000).then(() => null)]);
  assert.ok(detail, "refreshed about 2 s after connect");
  assert.equal(await kb.accessToken(), detail.accessToken);
  assert.equal((await kb.fetch("search", "/v1/search?q=node2")).status, 200);
  await kb.logout();
});

test("the --demo page on http://localhost:3000 searches through the gateway and shows a refresh", async () => {
  const demo = await startDemo();
  try {
    assert.ok(demo.banner().includes("http://localhost:3000"), "the banner prints the page's URL");
    const context = await browser.newContext();
    const page = await context.newPage();
    // A lead of 1197 s on the demo's 1200 s tokens: a refresh within seconds.
    await page.goto("http://localhost:3000/?refreshBefore=1197");
    await page.getByText("connected").waitFor({ timeout: 10000 });
    await page.getByRole("searchbox", { name: "Query" }).fill("sdk demo");
    await page.getByRole("button", { name: "Search" }).click();
    const answer = page.getByLabel("Answer");
    await answer.getByText('"echo": true').waitFor({ timeout: 10000 });
    assert.ok((await answer.textContent()).includes('"query": "q=sdk%20demo"'));
    await page.locator("#events").getByText("refresh (refresh)").waitFor({ timeout: 10000 });
    const remaining = Number(await page.getByRole("timer").textContent());
    assert.ok(remaining > 1100 && remaining <= 1200, `countdown shows ${remaining}`);
    await page.screenshot({ path: `${shots}/demo.png`, fullPage: true });
    await context.close();
  } finally {
    await demo.stop();
  }
});

// kb.fetch: replay once on an expired token, wait for a renewal under way,
// retry 429/503 for idempotent methods only, never retry token_revoked; and
// the no-storage rule.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { KeyBroker, KeyBrokerError, isIdempotent, shouldRenewAndReplay, shouldRetry } from "../keybroker.js";
import { errorBody, fakeBroker, fakeClock, json, settle } from "./fakes.mjs";

const START = Date.UTC(2030, 0, 1, 12, 0, 0);

async function connect(product, extra = {}) {
  const clock = fakeClock(START);
  const broker = fakeBroker({ serverNow: () => clock.now(), product });
  const kb = await KeyBroker.connect({
    baseUrl: "https://broker.test",
    apiKey: "kb_pk_test",
    secret: "kb_sk_test",
    clock,
    fetch: broker.fetch,
    ...extra,
  });
  return { clock, broker, kb };
}

const productCalls = (broker) => broker.calls.filter((c) => c.path.startsWith("/prod/"));

test("the rules: which answers renew, which retry", () => {
  assert.ok(shouldRenewAndReplay(401, "token_expired", false));
  assert.ok(shouldRenewAndReplay(401, "invalid_token", false));
  assert.ok(!shouldRenewAndReplay(401, "token_expired", true), "once only");
  assert.ok(!shouldRenewAndReplay(401, "token_revoked", false));
  assert.ok(!shouldRenewAndReplay(403, "product_not_allowed", false));
  assert.ok(shouldRetry(429, "GET", 0, false));
  assert.ok(shouldRetry(503, "put", 2, false));
  assert.ok(!shouldRetry(429, "GET", 3, false), "at most 3 retries");
  assert.ok(!shouldRetry(429, "POST", 0, false));
  assert.ok(shouldRetry(429, "POST", 0, true), "unless the caller opts in");
  assert.ok(!shouldRetry(500, "GET", 0, false));
  assert.ok(isIdempotent(undefined) && isIdempotent("delete") && !isIdempotent("PATCH"));
});

test("a call sends the API key and the token to the product's URL", async () => {
  const { broker, kb } = await connect();
  const response = await kb.fetch("search", "/v1/search?q=hi");
  assert.equal(response.status, 200);
  const [call] = productCalls(broker);
  assert.equal(call.path, "/prod/search/v1/search");
  assert.equal(call.headers.get("x-inbenta-key"), "kb_pk_test");
  assert.equal(call.headers.get("authorization"), "Bearer token-1");
  assert.deepEqual(kb.apis, { search: "https://broker.test/prod/search" });
  kb.close();
});

test("401 token_expired: one renewal, one replay with the new token", async () => {
  const product = (call) =>
    call.headers.get("authorization") === "Bearer token-1" ? errorBody(401, "token_expired") : json(200, { ok: 1 });
  const { broker, kb } = await connect(product);
  const response = await kb.fetch("search", "/v1/search", { method: "POST", body: "{}" });
  assert.equal(response.status, 200);
  assert.deepEqual(
    productCalls(broker).map((c) => c.headers.get("authorization")),
    ["Bearer token-1", "Bearer token-2"],
  );
  kb.close();
});

test("a second 401 is handed back, not replayed again", async () => {
  const { broker, kb } = await connect(() => errorBody(401, "invalid_token"));
  const response = await kb.fetch("search", "/v1/search");
  assert.equal(response.status, 401);
  assert.equal(productCalls(broker).length, 2);
  assert.equal(broker.count("/v1/refreshToken") + broker.count("/v1/auth"), 2, "one renewal");
  kb.close();
});

test("401 token_revoked emits revoked and is not retried", async () => {
  const { broker, kb } = await connect(() => errorBody(401, "token_revoked"));
  const revoked = [];
  kb.addEventListener("revoked", (event) => revoked.push(event.detail.reason));
  const response = await kb.fetch("search", "/v1/search");
  assert.equal(response.status, 401);
  assert.deepEqual(revoked, ["token_revoked"]);
  assert.equal(productCalls(broker).length, 1);
  kb.close();
});

test("calls made during a renewal wait for it and use the new token", async () => {
  const { clock, broker, kb } = await connect();
  let release;
  const gate = new Promise((resolve) => {
    release = resolve;
  });
  // The same broker, with the refresh held until the test lets it go.
  const slowFetch = async (url, init) => {
    if (new URL(url).pathname === "/v1/refreshToken") await gate;
    return broker.fetch(url, init);
  };
  kb.close();
  const kb2 = await KeyBroker.connect({
    baseUrl: "https://broker.test",
    apiKey: "kb_pk_test",
    secret: "kb_sk_test",
    clock,
    fetch: slowFetch,
  });
  await clock.advance(1080 * 1000); // the refresh starts and hangs
  const pending = kb2.fetch("search", "/v1/search");
  await settle();
  assert.equal(productCalls(broker).length, 0, "the call waits for the renewal");
  release();
  const response = await pending;
  assert.equal(response.status, 200);
  assert.equal(productCalls(broker)[0].headers.get("authorization"), "Bearer token-3");
  kb2.close();
});

test("429 with Retry-After is retried after it, then succeeds", async () => {
  let n = 0;
  const product = () => {
    n += 1;
    return n === 1 ? errorBody(429, "rate_limited", { "retry-after": "2" }) : json(200, { ok: 1 });
  };
  const { clock, broker, kb } = await connect(product);
  const pending = kb.fetch("search", "/v1/search");
  await settle();
  assert.equal(productCalls(broker).length, 1);
  await clock.advance(1999);
  assert.equal(productCalls(broker).length, 1, "not before Retry-After");
  await clock.advance(500);
  assert.equal((await pending).status, 200);
  assert.equal(productCalls(broker).length, 2);
  kb.close();
});

test("503 is retried at most 3 times, then handed back", async () => {
  const { clock, broker, kb } = await connect(() => errorBody(503, "store_unavailable"));
  const pending = kb.fetch("search", "/v1/search");
  await clock.advance(60 * 1000);
  assert.equal((await pending).status, 503);
  assert.equal(productCalls(broker).length, 4);
  kb.close();
});

test("POST is not retried after 429 unless the caller opts in", async () => {
  const { clock, broker, kb } = await connect(() => errorBody(429, "rate_limited", { "retry-after": "1" }));
  assert.equal((await kb.fetch("search", "/v1/x", { method: "POST", body: "{}" })).status, 429);
  assert.equal(productCalls(broker).length, 1);
  const pending = kb.fetch("search", "/v1/x", { method: "POST", body: "{}", retry: true });
  await clock.advance(60 * 1000);
  assert.equal((await pending).status, 429);
  assert.equal(productCalls(broker).length, 5);
  kb.close();
});

test("a failed renewal is a KeyBrokerError with status and reason; refresherror fires", async () => {
  const { clock, broker, kb } = await connect(undefined, { onRefreshError: (e) => seen.push(e) });
  const seen = [];
  const events = [];
  kb.addEventListener("refresherror", (event) => events.push(event.detail.error));
  broker.refuse = (call) => (call.path.startsWith("/v1/") ? errorBody(401, "credential_revoked") : null);
  await clock.advance(1080 * 1000);
  assert.equal(events.length, 1);
  assert.equal(seen.length, 1);
  await assert.rejects(kb.accessToken(), (error) => {
    assert.ok(error instanceof KeyBrokerError);
    assert.equal(error.status, 401);
    assert.equal(error.reason, "credential_revoked");
    return true;
  });
  kb.close();
});

test("connect refuses a secret in a browser-like global, and options without one credential", async () => {
  await assert.rejects(KeyBroker.connect({ baseUrl: "https://b.test", apiKey: "k" }), TypeError);
  await assert.rejects(
    KeyBroker.connect({ baseUrl: "https://b.test", apiKey: "k", secret: "s", domainKey: "d" }),
    TypeError,
  );
  globalThis.window = {};
  globalThis.document = {};
  try {
    await assert.rejects(KeyBroker.connect({ baseUrl: "https://b.test", apiKey: "k", secret: "s" }), /servers only/);
  } finally {
    delete globalThis.window;
    delete globalThis.document;
  }
});

test("experienceToken mode: no exchange, the token goes in X-Access-Token", async () => {
  const broker = fakeBroker({ serverNow: () => START });
  const kb = await KeyBroker.connect({
    baseUrl: "https://broker.test",
    experienceToken: "kb_xt_test",
    experience: "search",
    fetch: broker.fetch,
  });
  assert.deepEqual(kb.apis, { search: "https://broker.test/prod/search" });
  await kb.fetch("search", "/v1/search?q=x");
  assert.equal(broker.calls.length, 1);
  assert.equal(broker.calls[0].headers.get("x-access-token"), "kb_xt_test");
  assert.equal(broker.calls[0].headers.get("authorization"), null);
  kb.close();
});

test("getAccessToken mode: the customer's function is asked again to renew", async () => {
  const clock = fakeClock(START);
  const broker = fakeBroker({ serverNow: () => clock.now() });
  let asked = 0;
  const kb = await KeyBroker.connect({
    baseUrl: "https://broker.test",
    apiKey: "kb_pk_test",
    getAccessToken: async () => {
      asked += 1;
      return { accessToken: `own-${asked}`, expiration: Math.floor(clock.now() / 1000) + 300, apis: { search: "x" } };
    },
    clock,
    fetch: broker.fetch,
  });
  assert.equal(await kb.accessToken(), "own-1");
  await clock.advance(180 * 1000);
  assert.equal(await kb.accessToken(), "own-2");
  assert.equal(broker.calls.length, 0);
  kb.close();
});

test("no credential or token is ever written to Web Storage or cookies", async () => {
  const touched = [];
  const trap = (name) =>
    new Proxy(
      {},
      {
        get(_, key) {
          touched.push(`${name}.${String(key)}`);
          return () => {};
        },
        set(_, key) {
          touched.push(`${name}.${String(key)}=`);
          return true;
        },
      },
    );
  globalThis.localStorage = trap("localStorage");
  globalThis.sessionStorage = trap("sessionStorage");
  globalThis.indexedDB = trap("indexedDB");
  try {
    const { clock, kb } = await connect(() => errorBody(401, "token_expired"));
    await kb.fetch("search", "/v1/search");
    await clock.advance(2000 * 1000);
    await kb.logout();
  } finally {
    delete globalThis.localStorage;
    delete globalThis.sessionStorage;
    delete globalThis.indexedDB;
  }
  assert.deepEqual(touched, []);
  // And no code path names them (comments aside).
  const code = readFileSync(new URL("../keybroker.js", import.meta.url), "utf8")
    .split("\n")
    .filter((line) => !line.trim().startsWith("//") && !line.trim().startsWith("*"))
    .join("\n");
  for (const name of ["localStorage", "sessionStorage", "indexedDB", "document.cookie"]) {
    assert.ok(!code.includes(name), `keybroker.js uses ${name}`);
  }
});

test("logout revokes the token and closes the instance", async () => {
  const { broker, kb } = await connect();
  await kb.logout();
  const [revoke] = broker.calls.filter((c) => c.path === "/v1/revoke");
  assert.equal(revoke.headers.get("authorization"), "Bearer token-1");
  await assert.rejects(kb.accessToken(), (error) => error.reason === "closed");
});

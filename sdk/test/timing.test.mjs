// Timing rules without a browser: refresh time, clock skew, sleep, Retry-After
// and backoff. Time is a fake clock; the broker is a fake `fetch`.
import { test } from "node:test";
import assert from "node:assert/strict";

import { KeyBroker, parseRetryAfter, refreshDelay, retryDelay } from "../keybroker.js";
import { fakeBroker, fakeClock } from "./fakes.mjs";

const SERVER_START = Date.UTC(2030, 0, 1, 12, 0, 0);
const HOURS = 3600 * 1000;

test("refresh is due refreshBeforeSeconds before expiration, in server time", () => {
  const serverTime = SERVER_START / 1000;
  const common = { expiration: serverTime + 1200, serverTime, refreshBeforeSeconds: 120 };
  assert.equal(refreshDelay({ ...common, offsetMs: 0, nowMs: SERVER_START }), 1080 * 1000);
  // A local clock three hours ahead: the offset cancels it out.
  assert.equal(refreshDelay({ ...common, offsetMs: -3 * HOURS, nowMs: SERVER_START + 3 * HOURS }), 1080 * 1000);
  // Three hours behind, half-way through the lifetime.
  assert.equal(
    refreshDelay({ ...common, offsetMs: 3 * HOURS, nowMs: SERVER_START - 3 * HOURS + 600 * 1000 }),
    480 * 1000,
  );
  // Already past the refresh time: now.
  assert.equal(refreshDelay({ ...common, offsetMs: 0, nowMs: SERVER_START + 1199 * 1000 }), 0);
});

test("a lead longer than the lifetime refreshes half-way instead of in a loop", () => {
  const serverTime = SERVER_START / 1000;
  const delay = refreshDelay({
    expiration: serverTime + 60,
    serverTime,
    offsetMs: 0,
    nowMs: SERVER_START,
    refreshBeforeSeconds: 120,
  });
  assert.equal(delay, 30 * 1000);
});

for (const skew of [0, 3 * HOURS, -3 * HOURS]) {
  test(`with the local clock off by ${skew / HOURS} h, exactly one refresh, on time`, async () => {
    const clock = fakeClock(SERVER_START + skew);
    const broker = fakeBroker({ serverNow: () => clock.now() - skew, ttl: 60 });
    const kb = await KeyBroker.connect({
      baseUrl: "https://broker.test",
      apiKey: "kb_pk_test",
      secret: "kb_sk_test",
      refreshBeforeSeconds: 50,
      clock,
      fetch: broker.fetch,
    });
    const refreshes = [];
    kb.addEventListener("refresh", (event) => refreshes.push([clock.now() - skew, event.detail]));
    assert.equal(broker.count("/v1/auth"), 1);
    await clock.advance(9999);
    assert.equal(refreshes.length, 0, "not before 10 s");
    await clock.advance(1);
    assert.equal(refreshes.length, 1, "at 10 s");
    assert.equal(refreshes[0][0], SERVER_START + 10000);
    assert.equal(refreshes[0][1].accessToken, "token-2");
    assert.equal(await kb.accessToken(), "token-2");
    await clock.advance(9999);
    assert.equal(refreshes.length, 1, "the next one is 10 s after the first");
    assert.equal(broker.count("/v1/auth"), 1, "refresh, not a new exchange");
    kb.close();
  });
}

test("a token that expired during sleep is replaced through the credential, not refreshed", async () => {
  const clock = fakeClock(SERVER_START);
  const broker = fakeBroker({ serverNow: () => clock.now(), ttl: 1200 });
  const kb = await KeyBroker.connect({
    baseUrl: "https://broker.test",
    apiKey: "kb_pk_test",
    secret: "kb_sk_test",
    clock,
    fetch: broker.fetch,
  });
  const expired = [];
  kb.addEventListener("expired", (event) => expired.push(event.detail));
  clock.jump(2 * HOURS); // the timer never fired
  assert.equal(await kb.accessToken(), "token-2");
  assert.equal(expired.length, 1);
  assert.equal(broker.count("/v1/refreshToken"), 0);
  assert.equal(broker.count("/v1/auth"), 2);
  kb.close();
});

test("accessToken() renews a token with less than 5 s left", async () => {
  const clock = fakeClock(SERVER_START);
  const broker = fakeBroker({ serverNow: () => clock.now(), ttl: 1200 });
  const kb = await KeyBroker.connect({
    baseUrl: "https://broker.test",
    apiKey: "kb_pk_test",
    secret: "kb_sk_test",
    clock,
    fetch: broker.fetch,
  });
  kb.close();
  const kb2 = await KeyBroker.connect({
    baseUrl: "https://broker.test",
    apiKey: "kb_pk_test",
    secret: "kb_sk_test",
    refreshBeforeSeconds: 0,
    clock,
    fetch: broker.fetch,
  });
  clock.jump(1196 * 1000);
  assert.equal(await kb2.accessToken(), "token-3");
  assert.equal(broker.count("/v1/refreshToken"), 1);
  kb2.close();
});

test("Retry-After: delay-seconds, an HTTP date, nonsense", () => {
  const now = Date.parse("Wed, 01 Jan 2031 00:00:00 GMT");
  assert.equal(parseRetryAfter("5", now), 5000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("Wed, 01 Jan 2031 00:00:07 GMT", now), 7000);
  assert.equal(parseRetryAfter("Tue, 31 Dec 2030 23:00:00 GMT", now), 0, "a past date is now");
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter("-3", now), null);
  assert.equal(parseRetryAfter("", now), null);
  assert.equal(parseRetryAfter(null, now), null);
});

test("backoff: exponential, capped, jittered, and never below Retry-After", () => {
  const low = () => 0;
  const high = () => 0.999999;
  assert.equal(retryDelay(0, null, low), 0);
  assert.ok(retryDelay(0, null, high) < 500);
  assert.ok(retryDelay(1, null, high) < 1000 && retryDelay(1, null, high) >= 999);
  assert.ok(retryDelay(2, null, high) < 2000 && retryDelay(2, null, high) >= 1999);
  assert.ok(retryDelay(20, null, high) <= 30000, "capped");
  assert.equal(retryDelay(0, 2000, low), 2000);
  assert.ok(retryDelay(2, 2000, high) >= 2000 && retryDelay(2, 2000, high) < 2000 + 500);
  // Jitter spreads clients refused at the same moment.
  const spread = new Set([0.1, 0.4, 0.7].map((r) => retryDelay(3, null, () => r)));
  assert.equal(spread.size, 3);
});

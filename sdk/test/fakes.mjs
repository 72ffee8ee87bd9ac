// Fakes for the unit tests: a clock whose timers fire only when the test
// moves time, and a broker that answers `fetch` from a table.

/** Lets pending promise callbacks and I/O callbacks run. */
export async function settle() {
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

export function fakeClock(startMs) {
  let now = startMs;
  let seq = 0;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      seq += 1;
      timers.set(seq, { at: now + Math.max(0, ms), fn });
      return seq;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    random: () => 0.5,
    /** Moves time forward, firing due timers in order. */
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        await settle();
        let next = null;
        for (const [id, timer] of timers) {
          if (timer.at <= end && (next === null || timer.at < next[1].at)) next = [id, timer];
        }
        if (next === null) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = end;
      await settle();
    },
    /** Time passes without any timer firing: a laptop asleep. */
    jump(ms) {
      now += ms;
    },
    pending: () => [...timers.values()].map((t) => t.at - now).sort((a, b) => a - b),
  };
}

export function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function errorBody(status, reason, headers = {}) {
  return json(status, { error: { code: status, message: reason, reason } }, headers);
}

/**
 * A broker whose clock is `serverClock()` (unix ms): `/v1/auth` and
 * `/v1/refreshToken` mint numbered tokens; product calls go to `product`.
 */
export function fakeBroker({ serverNow, ttl = 1200, product = () => json(200, { ok: true }) }) {
  const calls = [];
  let minted = 0;
  const mint = () => {
    minted += 1;
    const serverTime = Math.floor(serverNow() / 1000);
    return json(200, {
      accessToken: `token-${minted}`,
      expiration: serverTime + ttl,
      expires_in: ttl,
      apis: { search: "https://broker.test/prod/search" },
      server_time: serverTime,
    });
  };
  const broker = {
    calls,
    refuse: null,
    async fetch(url, init = {}) {
      const path = new URL(url).pathname;
      const headers = new Headers(init.headers || {});
      const call = { path, method: init.method || "GET", headers, body: init.body };
      calls.push(call);
      if (broker.refuse && broker.refuse(call)) return broker.refuse(call);
      if (path === "/v1/auth" || path === "/v1/refreshToken") return mint();
      if (path === "/v1/revoke") return json(200, {});
      return product(call, calls);
    },
    count: (path) => calls.filter((c) => c.path === path).length,
  };
  return broker;
}

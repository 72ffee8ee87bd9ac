// keybroker SDK: access tokens for browsers and Node, kept fresh (SPEC §10).
//
// One ES module with no dependencies and no build step. It exchanges a
// credential for an access token, renews it before it expires, shares it
// between the tabs of one origin, and wraps product calls so that a page never
// handles a 401 or a 429 itself. The token lives in memory only (and on a
// BroadcastChannel between tabs): a credential or a token in Web Storage
// would outlive the page and be readable by any script of the origin.

/** Labels of the default notice shown when the token cannot be renewed. */
export const DEFAULT_LABELS = Object.freeze({
  REFRESH_TITLE: "Oooops...!",
  REFRESH_INVALID_ACCESS_TOKEN: "Something went wrong. Please, refresh the page",
  REFRESH_BUTTON: "Refresh",
});

// Inbenta advises refreshing one to three minutes before expiry.
const DEFAULT_REFRESH_BEFORE_SECONDS = 120;
// `accessToken()` hands out tokens valid for at least this long, so that a
// call made with it does not arrive expired.
const MIN_VALIDITY_MS = 5000;
// Retries of one product call after 429/503, and of one renewal after a
// network error or a 5xx.
const MAX_RETRIES = 3;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30000;
// A Retry-After longer than this is handed back to the caller: waiting
// minutes inside a `fetch` would look like a hang.
const MAX_RETRY_AFTER_MS = 60000;
// Browsers clamp setTimeout delays to a signed 32-bit millisecond count.
const MAX_TIMER_MS = 2 ** 31 - 1;
// BroadcastChannel election (browsers without Web Locks): how long a tab
// waits for a competing claim before it refreshes.
const ELECTION_MS = 150;
const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
const RENEW_ON_REASONS = new Set(["token_expired", "invalid_token"]);

/** The time source and timers, replaceable so that tests can move time. */
export const systemClock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
  random: () => Math.random(),
});

/** An error answered by the broker (or met on the way to it). */
export class KeyBrokerError extends Error {
  constructor(message, { status = 0, reason = "network_error", retryAfter = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "KeyBrokerError";
    this.status = status;
    this.reason = reason;
    this.retryAfter = retryAfter;
  }

  /** Reads the broker's error body `{"error": {code, message, reason}}`. */
  static async fromResponse(response, now = Date.now()) {
    let error = {};
    try {
      const body = await response.clone().json();
      if (body && typeof body.error === "object" && body.error !== null) error = body.error;
    } catch {
      // Not JSON (a proxy's page, say): status alone.
    }
    let retryAfter = parseRetryAfter(response.headers.get("retry-after"), now);
    if (retryAfter === null && Number.isFinite(error.retry_after)) retryAfter = error.retry_after * 1000;
    return new KeyBrokerError(error.message || `HTTP ${response.status}`, {
      status: response.status,
      reason: typeof error.reason === "string" ? error.reason : "http_error",
      retryAfter: retryAfter === null ? null : Math.ceil(retryAfter / 1000),
    });
  }
}

/**
 * `Retry-After` as milliseconds from `now`: delay-seconds or an HTTP date
 * (RFC 9110 §10.2.3). `null` when absent or unreadable; never negative.
 */
export function parseRetryAfter(value, now) {
  if (value === null || value === undefined) return null;
  const text = String(value).trim();
  if (text === "") return null;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // HTTP dates name a day and a month; Date.parse alone would read "-3" as a year.
  if (!/[A-Za-z]{3}/.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}

/**
 * The wait before retry number `attempt` (0-based): at least `retryAfterMs`
 * when the server named one, plus "full jitter" exponential backoff capped at
 * BACKOFF_CAP_MS, so that many clients refused together do not return together.
 */
export function retryDelay(attempt, retryAfterMs, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  const jitter = Math.floor(random() * ceiling);
  if (retryAfterMs === null || retryAfterMs === undefined) return jitter;
  // The server's hint is a floor; a little jitter above it spreads the herd.
  return retryAfterMs + Math.floor(jitter / 4);
}

/**
 * How long from now (local milliseconds) until the token should be renewed.
 * `expiration` and `serverTime` are the broker's unix seconds; `offsetMs` is
 * `server time − local time`, so a local clock off by hours does not matter.
 * A lead as long as the whole lifetime would mean refreshing at once, forever:
 * then refresh half-way instead.
 */
export function refreshDelay({ expiration, serverTime, offsetMs, nowMs, refreshBeforeSeconds }) {
  const lifetimeMs = (expiration - serverTime) * 1000;
  let leadMs = refreshBeforeSeconds * 1000;
  if (leadMs >= lifetimeMs) leadMs = lifetimeMs / 2;
  const serverNow = nowMs + offsetMs;
  return Math.max(0, expiration * 1000 - leadMs - serverNow);
}

/** Whether a call may be replayed without asking (RFC 9110 §9.2.2). */
export function isIdempotent(method) {
  return IDEMPOTENT_METHODS.has(String(method || "GET").toUpperCase());
}

/**
 * Whether a product call that got `status` and `reason` should renew the
 * token and be replayed: once, and only for an expired or unreadable token.
 */
export function shouldRenewAndReplay(status, reason, alreadyReplayed) {
  return status === 401 && RENEW_ON_REASONS.has(reason) && !alreadyReplayed;
}

/** Whether a product call that got `status` may be retried after a wait. */
export function shouldRetry(status, method, attempt, optIn) {
  return (status === 429 || status === 503) && attempt < MAX_RETRIES && (optIn || isIdempotent(method));
}

function isBrowser() {
  return typeof window !== "undefined" && typeof document !== "undefined";
}

function bodyReplayable(body) {
  // A stream is read once; everything else fetch accepts can be sent again.
  return !(typeof ReadableStream !== "undefined" && body instanceof ReadableStream);
}

/** One event of a KeyBroker, with its data in `detail` (as CustomEvent). */
export class KeyBrokerEvent extends Event {
  constructor(type, detail) {
    super(type);
    this.detail = detail;
  }
}

export class KeyBroker extends EventTarget {
  /** Connects: validates the options and gets a first token. */
  static async connect(options) {
    const kb = new KeyBroker(options);
    await kb.#start();
    return kb;
  }

  #options;
  #clock;
  #fetch;
  #mode;
  #baseUrl;
  #labels;
  #token = null; // { accessToken, expiration, serverTime }
  #offsetMs = 0;
  #apis = {};
  #timer = null;
  #renewing = null;
  #closed = false;
  #failure = null;
  #channel = null;
  #tabId;
  #claims = new Set();
  #listeners = [];
  #notice = null;
  #connected = false;

  constructor(options) {
    super();
    if (!options || typeof options !== "object") throw new TypeError("KeyBroker.connect needs options");
    const { baseUrl, apiKey, domainKey, getAccessToken, secret, experienceToken, experience } = options;
    if (typeof baseUrl !== "string" || baseUrl === "") throw new TypeError("baseUrl is required");
    const modes = [domainKey, getAccessToken, secret, experienceToken].filter((m) => m !== undefined && m !== null);
    if (modes.length !== 1) {
      throw new TypeError("give exactly one of domainKey, getAccessToken, secret or experienceToken");
    }
    if (domainKey !== undefined && domainKey !== null) this.#mode = "domainKey";
    else if (getAccessToken !== undefined && getAccessToken !== null) this.#mode = "getAccessToken";
    else if (secret !== undefined && secret !== null) this.#mode = "secret";
    else this.#mode = "experienceToken";
    if (this.#mode === "secret" && isBrowser()) {
      throw new TypeError("a secret is for servers only; in a browser use a domain key or getAccessToken");
    }
    if (this.#mode === "getAccessToken" && typeof getAccessToken !== "function") {
      throw new TypeError("getAccessToken must be a function");
    }
    if (this.#mode === "experienceToken" && (typeof experience !== "string" || experience === "")) {
      throw new TypeError("experienceToken needs the experience (product slug) it belongs to");
    }
    if ((this.#mode === "domainKey" || this.#mode === "secret") && !apiKey) {
      throw new TypeError("apiKey is required");
    }
    this.#options = { refreshBeforeSeconds: DEFAULT_REFRESH_BEFORE_SECONDS, ...options };
    this.#baseUrl = baseUrl.replace(/\/+$/, "");
    this.#clock = options.clock || systemClock;
    this.#fetch = options.fetch || ((...args) => globalThis.fetch(...args));
    this.#labels = { ...DEFAULT_LABELS, ...(options.labels || {}) };
    this.#tabId = `${this.#clock.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  }

  /** The product map (`{slug: url}`), renewed on every exchange. */
  get apis() {
    return { ...this.#apis };
  }

  /** A token valid for at least 5 s more (the experience token in that mode). */
  async accessToken() {
    this.#ensureOpen();
    if (this.#mode === "experienceToken") return this.#options.experienceToken;
    if (this.#renewing) await this.#renewing;
    if (this.#failure) throw this.#failure;
    if (!this.#token || this.#remainingMs() < MIN_VALIDITY_MS) await this.#renew();
    this.#ensureOpen();
    if (this.#failure) throw this.#failure;
    return this.#token.accessToken;
  }

  /**
   * A product call: `path` below the product's URL, `init` as for `fetch`
   * (plus `retry: true` to retry a non-idempotent method after 429/503).
   * Resolves with the Response, like `fetch`, whatever its status; rejects
   * with a KeyBrokerError when no token can be had or nothing answered.
   */
  async fetch(product, path = "", init = {}) {
    this.#ensureOpen();
    const { retry: optIn = false, ...request } = init;
    const method = (request.method || "GET").toUpperCase();
    const base = this.#apis[product] || `${this.#baseUrl}/prod/${encodeURIComponent(product)}`;
    const url = base + (path && !path.startsWith("/") && !path.startsWith("?") ? `/${path}` : path);
    const replayable = bodyReplayable(request.body);
    let replayed = false;
    for (let attempt = 0; ; ) {
      const token = await this.accessToken();
      const headers = new Headers(request.headers || {});
      if (this.#options.apiKey) headers.set("x-inbenta-key", this.#options.apiKey);
      if (this.#mode === "experienceToken") headers.set("x-access-token", token);
      else headers.set("authorization", `Bearer ${token}`);
      let response;
      try {
        response = await this.#fetch(url, { ...request, method, headers });
      } catch (cause) {
        // Browsers hide why: a refused preflight looks the same as no network.
        throw new KeyBrokerError(`cannot reach the broker: ${cause && cause.message}`, { cause });
      }
      if (response.status === 401) {
        const error = await KeyBrokerError.fromResponse(response, this.#clock.now());
        if (error.reason === "token_revoked" && this.#mode !== "experienceToken") {
          // Not retried: someone ended this session on purpose. The next
          // call starts over with the credential, which may still be valid.
          if (this.#token && this.#token.accessToken === token) this.#dropToken();
          this.#emit("revoked", { reason: error.reason, error });
          return response;
        }
        if (this.#mode !== "experienceToken" && replayable && shouldRenewAndReplay(401, error.reason, replayed)) {
          replayed = true;
          if (this.#token && this.#token.accessToken === token) this.#dropToken();
          continue;
        }
        return response;
      }
      if (replayable && shouldRetry(response.status, method, attempt, optIn)) {
        const retryAfter = parseRetryAfter(response.headers.get("retry-after"), this.#clock.now());
        if (retryAfter === null || retryAfter <= MAX_RETRY_AFTER_MS) {
          await this.#sleep(retryDelay(attempt, retryAfter, this.#clock.random));
          attempt += 1;
          this.#ensureOpen();
          continue;
        }
      }
      return response;
    }
  }

  /** Revokes the token (`POST /v1/revoke`), then closes this instance. */
  async logout() {
    if (this.#closed) return;
    const token = this.#token;
    if (token && this.#mode !== "experienceToken") {
      try {
        await this.#post("/v1/revoke", token.accessToken);
      } catch {
        // 200 whether or not the token was valid; a network failure leaves
        // a token that dies at its expiry anyway.
      }
      this.#broadcast({ type: "logout" });
    }
    this.close();
  }

  /** Stops timers and listeners without revoking anything. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    for (const [target, type, fn] of this.#listeners) target.removeEventListener(type, fn);
    this.#listeners = [];
    if (this.#channel) this.#channel.close();
    this.#channel = null;
    this.#token = null;
  }

  // ---------------------------------------------------------------- start

  async #start() {
    if (this.#mode === "experienceToken") {
      const slug = this.#options.experience;
      this.#apis = { [slug]: `${this.#baseUrl}/prod/${encodeURIComponent(slug)}` };
      return;
    }
    this.#joinTabs();
    this.#watchWakeUps();
    try {
      await this.#renew();
    } catch (error) {
      this.close();
      throw error;
    }
    if (this.#failure) {
      const failure = this.#failure;
      this.close();
      throw failure;
    }
    this.#connected = true;
  }

  #joinTabs() {
    if (!isBrowser() || typeof BroadcastChannel === "undefined") return;
    this.#channel = new BroadcastChannel(`keybroker:${this.#baseUrl}:${this.#options.apiKey || ""}`);
    this.#channel.onmessage = (event) => this.#onPeerMessage(event.data);
  }

  #watchWakeUps() {
    // A laptop that slept or a tab that was frozen fires its timer late, or
    // not at all: check again whenever the page comes back.
    if (!isBrowser()) return;
    const check = () => this.#check();
    const add = (target, type) => {
      target.addEventListener(type, check);
      this.#listeners.push([target, type, check]);
    };
    add(document, "visibilitychange");
    add(window, "online");
    add(window, "focus");
  }

  // ---------------------------------------------------------------- tokens

  #serverNow() {
    return this.#clock.now() + this.#offsetMs;
  }

  #remainingMs() {
    return this.#token ? this.#token.expiration * 1000 - this.#serverNow() : 0;
  }

  #dropToken() {
    this.#token = null;
    this.#clearTimer();
  }

  #adopt(answer, source, peerOffsetMs) {
    const serverTime = Number.isFinite(answer.server_time) ? answer.server_time : null;
    // A peer tab shares this clock: its offset is as good as ours, and it
    // was measured when the answer arrived, not now.
    if (Number.isFinite(peerOffsetMs)) this.#offsetMs = peerOffsetMs;
    else if (serverTime !== null) this.#offsetMs = serverTime * 1000 - this.#clock.now();
    if (answer.apis && typeof answer.apis === "object") this.#apis = { ...answer.apis };
    this.#token = {
      accessToken: answer.accessToken,
      expiration: answer.expiration,
      serverTime: serverTime ?? Math.floor(this.#serverNow() / 1000),
    };
    this.#failure = null;
    this.#hideNotice();
    this.#schedule();
    const detail = { accessToken: answer.accessToken, expiration: answer.expiration, source };
    this.#emit("token", detail);
    if (source === "refresh") this.#emit("refresh", detail);
    if (source !== "peer") {
      this.#broadcast({
        type: "token",
        token: {
          accessToken: answer.accessToken,
          expiration: answer.expiration,
          server_time: serverTime,
          apis: this.#apis,
        },
        offsetMs: this.#offsetMs,
      });
    }
  }

  #schedule() {
    this.#clearTimer();
    if (this.#closed || !this.#token) return;
    const delay = this.#dueInMs();
    const id = this.#clock.setTimeout(() => this.#check(), Math.min(delay, MAX_TIMER_MS));
    // In Node a pending refresh must not keep a finished script alive.
    if (id && typeof id.unref === "function") id.unref();
    this.#timer = id;
  }

  #clearTimer() {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Timer, wake-up or peer news: renew now if due, else wait again. */
  #check() {
    if (this.#closed || this.#failure || this.#renewing || !this.#token) return;
    if (this.#dueInMs() > 0) {
      this.#schedule();
      return;
    }
    this.#renew().catch(() => {
      // Reported through `refresherror`; the next call rethrows it.
    });
  }

  /** One renewal at a time in this tab; callers during it wait for it. */
  #renew() {
    if (!this.#renewing) {
      this.#renewing = this.#renewAcrossTabs().finally(() => {
        this.#renewing = null;
      });
    }
    return this.#renewing;
  }

  async #renewAcrossTabs() {
    const before = this.#token && this.#token.accessToken;
    const locks = isBrowser() && globalThis.navigator && navigator.locks;
    if (locks && this.#channel) {
      await locks.request(`keybroker-refresh:${this.#baseUrl}:${this.#options.apiKey || ""}`, async () => {
        // A peer may have renewed while this tab waited for the lock.
        if (this.#freshFromPeer(before)) return;
        await this.#renewHere();
      });
      return;
    }
    if (this.#channel) {
      const won = await this.#elect();
      if (!won) {
        // The winner broadcasts its token; give it the time of one renewal
        // before renewing here after all.
        await this.#sleep(ELECTION_MS * 10, () => this.#freshFromPeer(before));
        if (this.#freshFromPeer(before)) return;
      }
    }
    await this.#renewHere();
  }

  #freshFromPeer(before) {
    return this.#token !== null && this.#token.accessToken !== before && this.#dueInMs() > 0;
  }

  /** Milliseconds until the current token should be renewed (0: now). */
  #dueInMs() {
    return refreshDelay({
      expiration: this.#token.expiration,
      serverTime: this.#token.serverTime,
      offsetMs: this.#offsetMs,
      nowMs: this.#clock.now(),
      refreshBeforeSeconds: this.#options.refreshBeforeSeconds,
    });
  }

  /** BroadcastChannel election: claim, wait, lowest claim wins. */
  async #elect() {
    this.#claims.clear();
    this.#broadcast({ type: "claim", id: this.#tabId });
    await this.#sleep(ELECTION_MS);
    return [...this.#claims].every((other) => other > this.#tabId);
  }

  async #renewHere() {
    let lastError = null;
    for (let attempt = 0; attempt <= MAX_RETRIES; attempt += 1) {
      if (this.#closed) return;
      try {
        await this.#renewOnce();
        return;
      } catch (error) {
        lastError = error;
        const transient = error.status === 0 || error.status >= 500 || error.status === 429;
        if (!transient || attempt === MAX_RETRIES) break;
        const retryAfter = error.retryAfter === null ? null : error.retryAfter * 1000;
        if (retryAfter !== null && retryAfter > MAX_RETRY_AFTER_MS) break;
        await this.#sleep(retryDelay(attempt, retryAfter, this.#clock.random));
      }
    }
    this.#fail(lastError);
  }

  async #renewOnce() {
    const token = this.#token;
    // Refresh keeps the session; an expired token cannot be refreshed, so
    // then start over with the credential (sleep, a frozen tab, offline).
    if (token && this.#remainingMs() > 0 && this.#mode !== "getAccessToken") {
      try {
        this.#adopt(await this.#post("/v1/refreshToken", token.accessToken), "refresh");
        return;
      } catch (error) {
        // A session past its maximum lifetime, or revoked: the credential
        // may still be good. Network trouble is retried as it is.
        if (error.status === 0 || error.status >= 500 || error.status === 429) throw error;
      }
    } else if (token && this.#remainingMs() <= 0) {
      this.#emit("expired", { expiration: token.expiration });
      this.#dropToken();
    }
    this.#adopt(await this.#exchange(), token ? "exchange" : "connect");
  }

  async #exchange() {
    if (this.#mode === "getAccessToken") {
      let answer;
      try {
        answer = await this.#options.getAccessToken();
      } catch (cause) {
        throw cause instanceof KeyBrokerError
          ? cause
          : new KeyBrokerError("getAccessToken failed", { status: 0, reason: "get_access_token_failed", cause });
      }
      if (!answer || typeof answer.accessToken !== "string" || !Number.isFinite(answer.expiration)) {
        throw new KeyBrokerError("getAccessToken must resolve to { accessToken, expiration }", {
          status: 0,
          reason: "invalid_get_access_token_result",
        });
      }
      if (!answer.apis) {
        const apis = await this.#request("GET", "/v1/apis", answer.accessToken);
        return { ...answer, apis: apis.apis };
      }
      return answer;
    }
    const body = this.#mode === "domainKey" ? { domain_key: this.#options.domainKey } : { secret: this.#options.secret };
    return this.#request("POST", "/v1/auth", null, body);
  }

  #post(path, token) {
    return this.#request("POST", path, token);
  }

  async #request(method, path, token, body) {
    const headers = { "x-inbenta-key": this.#options.apiKey };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await this.#fetch(this.#baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
      });
    } catch (cause) {
      // Browsers hide why (a refused preflight looks like this too).
      throw new KeyBrokerError(`cannot reach the broker: ${cause && cause.message}`, { cause });
    }
    if (!response.ok) throw await KeyBrokerError.fromResponse(response, this.#clock.now());
    return response.json();
  }

  #fail(error) {
    this.#failure = error;
    this.#dropToken();
    // A failed connect is reported by `connect` rejecting; the page has
    // nothing to reload yet.
    if (!this.#connected) return;
    this.#emit("refresherror", { error });
    if (typeof this.#options.onRefreshError === "function") {
      try {
        this.#options.onRefreshError(error);
      } catch {
        // The page's handler failing is the page's business.
      }
    } else {
      this.#showNotice();
    }
  }

  // ---------------------------------------------------------------- tabs

  #broadcast(message) {
    if (!this.#channel) return;
    try {
      this.#channel.postMessage({ ...message, from: this.#tabId });
    } catch {
      // A closed channel: this tab is going away.
    }
  }

  #onPeerMessage(message) {
    if (this.#closed || !message || message.from === this.#tabId) return;
    if (message.type === "claim") {
      this.#claims.add(message.id);
    } else if (message.type === "token" && message.token) {
      // Newer tokens win; an older one arriving late is ignored.
      if (!this.#token || message.token.expiration > this.#token.expiration) {
        this.#adopt(message.token, "peer", message.offsetMs);
      }
    } else if (message.type === "logout") {
      if (this.#token) {
        this.#dropToken();
        this.#emit("revoked", { reason: "logout" });
      }
    }
  }

  // ---------------------------------------------------------------- misc

  #sleep(ms, until) {
    return new Promise((resolve) => {
      const id = this.#clock.setTimeout(resolve, ms);
      if (id && typeof id.unref === "function") id.unref();
      if (until && this.#channel) {
        const poll = () => {
          if (until()) {
            this.#clock.clearTimeout(id);
            resolve();
          } else if (!this.#closed) {
            this.#clock.setTimeout(poll, 50);
          }
        };
        this.#clock.setTimeout(poll, 50);
      }
    });
  }

  #ensureOpen() {
    if (this.#closed) throw new KeyBrokerError("this KeyBroker was closed", { status: 0, reason: "closed" });
  }

  #emit(type, detail) {
    this.dispatchEvent(new KeyBrokerEvent(type, detail));
  }

  /** The default notice: small, polite, keyboard-reachable, no styles needed. */
  #showNotice() {
    if (!isBrowser() || this.#notice || !document.body) return;
    const labels = this.#labels;
    const box = document.createElement("div");
    box.setAttribute("role", "alertdialog");
    box.setAttribute("aria-modal", "false");
    box.dataset.keybroker = "notice";
    const title = document.createElement("h2");
    title.id = `keybroker-notice-title-${this.#tabId}`;
    title.textContent = labels.REFRESH_TITLE;
    const message = document.createElement("p");
    message.id = `keybroker-notice-text-${this.#tabId}`;
    message.textContent = labels.REFRESH_INVALID_ACCESS_TOKEN;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = labels.REFRESH_BUTTON;
    button.addEventListener("click", () => window.location.reload());
    box.setAttribute("aria-labelledby", title.id);
    box.setAttribute("aria-describedby", message.id);
    // Set through the CSSOM, which a strict style-src CSP still allows.
    Object.assign(box.style, {
      position: "fixed",
      right: "1rem",
      bottom: "1rem",
      zIndex: "2147483647",
      maxWidth: "22rem",
      padding: "1rem 1.25rem",
      background: "#fff",
      color: "#1a1a1a",
      border: "1px solid #c8c8c8",
      borderRadius: "8px",
      boxShadow: "0 4px 16px rgba(0,0,0,.18)",
      font: "15px/1.4 system-ui, sans-serif",
    });
    Object.assign(title.style, { margin: "0 0 .25rem", fontSize: "1.1rem" });
    Object.assign(message.style, { margin: "0 0 .75rem" });
    Object.assign(button.style, {
      font: "inherit",
      padding: ".4rem 1rem",
      border: "1px solid #1a56db",
      borderRadius: "6px",
      background: "#1a56db",
      color: "#fff",
      cursor: "pointer",
    });
    box.append(title, message, button);
    document.body.append(box);
    this.#notice = box;
    button.focus();
  }

  #hideNotice() {
    if (this.#notice) this.#notice.remove();
    this.#notice = null;
  }
}

export default KeyBroker;

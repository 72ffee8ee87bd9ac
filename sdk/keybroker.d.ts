// Types of the keybroker SDK (keybroker.js), written by hand (SPEC §10).

/** Labels of the default notice shown when the token cannot be renewed. */
export interface KeyBrokerLabels {
  /** Default `Oooops...!` */
  REFRESH_TITLE: string;
  /** Default `Something went wrong. Please, refresh the page` */
  REFRESH_INVALID_ACCESS_TOKEN: string;
  /** Default `Refresh`; the button reloads the page. */
  REFRESH_BUTTON: string;
}

export declare const DEFAULT_LABELS: Readonly<KeyBrokerLabels>;

/** What `getAccessToken` resolves to: a token from the customer's own server. */
export interface TokenAnswer {
  accessToken: string;
  /** Unix seconds, as `/v1/auth` answers. */
  expiration: number;
  /** The broker's unix seconds when the token was minted; corrects the local clock. */
  server_time?: number;
  /** The product map; fetched from `/v1/apis` when absent. */
  apis?: Record<string, string>;
}

/** The time source and timers the SDK uses; replaceable in tests. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  random(): number;
}

export declare const systemClock: Readonly<Clock>;

interface CommonOptions {
  /** The broker's base URL, e.g. `https://broker.example.com`. */
  baseUrl: string;
  /** Refresh this long before `expiration` (default 120; Inbenta advises 1–3 minutes). */
  refreshBeforeSeconds?: number;
  /** Texts of the default notice. */
  labels?: Partial<KeyBrokerLabels>;
  /** Called instead of showing the default notice when a renewal fails for good. */
  onRefreshError?: (error: KeyBrokerError) => void;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Time and timers (default: `systemClock`); for tests. */
  clock?: Clock;
}

/** Browser mode: the domain key is exchanged at `/v1/auth`; the browser sends the Origin. */
export interface DomainKeyOptions extends CommonOptions {
  apiKey: string;
  domainKey: string;
  getAccessToken?: never;
  secret?: never;
  experienceToken?: never;
}

/** A token from the customer's own server; called again for every renewal. */
export interface GetAccessTokenOptions extends CommonOptions {
  apiKey?: string;
  getAccessToken: () => Promise<TokenAnswer>;
  domainKey?: never;
  secret?: never;
  experienceToken?: never;
}

/** Node only: a secret, exchanged at `/v1/auth`. Refused in a browser. */
export interface SecretOptions extends CommonOptions {
  apiKey: string;
  secret: string;
  domainKey?: never;
  getAccessToken?: never;
  experienceToken?: never;
}

/** An Interakt-style static experience token: no exchange, no refresh; sent as `X-Access-Token`. */
export interface ExperienceTokenOptions extends CommonOptions {
  apiKey?: string;
  experienceToken: string;
  /** The experience (product slug) the token belongs to. */
  experience: string;
  domainKey?: never;
  getAccessToken?: never;
  secret?: never;
}

export type KeyBrokerOptions =
  | DomainKeyOptions
  | GetAccessTokenOptions
  | SecretOptions
  | ExperienceTokenOptions;

/** An error answered by the broker, or met on the way to it (`status` 0). */
export declare class KeyBrokerError extends Error {
  constructor(
    message: string,
    init?: { status?: number; reason?: string; retryAfter?: number | null; cause?: unknown },
  );
  readonly name: "KeyBrokerError";
  /** HTTP status; 0 for a network failure, a closed instance or a bad `getAccessToken`. */
  status: number;
  /**
   * The broker's machine reason (docs/errors.md), or one of the SDK's own:
   * `network_error`, `http_error`, `closed`, `get_access_token_failed`,
   * `invalid_get_access_token_result`.
   */
  reason: string;
  /** Seconds to wait before trying again, from `Retry-After` or the body; else null. */
  retryAfter: number | null;
  /** Reads the broker's error body of a response. */
  static fromResponse(response: Response, now?: number): Promise<KeyBrokerError>;
}

export type TokenSource = "connect" | "exchange" | "refresh" | "peer";

export interface TokenDetail {
  accessToken: string;
  /** Unix seconds (broker time). */
  expiration: number;
  /** How it was obtained: first exchange, a new exchange, a refresh, or another tab. */
  source: TokenSource;
}

export interface KeyBrokerEventMap {
  /** Every new token, from whatever source. */
  token: KeyBrokerEvent<TokenDetail>;
  /** A refresh made by this tab through `/v1/refreshToken`. */
  refresh: KeyBrokerEvent<TokenDetail>;
  /** A renewal failed for good; the default notice shows unless `onRefreshError` is given. */
  refresherror: KeyBrokerEvent<{ error: KeyBrokerError }>;
  /** The token expired before it could be renewed (sleep, a frozen tab); the SDK starts over. */
  expired: KeyBrokerEvent<{ expiration: number }>;
  /** The session was revoked (401 `token_revoked`) or logged out in another tab. */
  revoked: KeyBrokerEvent<{ reason: string; error?: KeyBrokerError }>;
}

export declare class KeyBrokerEvent<D = unknown> extends Event {
  constructor(type: string, detail: D);
  readonly detail: D;
}

export declare class KeyBroker extends EventTarget {
  /** Validates the options and gets a first token (none in `experienceToken` mode). */
  static connect(options: KeyBrokerOptions): Promise<KeyBroker>;
  private constructor(options: KeyBrokerOptions);

  /** The product map `{slug: url}`, renewed on every exchange (a copy). */
  readonly apis: Record<string, string>;

  /** A token valid for at least 5 s more (the experience token in that mode). */
  accessToken(): Promise<string>;

  /**
   * A product call to `<apis[product]><path>` with `x-inbenta-key` and the
   * token added. Renews and replays once on 401 `token_expired`/`invalid_token`;
   * retries 429/503 after `Retry-After` (at most 3 times, idempotent methods
   * only unless `retry: true`). Resolves with the final Response, whatever its
   * status; rejects with a KeyBrokerError when no token can be had or nothing
   * answered (status 0, `network_error`).
   */
  fetch(product: string, path?: string, init?: RequestInit & { retry?: boolean }): Promise<Response>;

  /** `POST /v1/revoke`, tells the other tabs, then closes this instance. */
  logout(): Promise<void>;

  /** Stops timers and listeners without revoking anything. */
  close(): void;

  addEventListener<K extends keyof KeyBrokerEventMap>(
    type: K,
    listener: (event: KeyBrokerEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof KeyBrokerEventMap>(
    type: K,
    listener: (event: KeyBrokerEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

export default KeyBroker;

// The timing rules, exported for tests and for callers with their own transport.

/** `Retry-After` (delay-seconds or an HTTP date) as milliseconds from `now`; null when unreadable. */
export declare function parseRetryAfter(value: string | null | undefined, now: number): number | null;

/** The wait before retry `attempt` (0-based): the server's hint plus capped, jittered exponential backoff. */
export declare function retryDelay(attempt: number, retryAfterMs: number | null, random?: () => number): number;

/** Milliseconds from `nowMs` (local) until a token should be renewed. */
export declare function refreshDelay(input: {
  expiration: number;
  serverTime: number;
  offsetMs: number;
  nowMs: number;
  refreshBeforeSeconds: number;
}): number;

/** Whether a method may be replayed without asking (RFC 9110 §9.2.2). */
export declare function isIdempotent(method: string | undefined): boolean;

/** Whether a 401 with this reason renews the token and replays the call (once). */
export declare function shouldRenewAndReplay(status: number, reason: string, alreadyReplayed: boolean): boolean;

/** Whether a response with this status is retried after a wait. */
export declare function shouldRetry(status: number, method: string, attempt: number, optIn: boolean): boolean;

// The world the browser tests run in, all on loopback and free ports: a
// redis-server, a broker on it (the debug binary), a page server reachable as
// two origins (http://localhost:P allowed by the keys, http://127.0.0.1:P
// not), and a product upstream. Everything started here is stopped by `stop`
// or, failing that, when this process exits.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const root = new URL("../../", import.meta.url).pathname;
const children = [];
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function start(name, command, args, env, logDir) {
  const log = join(logDir, `${name}.log`);
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const chunks = [];
  child.stdout.on("data", (d) => chunks.push(d));
  child.stderr.on("data", (d) => chunks.push(d));
  child.on("exit", () => writeFileSync(log, Buffer.concat(chunks)));
  child.logText = () => Buffer.concat(chunks).toString();
  children.push(child);
  return child;
}

async function waitFor(what, check, child, ms = 15000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited:\n${child.logText()}`);
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error(`${what} did not start:\n${child ? child.logText() : ""}`);
}

/** What the upstream saw, per product path, for assertions. */
export const upstreamLog = [];

function upstreamHandler(req, res) {
  const url = new URL(req.url, "http://upstream");
  upstreamLog.push({ path: url.pathname, query: url.search });
  // `/limited/...?key=K`: the first call with a key is refused with a short
  // Retry-After, the next ones pass (a product under load, recovering).
  if (url.pathname.startsWith("/limited/")) {
    const key = url.searchParams.get("key");
    const seen = upstreamLog.filter((e) => e.path.startsWith("/limited/") && new URL(`http://x${e.query}`).searchParams.get("key") === key);
    if (seen.length === 1) {
      res.writeHead(429, { "content-type": "application/json", "retry-after": "1" });
      res.end(JSON.stringify({ error: "busy" }));
      return;
    }
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ echo: true, path: url.pathname, query: url.search }));
}

/** `env`: extra broker settings (e.g. a propagation delay). */
export async function startWorld({ env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "keybroker-sdk-"));
  const targetDir = process.env.CARGO_TARGET_DIR || join(root, "target");
  const bin = join(targetDir, "debug", "keybroker");

  const redisPort = await freePort();
  const redis = start(
    "redis",
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    {},
    dir,
  );
  await waitFor("redis-server", async () => {
    const socket = await import("node:net").then((net) => net.connect(redisPort, "127.0.0.1"));
    return new Promise((resolve) => {
      socket.on("connect", () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
  }, redis);

  const pagePort = await freePort();
  const upstreamPort = await freePort();
  const brokerPort = await freePort();
  const broker = `http://127.0.0.1:${brokerPort}`;
  const sdkSource = readFileSync(join(root, "sdk", "keybroker.js"));
  const integrity = `sha384-${createHash("sha384").update(sdkSource).digest("base64")}`;

  // Every page imports the SDK from the broker, through a modulepreload
  // that carries the README's kind of SRI hash.
  const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sdk test</title>
<link rel="modulepreload" href="${broker}/sdk/keybroker.js" integrity="${integrity}" crossorigin="anonymous">
</head><body><main><h1>keybroker SDK test page</h1></main></body></html>`;
  // `/tampered`: the same page pinning another hash; the import must fail.
  const tampered = page.replace(integrity, `sha384-${createHash("sha384").update("other").digest("base64")}`);
  const pages = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(req.url === "/tampered" ? tampered : page);
  });
  await new Promise((resolve) => pages.listen(pagePort, "127.0.0.1", resolve));
  const upstream = createServer(upstreamHandler);
  await new Promise((resolve) => upstream.listen(upstreamPort, "127.0.0.1", resolve));

  const signing = join(dir, "signing.pem");
  const keyGen = spawn(bin, ["generate-key"], { stdio: ["ignore", "pipe", "inherit"] });
  const pem = [];
  keyGen.stdout.on("data", (d) => pem.push(d));
  await new Promise((resolve, reject) => keyGen.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`generate-key: ${code}`)))));
  writeFileSync(signing, Buffer.concat(pem), { mode: 0o600 });

  const adminToken = randomBytes(24).toString("hex");
  const brokerProcess = start(
    "broker",
    bin,
    ["serve"],
    {
      KEYBROKER_LISTEN: `127.0.0.1:${brokerPort}`,
      KEYBROKER_PUBLIC_BASE_URL: broker,
      KEYBROKER_REDIS_URL: `redis://127.0.0.1:${redisPort}/`,
      KEYBROKER_SIGNING_KEY_FILE: signing,
      KEYBROKER_ADMIN_TOKEN: adminToken,
      KEYBROKER_PEPPER: randomBytes(24).toString("hex"),
      KEYBROKER_KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      KEYBROKER_DOMAIN_KEY_PROPAGATION_SECONDS: "0",
      KEYBROKER_WORKERS: "2",
      KEYBROKER_LOG_LEVEL: "warn",
      RUST_LOG: "",
      ...env,
    },
    dir,
  );
  await waitFor("the broker", async () => (await fetch(`${broker}/readyz`)).status === 200, brokerProcess);

  const admin = async (method, path, body) => {
    const response = await fetch(`${broker}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };

  return {
    broker,
    adminToken,
    allowedOrigin: `http://localhost:${pagePort}`,
    otherOrigin: `http://127.0.0.1:${pagePort}`,
    upstream: `http://127.0.0.1:${upstreamPort}`,
    integrity,
    admin,
    /** A fresh instance with the test products; `ttl` is its token lifetime. */
    async instance(ttl = 60) {
      const up = `http://127.0.0.1:${upstreamPort}`;
      const created = await admin("POST", "/instances", {
        name: "SDK test",
        products: { search: { upstream: `${up}/search` }, limited: { upstream: `${up}/limited` } },
        token_ttl_seconds: ttl,
      });
      return { id: created.id, apiKey: created.api_key, secret: created.secret.value };
    },
    async domainKey(instanceId, domains = [`localhost:${pagePort}`]) {
      const key = await admin("POST", `/instances/${instanceId}/domain-keys`, { domains });
      return { id: key.id, value: key.value };
    },
    async refreshCount() {
      const text = await (await fetch(`${broker}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith("keybroker_tokens_refreshed_total"));
      return Number(line.trim().split(/\s+/).pop());
    },
    async stop() {
      for (const child of children) child.kill("SIGTERM");
      await Promise.all(
        children.map((child) => (child.exitCode === null ? new Promise((r) => child.on("exit", r)) : null)),
      );
      pages.close();
      upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `keybroker serve --demo` on a free port; its page is on http://localhost:3000. */
export async function startDemo() {
  const dir = mkdtempSync(join(tmpdir(), "keybroker-demo-"));
  const targetDir = process.env.CARGO_TARGET_DIR || join(root, "target");
  const port = await freePort();
  const demo = start(
    "demo",
    join(targetDir, "debug", "keybroker"),
    ["serve", "--demo"],
    { KEYBROKER_LISTEN: `127.0.0.1:${port}`, KEYBROKER_LOG_LEVEL: "warn", RUST_LOG: "" },
    dir,
  );
  await waitFor("the demo", async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200, demo);
  await waitFor("the demo page", async () => (await fetch("http://localhost:3000/")).status === 200, demo);
  return {
    banner: () => demo.logText(),
    async stop() {
      demo.kill("SIGTERM");
      if (demo.exitCode === null) await new Promise((r) => demo.on("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

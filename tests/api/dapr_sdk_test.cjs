// Dapr's HTTP API as Dapr's JavaScript SDK (@dapr/dapr from npm, nobody here wrote it) drives it:
// the real wasmlet binary on loopback, on a real redis-server or on the embedded store, beside a
// function (tests/guests/state_function.cc, `id: id_state`) that shares the components with the
// app, so each test also checks that the function sees what the SDK did.
//
//   WASMLET_BINARY=... WASMLET_GUESTS=... WASMLET_STORE=redis|embedded \
//   NODE_PATH=build/_node/node_modules node --test tests/api/dapr_sdk_test.cjs
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { DaprClient, CommunicationProtocolEnum, HttpMethod } = require("@dapr/dapr");

const binary = process.env.WASMLET_BINARY;
const guests = process.env.WASMLET_GUESTS;
const store = process.env.WASMLET_STORE || "embedded";

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

async function eventually(predicate, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("never happened: " + what);
}

function start(argv, logPath, cwd) {
  const log = fs.openSync(logPath, "w");
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", log, log], cwd });
  child.logPath = logPath;
  return child;
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const kill = setTimeout(() => child.kill("SIGKILL"), 15000);
    child.on("exit", (code) => {
      clearTimeout(kill);
      resolve(code);
    });
    child.kill("SIGTERM");
  });
}

// The state function, called over plain HTTP with `headers` (op, key, ...).
async function callFunction(port, headers) {
  const answer = await fetch(`http://127.0.0.1:${port}/`, { headers: { ...headers, id: "id_state" } });
  return { status: answer.status, body: await answer.text() };
}

// A loopback HTTP server that records each request and answers 200 {"seen": path}, or 403 to
// a path with /deny in it: what the "http" binding calls.
function startRecorder() {
  const seen = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      if (req.url.includes("/deny")) return res.writeHead(403).end("denied");
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ seen: req.url }));
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () =>
    resolve({ seen, url: `http://127.0.0.1:${server.address().port}`, stop: () => new Promise((r) => server.close(r)) })));
}

// wasmlet with Dapr's HTTP API on a free port, its components on `store`.
async function startSidecar(settings = {}) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "dapr-sdk-"));
  const side = { work, children: [] };
  side.recorder = await startRecorder();
  let metadata = { path: path.join(work, "state.db") };
  if (store === "redis") {
    side.redisPort = await freePort();
    side.children.push(start(["redis-server", "--port", String(side.redisPort), "--bind", "127.0.0.1",
      "--save", "", "--appendonly", "no", "--dir", work], path.join(work, "redis.log")));
    await eventually(() => accepts(side.redisPort), "redis-server accepts connections");
    metadata = { redisHost: `127.0.0.1:${side.redisPort}` };
  }
  const secrets = path.join(work, "secrets.json");
  fs.writeFileSync(secrets, JSON.stringify({ "db-password": "s3cret", "api-key": "k-123" }));
  side.daprPort = await freePort();
  side.httpPort = await freePort();
  const component = { type: store, metadata };
  const plugin = (name, file) => ({ name, instance_num: 2, vm_config: { engine: "wasmtime", path: path.join(guests, file) } });
  const config = {
    servers: [{
      listeners: [
        { name: "grpc", filter_chains: [{ filters: [{ type: "grpc", config: { server_name: "runtime", grpc_config: {
          state: { orders: component }, lock: { locks: component }, pub_subs: { events: component },
          secret_store: { vault: { type: "local.file", metadata: { secretsFile: secrets } } },
          bindings: { web: { type: "http", metadata: { url: `${side.recorder.url}/base` } } },
          app: { app_id: "app1" } } } }] }] },
        { name: "wasm", address: `127.0.0.1:${side.httpPort}`,
          stream_filters: [{ type: "Layotto", config: { state: plugin("state", "state_function.wasm"),
                                                       filter: plugin("filter", "abi_filter.wasm") } }] },
      ],
    }],
    wasmlet: { admin_address: "", dapr_http_address: `127.0.0.1:${side.daprPort}`, ...settings },
  };
  const configPath = path.join(work, "config.json");
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  side.wasmlet = start([binary, "start", "-c", configPath], path.join(work, "wasmlet.log"));
  side.children.push(side.wasmlet);
  await eventually(async () => (await accepts(side.daprPort)) || side.wasmlet.exitCode !== null, "wasmlet serves");
  if (side.wasmlet.exitCode !== null) throw new Error("wasmlet did not start:\n" + fs.readFileSync(side.wasmlet.logPath, "utf8"));
  await eventually(() => accepts(side.httpPort), "wasmlet serves functions");
  side.log = () => fs.readFileSync(side.wasmlet.logPath, "utf8");
  side.client = (options = {}) => new DaprClient({ daprHost: "127.0.0.1", daprPort: String(side.daprPort),
    communicationProtocol: CommunicationProtocolEnum.HTTP, ...options });
  side.stop = async () => {
    const codes = [];
    for (const child of side.children.reverse()) codes.push(await stop(child));
    await side.recorder.stop();
    fs.rmSync(work, { recursive: true, force: true });
    return codes[0];
  };
  return side;
}

test(`Dapr's JS SDK on ${store}`, async (t) => {
  const side = await startSidecar();
  const client = side.client();
  await client.start();  // the SDK waits here until the sidecar's metadata answers
  t.after(async () => {
    await client.stop();
    assert.equal(await side.stop(), 0, "wasmlet did not stop cleanly on SIGTERM");
  });

  await t.test("what the SDK saves the function reads, as JSON, and the other way round", async () => {
    await client.state.save("orders", [{ key: "book1", value: { title: "Go", pages: 380 } }, { key: "note", value: "hi" }]);
    assert.deepEqual(await client.state.get("orders", "book1"), { title: "Go", pages: 380 });
    assert.equal(await client.state.get("orders", "note"), "hi");
    const seen = await callFunction(side.httpPort, { op: "get", key: "book1" });
    assert.equal(seen.status, 200);
    assert.match(seen.body, /^value=\{"pages":380,"title":"Go"\} etag=\S+\n$/);
    assert.equal((await callFunction(side.httpPort, { op: "save", key: "from-fn", value: "7" })).status, 200);
    assert.equal(await client.state.get("orders", "from-fn"), 7);
    if (store === "redis") {
      const keys = execFileSync("redis-cli", ["-p", String(side.redisPort), "--raw", "keys", "*book1*"]).toString().split(/\s+/).filter(Boolean);
      assert.deepEqual(keys, ["app1||book1"], "both sides use the key app1||book1");
    }
  });

  await t.test("bulk get keeps the order asked, delete and a transaction change what is there", async () => {
    await client.state.save("orders", [{ key: "a", value: 1 }, { key: "c", value: { n: 3 } }]);
    const bulk = await client.state.getBulk("orders", ["c", "b", "a"]);
    assert.deepEqual(bulk.map((i) => [i.key, i.data]), [["c", { n: 3 }], ["b", undefined], ["a", 1]]);
    assert.ok(bulk[0].etag);
    assert.deepEqual(await client.state.delete("orders", "a"), {});
    assert.equal(await client.state.get("orders", "a"), "");
    await client.state.transaction("orders", [
      { operation: "upsert", request: { key: "t1", value: "one" } },
      { operation: "delete", request: { key: "c" } },
    ]);
    assert.equal(await client.state.get("orders", "t1"), "one");
    assert.equal(await client.state.get("orders", "c"), "");
  });

  await t.test("a stale ETag is refused with Dapr's error and nothing changes", async () => {
    await client.state.save("orders", [{ key: "order-1", value: "pending" }]);
    const fresh = await fetch(`http://127.0.0.1:${side.daprPort}/v1.0/state/orders/order-1`);
    const etag = fresh.headers.get("etag");
    assert.ok(etag);
    assert.deepEqual(await client.state.save("orders", [{ key: "order-1", value: "paid", etag }]), {});
    // The SDK answers a failed save with {error} rather than throwing.
    const refused = await client.state.save("orders", [{ key: "order-1", value: "lost", etag }]);
    assert.ok(refused.error, "a save with a stale ETag went through");
    const error = JSON.parse(refused.error.message);
    assert.equal(error.status, 409);
    assert.equal(JSON.parse(error.error_msg).errorCode, "ERR_STATE_SAVE");
    assert.equal(await client.state.get("orders", "order-1"), "paid");
    const unknown = await fetch(`http://127.0.0.1:${side.daprPort}/v1.0/state/nope/k`);
    assert.equal(unknown.status, 400);
    assert.deepEqual(Object.keys(await unknown.json()).sort(), ["errorCode", "message"]);
  });

  await t.test("secrets, locks, publishing and the metadata", async () => {
    assert.deepEqual(await client.secret.get("vault", "db-password"), { "db-password": "s3cret" });
    assert.deepEqual(await client.secret.getBulk("vault"),
      { "db-password": { "db-password": "s3cret" }, "api-key": { "api-key": "k-123" } });
    assert.deepEqual(await client.lock.lock("locks", "order-7", "app", 60), { success: true });
    assert.deepEqual(await client.lock.lock("locks", "order-7", "other", 60), { success: false });
    const held = await callFunction(side.httpPort, { op: "lock", store: "locks", key: "order-7", owner: "fn" });
    assert.deepEqual(held, { status: 200, body: "held\n" });
    const { LockStatus } = require("@dapr/dapr/types/lock/UnlockResponse");
    assert.deepEqual(await client.lock.unlock("locks", "order-7", "other"), { status: LockStatus.LockBelongsToOthers });
    assert.deepEqual(await client.lock.unlock("locks", "order-7", "app"), { status: LockStatus.Success });
    assert.deepEqual(await client.pubsub.publish("events", "orders", { id: 7 }), {});
    const failed = await client.pubsub.publish("nope", "orders", { id: 7 });
    assert.ok(failed.error, "a publish to a pub/sub the config lacks did not fail");
    const metadata = await client.metadata.get();
    assert.equal(metadata.id, "app1");
    assert.ok(metadata.components.some((c) => c.name === "orders" && c.type === `state.${store}`));
    assert.equal(await client.health.isHealthy(), true);
  });

  await t.test("an output binding sends one request and returns its answer", async () => {
    const answer = await client.binding.send("web", "create", { order: 7 }, { path: "orders/7", "X-Trace": "abc" });
    assert.deepEqual(answer, { seen: "/base/orders/7" });
    const request = side.recorder.seen.at(-1);
    assert.deepEqual([request.method, request.path, request.headers["x-trace"], JSON.parse(request.body)],
      ["POST", "/base/orders/7", "abc", { order: 7 }]);
    const refused = await fetch(`http://127.0.0.1:${side.daprPort}/v1.0/bindings/web`, { method: "POST",
      body: JSON.stringify({ operation: "get", metadata: { path: "/deny" } }) });
    assert.equal(refused.status, 500);
    const error = await refused.json();
    assert.equal(error.errorCode, "ERR_INVOKE_OUTPUT_BINDING");
    assert.match(error.message, /answered 403: denied/);
    const unknown = await fetch(`http://127.0.0.1:${side.daprPort}/v1.0/bindings/nope`, { method: "POST",
      body: JSON.stringify({ operation: "get" }) });
    assert.equal(unknown.status, 400);
    assert.match((await unknown.json()).message, /no binding named 'nope' \(the config has: web\)/);
  });

  await t.test("invoke reaches the function by its id, with the method as its path", async () => {
    const answer = await client.invoker.invoke("filter", "orders/7?x=1", HttpMethod.PUT, { n: 1 },
      { headers: { "x-op": "headers" } });
    const lines = String(answer).split("\n");
    for (const line of ["header :method=PUT", "header :path=/orders/7?x=1", "header id=filter"]) {
      assert.ok(lines.includes(line), `${line} not in ${answer}`);
    }
    const echoed = await client.invoker.invoke("filter", "echo", HttpMethod.POST, { n: 1 }, { headers: { "x-op": "echo" } });
    assert.equal(String(echoed), 'echo={"n":1}\n');
    await assert.rejects(client.invoker.invoke("nobody", "x", HttpMethod.GET));
  });
});

// The token does not depend on the store: it is checked once, with the embedded one.
if (store === "embedded") test("Dapr's HTTP API with a token refuses calls without it", async (t) => {
  const side = await startSidecar({ api_token: "t0ken" });
  t.after(() => side.stop());
  const anonymous = await fetch(`http://127.0.0.1:${side.daprPort}/v1.0/state/orders/k`);
  assert.equal(anonymous.status, 401);
  assert.equal((await anonymous.json()).errorCode, "ERR_API_TOKEN");
  const client = side.client({ daprApiToken: "t0ken" });
  await client.start();
  await client.state.save("orders", [{ key: "k", value: "v" }]);
  assert.equal(await client.state.get("orders", "k"), "v");
  await client.stop();
});

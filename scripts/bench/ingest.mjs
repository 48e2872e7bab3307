// `pnpm bench ingest [--postgres URL] [--seconds N] [--senders N] [--traces-per-batch N] [--cpu-prof DIR]`
// Sustained span ingest into PostgreSQL through the real RPC path: `clasper serve --service trace`
// in its own process (HTTP/2, Connect binary, the full server interceptor stack, signed internal
// context, redaction, span insert, trace summary upsert) fed by several concurrent senders with
// realistic executions (invoke_agent + 3 chat + 4 execute_tool spans per trace) in batches the
// size the real exporter sends when busy. The senders write the Connect unary request by hand
// (same bytes as a Connect client, checked at start) so that they leave the two cores to what is
// measured; their own CPU per span is printed too. Baseline in the same run: the same rows as
// plain multi-row INSERTs straight into the same table (no RPC, no redaction, no summary), with
// the same number of concurrent senders.
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import http2 from "node:http2";
import { createRequire } from "node:module";
import path from "node:path";
import { parseArgs } from "node:util";
import { freePort, startChild } from "./_support.mjs";

const { values } = parseArgs({
  options: {
    postgres: { type: "string", default: "postgres://clasper:clasper@127.0.0.1:5432/clasper_test" },
    seconds: { type: "string", default: "10" },
    senders: { type: "string", default: "4" },
    // 62 traces × 8 spans = 496: full batches of the real exporter (IngestSpanExporter's
    // maxBatchSize is 500), which is what it sends while spans arrive faster than it delivers.
    "traces-per-batch": { type: "string", default: "62" },
    // Writes a V8 CPU profile of the trace service process to DIR (open it in Chrome DevTools).
    "cpu-prof": { type: "string" },
  },
});
const seconds = Number(values.seconds);
const senders = Number(values.senders);
const tracesPerBatch = Number(values["traces-per-batch"]);
const spansPerBatch = tracesPerBatch * 8;
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
// Workspace packages and their dependencies, resolved as the CLI and the db package see them.
const fromCli = createRequire(path.join(root, "packages/cli/package.json"));
const fromDb = createRequire(path.join(root, "packages/db/package.json"));
const load = (req, name) => import(req.resolve(name));
const { create, fromBinary, toBinary } = await load(fromCli, "@bufbuild/protobuf");
const { IngestSpansRequestSchema, IngestSpansResponseSchema, TraceService, SpanKind, SpanStatusCode } = await load(fromCli, "@clasper/proto");
const { buildPrincipal, createContextSigner, CONTEXT_HEADER } = await load(fromCli, "@clasper/auth");
const { default: pg } = await load(fromDb, "pg");

const secret = randomBytes(32).toString("hex");
// Random ids from a pool refilled 64 KiB at a time: one crypto call per id would cost the senders
// more than the ids are worth, and the senders share the two cores with what they measure.
let randomPool = randomBytes(0);
let randomAt = 0;
const hex = (n) => {
  if (randomAt + n > randomPool.length) (randomPool = randomBytes(65536)), (randomAt = 0);
  randomAt += n;
  return randomPool.toString("hex", randomAt - n, randomAt);
};

// ---------------------------------------------------------------------------------------------
// Realistic spans: attribute names and sizes as the runtime writes them.

const words = "the customer asked about order status refund shipping invoice account settings password reset delivery date warehouse".split(" ");
const proseCache = new Map();
const prose = (chars) => {
  let out = proseCache.get(chars);
  if (out !== undefined) return out;
  out = "";
  while (out.length < chars) out += `${words[out.length % words.length]} `;
  proseCache.set(chars, (out = out.slice(0, chars)));
  return out;
};
// Every trace gets its own text (the trace id is woven in), so nothing downstream can profit
// from identical payloads; about one user message in ten carries an e-mail address to redact.
function payloads(traceId) {
  const userMessage = `${prose(300)} order ${traceId.slice(0, 10)}${traceId.charCodeAt(0) % 10 === 0 ? " reach me at jane.doe@example.com" : ""}`;
  return {
    userMessage,
    answer: `${prose(700)} ref ${traceId.slice(10, 20)}`,
    history: JSON.stringify([
      { role: "system", parts: [{ type: "text", content: prose(600) }] },
      { role: "user", parts: [{ type: "text", content: userMessage }] },
    ]),
    completion: JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: `${prose(800)} ${traceId.slice(0, 16)}` }], finish_reason: "stop" }]),
    toolArgs: JSON.stringify({ query: `${prose(120)} ${traceId.slice(4, 12)}`, limit: 10 }),
    toolResult: JSON.stringify({ hits: Array.from({ length: 5 }, (_, i) => ({ id: `doc-${traceId.slice(i, i + 8)}`, snippet: prose(150) })) }),
  };
}

const s = (value) => ({ value: { case: "stringValue", value } });
const n = (value) => ({ value: { case: "intValue", value: BigInt(value) } });
const attrs = (record) => Object.entries(record).map(([key, value]) => ({ key, value: typeof value === "number" ? n(value) : s(value) }));
const BASE = 1_790_000_000n;
const ts = (ms) => ({ seconds: BASE + BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 });

/** Hex characters of the random ids of one execution: trace, root span, 3 × (span, response), 4 × (span, call). */
const ID_CHARS = 2 * (16 + 8 + 3 * (8 + 12) + 4 * (8 + 8));
const freshIds = () => hex(ID_CHARS / 2);

/** One execution's spans; every id is taken in turn from `ids` (ID_CHARS hex characters). */
function executionSpans(ids) {
  let taken = 0;
  const id = (bytes) => ids.slice(taken, (taken += 2 * bytes));
  const traceId = id(16);
  const { userMessage, answer, history, completion, toolArgs, toolResult } = payloads(traceId);
  const rootId = id(8);
  const span = (spanId, parent, name, startMs, endMs, attributes) => ({
    traceId,
    spanId,
    parentSpanId: parent,
    name,
    kind: SpanKind.INTERNAL,
    startTime: ts(startMs),
    endTime: ts(endMs),
    status: { code: SpanStatusCode.OK, message: "" },
    attributes,
    events: [],
    serviceName: "clasper-runtime",
  });
  const spans = [
    span(rootId, "", "invoke_agent support", 0, 4000, attrs({
      "gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
      "gen_ai.agent.name": "support", "clasper.execution.id": `exec-${traceId.slice(0, 12)}`, "clasper.workspace.id": "ws-bench",
      "clasper.environment": "prod", "clasper.user.id": "user-42", "clasper.workspace.version": `sha256:${"ab".repeat(32)}`,
      "clasper.skill_versions": JSON.stringify({ triage: "1.4.2", search: "0.9.0" }), "clasper.input.message": userMessage,
      "clasper.input.history_count": 6, "clasper.output.message": answer, "clasper.task.id": "task-123", "clasper.source": "send",
    })),
  ];
  for (let i = 0; i < 3; i++) {
    spans.push(span(id(8), rootId, "chat gpt-4o-mini", 100 + i * 1200, 900 + i * 1200, attrs({
      "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
      "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": `chatcmpl-${id(12)}`,
      "gen_ai.usage.input_tokens": 1800 + i, "gen_ai.usage.output_tokens": 240, "gen_ai.usage.cache_read.input_tokens": 1024,
      "clasper.cost_micros": 420, "clasper.llm.attempt": 1, "gen_ai.input.messages": history, "gen_ai.output.messages": completion,
    })));
  }
  for (let i = 0; i < 4; i++) {
    spans.push(span(id(8), rootId, "execute_tool search", 950 + i * 700, 1300 + i * 700, attrs({
      "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search", "gen_ai.tool.call.id": `call_${id(8)}`,
      "clasper.tool.permitted": "true", "clasper.tool.idempotency_key": `${traceId}:${i}`,
      "gen_ai.tool.call.arguments": toolArgs, "gen_ai.tool.call.result": toolResult,
    })));
  }
  return spans;
}

function batch() {
  const spans = [];
  for (let t = 0; t < tracesPerBatch; t++) spans.push(...executionSpans(freshIds()));
  return spans;
}

// ---------------------------------------------------------------------------------------------
// The request bytes, written by hand: the reflective create() + toBinary() of the Connect client
// cost the senders more CPU per span than the service's whole decode, on the cores the service
// and the database need. The bytes are the ones toBinary writes (checked at start); the service
// receives exactly what a Connect client would send.

const varintSize = (v) => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5);

/** Protobuf wire format into one growing buffer; nested lengths are patched in after the fact. */
class Writer {
  buf = Buffer.allocUnsafe(1 << 21);
  pos = 0;
  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }
  /** Non-negative integers below 2^53 (every varint this bench writes). */
  varint(value) {
    if (value < 0 || !Number.isSafeInteger(value)) throw new Error(`varint out of range: ${value}`);
    this.ensure(8);
    const buf = this.buf;
    let v = value;
    while (v >= 0x80) {
      buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[this.pos++] = v;
  }
  tag(field, wireType) {
    this.varint(field * 8 + wireType);
  }
  /** An implicit-presence scalar is not written when it holds its zero value. */
  number(field, value) {
    if (value !== 0) (this.tag(field, 0), this.varint(value));
  }
  string(field, value, always = false) {
    if (value === "" && !always) return;
    const length = Buffer.byteLength(value, "utf8");
    this.tag(field, 2);
    this.varint(length);
    this.ensure(length);
    this.pos += this.buf.write(value, this.pos, length, "utf8");
  }
  /** Opens a length-delimited field; `end` writes its (minimal) length once the content is in. */
  begin(field) {
    this.tag(field, 2);
    this.ensure(5);
    this.pos += 5;
    return this.pos;
  }
  end(start) {
    const length = this.pos - start;
    const size = varintSize(length);
    if (size < 5) this.buf.copyWithin(start - 5 + size, start, this.pos);
    this.pos = start - 5;
    this.varint(length);
    this.pos += length;
  }
}

function timestamp(w, field, t) {
  const at = w.begin(field);
  w.number(1, Number(t.seconds));
  w.number(2, t.nanos);
  w.end(at);
}

function encodeSpan(w, sp) {
  if (sp.events.length > 0) throw new Error("events are not encoded by hand");
  w.string(1, sp.traceId);
  w.string(2, sp.spanId);
  w.string(3, sp.parentSpanId);
  w.string(4, sp.name);
  w.number(5, sp.kind);
  timestamp(w, 6, sp.startTime);
  timestamp(w, 7, sp.endTime);
  const status = w.begin(8);
  w.number(1, sp.status.code);
  w.string(2, sp.status.message);
  w.end(status);
  encodeAttributes(w, sp.attributes);
  w.string(11, sp.serviceName);
}

/** Span field 9, the attributes: also what the trace service stores as a span's payload. */
function encodeAttributes(w, attributes) {
  for (const a of attributes) {
    const attribute = w.begin(9);
    w.string(1, a.key);
    const value = w.begin(2);
    const v = a.value.value;
    // Oneof members have explicit presence: written even when zero.
    if (v.case === "stringValue") w.string(1, v.value, true);
    else if (v.case === "intValue") (w.tag(3, 0), w.varint(Number(v.value)));
    else throw new Error(`unexpected attribute value ${v.case}`);
    w.end(value);
    w.end(attribute);
  }
}

function encodeRequest(spans) {
  const w = new Writer();
  for (const sp of spans) {
    const at = w.begin(1);
    encodeSpan(w, sp);
    w.end(at);
  }
  return w.buf.subarray(0, w.pos);
}

{
  const sample = batch();
  const expected = toBinary(IngestSpansRequestSchema, create(IngestSpansRequestSchema, { spans: sample }));
  if (!Buffer.from(expected).equals(encodeRequest(sample))) throw new Error("hand-written encoding differs from toBinary");
}

/*
 * The senders do not even encode: the request of one execution is encoded once per kind (with and
 * without the e-mail address, which payloads() decides from the trace id's first character), with
 * a record of which byte copies which id character. A batch is those bytes with fresh random ids
 * written in, the same bytes encodeRequest writes for the same ids (checked below). The content
 * stays as varied as before: every id and every id-derived piece of text is new in every trace.
 */
const ALTERNATIVE = { 2: "d", d: "2", 0: "1", 1: "0" };

function executionTemplate(baseIds) {
  const bytes = Buffer.from(encodeRequest(executionSpans(baseIds)));
  // Encoding j changes the id characters whose (index + 1) has bit j set; the bits in which a
  // byte differs from the base spell the index of the id character it copies.
  const source = new Int32Array(bytes.length);
  for (let bit = 0; 1 << bit <= ID_CHARS; bit++) {
    const changed = [...baseIds].map((c, k) => (((k + 1) >> bit) & 1 ? ALTERNATIVE[c] ?? "0" : c)).join("");
    const variant = encodeRequest(executionSpans(changed));
    if (variant.length !== bytes.length) throw new Error("an id changed the length of the request");
    for (let p = 0; p < bytes.length; p++) if (variant[p] !== bytes[p]) source[p] |= 1 << bit;
  }
  const positions = [];
  const sources = [];
  source.forEach((code, p) => code !== 0 && (positions.push(p), sources.push(code - 1)));
  return { bytes, positions: Uint32Array.from(positions), sources: Uint16Array.from(sources) };
}

const TEMPLATES = { email: executionTemplate(`2${"0".repeat(ID_CHARS - 1)}`), plain: executionTemplate("0".repeat(ID_CHARS)) };
const templateFor = (ids) => (ids.charCodeAt(0) % 10 === 0 ? TEMPLATES.email : TEMPLATES.plain);

/** The IngestSpans request of `tracesPerBatch` fresh executions. */
function requestBytes(idsList = Array.from({ length: tracesPerBatch }, freshIds)) {
  const out = Buffer.allocUnsafe(idsList.reduce((n, ids) => n + templateFor(ids).bytes.length, 0));
  let at = 0;
  for (const ids of idsList) {
    const { bytes, positions, sources } = templateFor(ids);
    bytes.copy(out, at);
    for (let i = 0; i < positions.length; i++) out[at + positions[i]] = ids.charCodeAt(sources[i]);
    at += bytes.length;
  }
  return out;
}

for (let round = 0; round < 20; round++) {
  const idsList = Array.from({ length: 4 }, freshIds);
  if (round < 2) idsList[0] = `${"2d"[round]}${idsList[0].slice(1)}`; // both kinds for certain
  if (!requestBytes(idsList).equals(encodeRequest(idsList.flatMap(executionSpans)))) throw new Error("request template differs from encodeRequest");
}

/**
 * CPU seconds (user + system) a process has used, from /proc on Linux; undefined elsewhere. Wall
 * throughput on a shared machine swings with other load, CPU per span much less.
 */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a process and its live descendants: `clasper serve --service trace` runs the
 * service in a child process when it relaunches itself with V8's young-generation size
 * (packages/cli/src/young-generation.ts).
 */
function treeCpuSeconds(pid) {
  const parents = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      parents.set(Number(entry), Number(readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1].split(" ")[1]));
    } catch {
      // exited meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  let total = 0;
  for (const p of tree) total += cpuSeconds(p) ?? 0;
  return total;
}

/** CPU seconds of the database's server processes serving `dbName` (per pid), by application name. */
async function backendCpu(admin, dbName, ownApp) {
  const { rows } = await admin.query(
    "select pid from pg_stat_activity where datname = $1 and (application_name = $2) = $3",
    [dbName, BASELINE_APP, ownApp === BASELINE_APP],
  );
  return new Map(rows.map((r) => [r.pid, cpuSeconds(r.pid) ?? 0]));
}

/** CPU seconds the backends used between two backendCpu snapshots (new backends count from 0). */
function cpuBetween(before, after) {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** Runs `senders` loops of `send()` (which sends one batch) for `seconds`; returns spans/s and the spans sent. */
async function sustained(send) {
  const deadline = Date.now() + seconds * 1000;
  let spans = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: senders }, async () => {
      while (Date.now() < deadline) {
        await send();
        spans += spansPerBatch;
      }
    }),
  );
  return { rate: spans / ((Date.now() - started) / 1000), spans };
}

// ---------------------------------------------------------------------------------------------

const admin = new pg.Client({ connectionString: values.postgres });
await admin.connect();
const dbName = `clasper_bench_ingest_${process.pid}`;
await admin.query(`create database ${dbName}`);
const url = new URL(values.postgres);
url.pathname = `/${dbName}`;

const port = await freePort();
let service;
// The baseline's own connections carry this name, so the service's backends can be told apart.
const BASELINE_APP = "clasper-bench-baseline";
const pool = new pg.Pool({ connectionString: url.toString(), max: senders, application_name: BASELINE_APP });
try {
  const profile = values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`] : [];
  service = await startChild(process.execPath, [...profile, path.join(root, "packages/cli/dist/bin.js"), "serve", "--service", "trace"], {
    env: { CLASPER_PORT: String(port), CLASPER_HOST: "127.0.0.1", DATABASE_URL: url.toString(), CLASPER_INTERNAL_SECRET: secret, LOG_LEVEL: "error", NODE_ENV: "production" },
    url: `http://127.0.0.1:${port}/healthz`,
  });

  // Baseline: the rows the service would store, one multi-row INSERT per batch.
  // The attributes as the service stores them: a protobuf Span with only its attributes
  // (migration 20261127000000_span_payload).
  const columns = ["tenant_id", "trace_id", "span_id", "parent_span_id", "name", "kind", "operation", "start_time", "end_time", "status_code", "status_message", "payload", "service_name"];
  const payloadWriter = new Writer();
  const payload = (sp) => {
    payloadWriter.pos = 0;
    encodeAttributes(payloadWriter, sp.attributes);
    return Buffer.from(payloadWriter.buf.subarray(0, payloadWriter.pos));
  };
  const iso = (t) => new Date(Number(t.seconds) * 1000 + t.nanos / 1e6).toISOString();
  const plainInsert = async (spans = batch()) => {
    const params = [];
    const rows = spans.map((sp) => {
      const operation = sp.attributes.find((a) => a.key === "gen_ai.operation.name").value.value.value;
      const row = ["baseline", sp.traceId, sp.spanId, sp.parentSpanId || null, sp.name, sp.kind, operation, iso(sp.startTime), iso(sp.endTime), 1, null, payload(sp), sp.serviceName];
      const start = params.length;
      params.push(...row);
      return `(${row.map((_, i) => `$${start + i + 1}`).join(", ")})`;
    });
    await pool.query(`insert into trace.spans (${columns.join(", ")}) values ${rows.join(", ")}`, params);
  };

  const signer = createContextSigner(secret);
  const principal = buildPrincipal({ kind: "service", tenantId: "bench", userId: "service:runtime", roles: ["admin"] });
  let token = await signer.sign({ principal, requestId: "bench" });
  const refresh = setInterval(async () => (token = await signer.sign({ principal, requestId: "bench" })), 20_000);
  // One HTTP/2 connection, as the Connect client keeps; a unary call of the Connect protocol with
  // the binary codec (what createConnectTransport({ httpVersion: "2", useBinaryFormat: true }) sends).
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const rpcPath = `/${TraceService.typeName}/${TraceService.method.ingestSpans.name}`;
  const rpc = () =>
    new Promise((resolve, reject) => {
      const body = requestBytes();
      const stream = session.request({
        ":method": "POST",
        ":path": rpcPath,
        "content-type": "application/proto",
        "connect-protocol-version": "1",
        "content-length": String(body.length),
        [CONTEXT_HEADER]: token,
      });
      let status = 0;
      const chunks = [];
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", (chunk) => chunks.push(chunk));
      stream.on("error", reject);
      stream.on("end", () => {
        const answer = Buffer.concat(chunks);
        if (status !== 200) return reject(new Error(`IngestSpans answered ${status}: ${answer.toString()}`));
        const res = fromBinary(IngestSpansResponseSchema, answer);
        if (res.accepted !== spansPerBatch) return reject(new Error(`accepted ${res.accepted} of ${spansPerBatch}`));
        resolve();
      });
      stream.end(body);
    });

  try {
    // Warm-up: JIT, connection pools, the redactor, the first pages of the tables.
    await Promise.all(Array.from({ length: senders }, () => rpc()));
    await Promise.all(Array.from({ length: senders }, () => plainInsert()));
    const baseDbBefore = await backendCpu(admin, dbName, BASELINE_APP);
    const { rate: base, spans: baseSpans } = await sustained(plainInsert);
    const baseDb = cpuBetween(baseDbBefore, await backendCpu(admin, dbName, BASELINE_APP));
    const cpuBefore = treeCpuSeconds(service.child.pid);
    const dbBefore = await backendCpu(admin, dbName, "service");
    const benchBefore = process.cpuUsage();
    const { rate: ingest, spans: ingested } = await sustained(rpc);
    const benchCpu = process.cpuUsage(benchBefore);
    const cpuAfter = treeCpuSeconds(service.child.pid);
    const ingestDb = cpuBetween(dbBefore, await backendCpu(admin, dbName, "service"));
    console.log(`\ncommand: pnpm bench ingest --seconds ${seconds} --senders ${senders} --traces-per-batch ${tracesPerBatch}${values.postgres ? " --postgres <url>" : ""}`);
    console.log(`PostgreSQL ${(await admin.query("show server_version")).rows[0].server_version}, node ${process.version}, ${senders} senders, ${spansPerBatch} spans per batch (${tracesPerBatch} traces × 8 spans), ${seconds} s per run\n`);
    console.log("| run | spans/s | vs baseline |");
    console.log("|---|---|---|");
    console.log(`| baseline: multi-row INSERT straight into trace.spans | ${base.toFixed(0)} | 1.000× |`);
    console.log(`| IngestSpans over HTTP/2 (redaction, spans, trace summaries) | ${ingest.toFixed(0)} | ${(ingest / base).toFixed(3)}× |`);
    if (cpuBefore !== undefined && cpuAfter !== undefined) {
      const perSpan = ((cpuAfter - cpuBefore) / ingested) * 1e6;
      console.log(`\ntrace service CPU: ${perSpan.toFixed(0)} µs per span (≈ ${(1e6 / perSpan).toFixed(0)} spans/s per core for the service alone)`);
      console.log(
        `PostgreSQL CPU (the service's backends): ${((ingestDb / ingested) * 1e6).toFixed(0)} µs per span; ` +
          `baseline's backends: ${((baseDb / baseSpans) * 1e6).toFixed(0)} µs per span`,
      );
      // The senders share the machine: what they spend building and encoding batches is CPU the
      // service and the database do not get.
      console.log(`senders (this process: build + encode + HTTP/2): ${((benchCpu.user + benchCpu.system) / ingested).toFixed(0)} µs per span`);
    }
    console.log(`load average during the run: ${(await import("node:os")).loadavg().map((l) => l.toFixed(1)).join(", ")} on ${(await import("node:os")).cpus().length} cores`);
  } finally {
    clearInterval(refresh);
    session.close();
  }
} finally {
  await pool.end();
  await service?.stop();
  // An autovacuum worker in the database makes the forced drop fail for a non-superuser: retry.
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query(`drop database if exists ${dbName} with (force)`);
      break;
    } catch (err) {
      if (attempt === 10) throw err;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  await admin.end();
}

// Sequential (concurrency 1) timing of POST /api/agents/send against a running system + direct stub.
import { SignJWT } from "jose";
const [port, stubPort, taskId, n = "300"] = process.argv.slice(2);
const callerSecret = "bench-secret-that-is-long-enough-0123456789abcdef";
const token = await new SignJWT({ tenant_id: "bench", user_id: "bench", roles: ["admin"] }).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("1h").sign(new TextEncoder().encode(callerSecret));
const via = { url: `http://127.0.0.1:${port}/api/agents/send`, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ user_id: "bench", session_key: "user:bench:bench", message: "hello", task_id: taskId }) };
const direct = { url: `http://127.0.0.1:${stubPort}/v1/chat/completions`, headers: { authorization: "Bearer x", "content-type": "application/json" }, body: JSON.stringify({ model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, messages: [{ role: "system", content: "You are a terse assistant." }, { role: "user", content: "hello" }] }) };
async function series(r, count) {
  const t = []; let last;
  for (let i = 0; i < count; i++) { const s = performance.now(); const res = await fetch(r.url, { method: "POST", headers: r.headers, body: r.body }); last = await res.text(); if (res.status !== 200) throw new Error(res.status + last); t.push(performance.now() - s); }
  t.sort((a, b) => a - b); return { p50: t[Math.floor(t.length / 2)], p90: t[Math.floor(t.length * 0.9)], mean: t.reduce((a, b) => a + b) / t.length, last };
}
await series(direct, 50); await series(via, 50);
const d = await series(direct, Number(n)); const v = await series(via, Number(n));
console.log(`direct p50 ${d.p50.toFixed(2)} p90 ${d.p90.toFixed(2)} | via p50 ${v.p50.toFixed(2)} p90 ${v.p90.toFixed(2)} mean ${v.mean.toFixed(2)} | added p50 ${(v.p50 - d.p50).toFixed(2)}`);
const traceId = JSON.parse(v.last).trace_id ?? JSON.parse(v.last).traceId;
await new Promise((r) => setTimeout(r, 1500));
const tr = await (await fetch(`http://127.0.0.1:${port}/traces/${traceId}`, { headers: { authorization: `Bearer ${token}` } })).json();
console.log(JSON.stringify(tr).slice(0, 300));
const spans = tr.trace?.spans ?? tr.spans ?? [];
const t0 = Math.min(...spans.map((s) => Date.parse(s.startTime ?? s.start_time)));
for (const s of spans.sort((a, b) => Date.parse(a.startTime ?? a.start_time) - Date.parse(b.startTime ?? b.start_time))) console.log(`${String(Date.parse(s.startTime ?? s.start_time) - t0).padStart(5)} ${String(s.durationMs ?? s.duration_ms ?? "").padStart(8)}  ${s.name}`);

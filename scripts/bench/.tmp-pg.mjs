import pg from "pg";
const c = new pg.Client("postgres://clasper:clasper@127.0.0.1:5432/clasper_test"); await c.connect();
await c.query("create temp table if not exists x (a int)");
await c.query("create table if not exists public.tmp_commit_probe (a int)");
for (const [name, fn] of [["select1", () => c.query("select 1")], ["autocommit insert", () => c.query("insert into public.tmp_commit_probe values (1)")], ["begin/insert/commit", async () => { await c.query("begin"); await c.query("insert into public.tmp_commit_probe values (1)"); await c.query("commit"); }]]) {
  const t = []; for (let i = 0; i < 200; i++) { const s = performance.now(); await fn(); t.push(performance.now() - s); }
  t.sort((a, b) => a - b); console.log(name, t[100].toFixed(3));
}
await c.query("drop table public.tmp_commit_probe"); await c.end();

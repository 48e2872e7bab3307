// One process of the two-process budget race (test/budget-race.test.ts). Plain JavaScript so it
// runs under bare Node: it imports the governance store from the build (`npx tsc -b`) and opens
// its own pg pool to the shared database.
//
// argv: <database url> <mode: batched|atomic|atomic-tx|naive> <tenant> <count> <amount micros> <id prefix> <default limit micros>
// batched calls the store as the RPC handlers do (through the BudgetBatcher: concurrent calls
// share batch calls); atomic calls the single-item store function with the Kysely handle
// (autocommit); atomic-tx inside a transaction of the caller's, as Preflight does when it redeems
// an approval.
// Prints "ready" once its pool is connected, waits for one line on stdin (the shared start signal),
// fires <count> reservations at once, then prints one JSON line {reserved: [ids], denied, errors}.
import { createInterface } from "node:readline";
import { sql } from "kysely";
import { createDatabase, withTransaction } from "@clasper/db";
import { BudgetBatcher } from "../../dist/src/budget-batcher.js";
import { reserveBudget } from "../../dist/src/store/budgets.js";
import { naiveReserve } from "./naive-budget.mjs";

const [url, mode, tenantId, countText, amountText, prefix, defaultLimitText] = process.argv.slice(2);
const count = Number(countText);
const amount = BigInt(amountText);
const defaults = { limitMicros: BigInt(defaultLimitText), hardLimit: true, period: "monthly", alertThreshold: 0.8 };
const POOL = 25;

const database = await createDatabase({ url, poolMax: POOL });
const db = database.forSchema("governance");
const budgets = new BudgetBatcher(db);
// Open every pooled connection before the signal, so the burst is not serialized by connects.
await Promise.all(Array.from({ length: POOL }, () => sql`select pg_sleep(0.05)`.execute(database.kysely)));
process.stdout.write("ready\n");
const signal = createInterface({ input: process.stdin });
await new Promise((resolve) => signal.once("line", resolve));
signal.close();
process.stdin.destroy();

const reserveOne = async (i) => {
  const executionId = `${prefix}-${i}`;
  const now = new Date();
  if (mode === "naive") return naiveReserve(db, tenantId, executionId, amount, now);
  const input = { executionId, amountMicros: amount, defaults, now };
  const outcome =
    mode === "batched"
      ? await budgets.reserve(tenantId, input)
      : mode === "atomic-tx"
        ? await withTransaction(db, (trx) => reserveBudget(trx, tenantId, input))
        : await reserveBudget(db, tenantId, input);
  return outcome.status === "reserved" ? outcome.reservation.reservation_id : undefined;
};
const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => reserveOne(i)));
const reserved = [];
let denied = 0;
const errors = [];
for (const r of results) {
  if (r.status === "rejected") errors.push(String(r.reason?.message ?? r.reason));
  else if (r.value) reserved.push(r.value);
  else denied++;
}
process.stdout.write(JSON.stringify({ reserved, denied, errors }) + "\n");
await database.close();

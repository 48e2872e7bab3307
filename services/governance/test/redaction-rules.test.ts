import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { errorInfoOf } from "@clasper/core";
import { freshDatabase, testBackendFromEnv, type FreshDatabase } from "@clasper/db/testing";
import {
  CustomRedactionRuleSchema,
  GetRedactionRulesRequestSchema,
  PiiPattern,
  RedactionStrategy,
  UpdateRedactionRulesRequestSchema,
  type UpdateRedactionRulesRequest,
} from "@clasper/proto";
import { RedactionRulesHandlers } from "../src/handlers/redaction-rules.js";
import { listAuditEntries } from "../src/store/audit.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";
import { findRedactionRules, replaceRedactionRules } from "../src/store/redaction.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { callerContext } from "./support/caller.js";

let database: FreshDatabase;
let db: Kysely<GovernanceDatabase>;
let handlers: RedactionRulesHandlers;
beforeAll(async () => {
  database = await freshDatabase("governance");
  db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
  handlers = new RedactionRulesHandlers(db);
});
afterAll(async () => {
  await database?.drop();
});

const change = { enabled: true, piiPatterns: ["email"], strategy: "mask" as const, customRules: [] };

function update(tenantId: string, init: Partial<UpdateRedactionRulesRequest>) {
  return handlers.updateRedactionRules(create(UpdateRedactionRulesRequestSchema, init), callerContext({ tenantId, userId: "alice" }));
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe(`redaction rules store (${testBackendFromEnv()})`, () => {
  it("starts at version 1 and bumps the version on every write", async () => {
    const first = await replaceRedactionRules(db, "s-versions", change, "alice");
    const second = await replaceRedactionRules(db, "s-versions", { ...change, enabled: false }, "bob");
    expect(first).toMatchObject({ version: 1n, enabled: true, pii_patterns: ["email"], updated_by: "alice" });
    expect(second).toMatchObject({ version: 2n, enabled: false, updated_by: "bob" });
  });

  it("writes with an expected version only while it is current", async () => {
    await replaceRedactionRules(db, "s-cas", change, "alice");
    expect(await replaceRedactionRules(db, "s-cas", change, "alice", 1n)).toMatchObject({ version: 2n });
    expect(await replaceRedactionRules(db, "s-cas", change, "alice", 1n)).toBeUndefined();
    expect((await findRedactionRules(db, "s-cas"))?.version).toBe(2n);
  });

  it("gives concurrent writers distinct versions", async () => {
    const rows = await Promise.all(Array.from({ length: 8 }, (_, i) => replaceRedactionRules(db, "s-race", { ...change, piiPatterns: [`p${i}`] }, "w")));
    expect(rows.map((r) => r!.version).sort((a, b) => Number(a - b))).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  });
});

describe("GetRedactionRules / UpdateRedactionRules handlers", () => {
  it("answers the defaults at version 0 for a tenant that never set rules", async () => {
    const res = await handlers.getRedactionRules(create(GetRedactionRulesRequestSchema), callerContext({ tenantId: "h-fresh" }));
    expect(res.rules).toMatchObject({ enabled: true, piiPatterns: [], strategy: RedactionStrategy.MASK, customRules: [], version: 0n, updatedBy: "" });
  });

  it("round-trips patterns, strategy and custom rules, and records who changed them", async () => {
    const rule = create(CustomRedactionRuleSchema, { name: "ticket_id", regex: "TCK-[0-9]{6}", strategy: RedactionStrategy.HASH, replacement: "" });
    const plain = create(CustomRedactionRuleSchema, { name: "order_no", regex: "ORD[0-9]+", replacement: "[ORDER]" });
    const res = await update("h-rt", { piiPatterns: [PiiPattern.EMAIL, PiiPattern.PHONE_US], strategy: RedactionStrategy.DROP, customRules: [rule, plain] });
    expect(res.rules).toMatchObject({ enabled: true, piiPatterns: [PiiPattern.EMAIL, PiiPattern.PHONE_US], strategy: RedactionStrategy.DROP, version: 1n, updatedBy: "alice" });
    expect(res.rules?.customRules.map((r) => [r.name, r.regex, r.strategy, r.replacement])).toEqual([
      ["ticket_id", "TCK-[0-9]{6}", RedactionStrategy.HASH, ""],
      ["order_no", "ORD[0-9]+", RedactionStrategy.UNSPECIFIED, "[ORDER]"],
    ]);
    const audit = await listAuditEntries(db, "h-rt", { eventType: "config_change" }, { limit: 10 });
    expect(audit.entries).toHaveLength(1);
    expect(audit.entries[0]).toMatchObject({ actor: "alice", data: { action: "redaction_rules_updated", version: "1", strategy: "drop", pii_patterns: ["email", "phone_us"] } });
    const read = await handlers.getRedactionRules(create(GetRedactionRulesRequestSchema), callerContext({ tenantId: "h-rt" }));
    expect(read.rules).toEqual(res.rules);
    // Another tenant does not see them.
    const other = await handlers.getRedactionRules(create(GetRedactionRulesRequestSchema), callerContext({ tenantId: "h-rt-other" }));
    expect(other.rules?.version).toBe(0n);
  });

  it("stores the summarize strategy, for the set and for a rule", async () => {
    const rule = create(CustomRedactionRuleSchema, { name: "ticket_id", regex: "TCK-[0-9]{6}", strategy: RedactionStrategy.SUMMARIZE });
    const res = await update("h-sum", { strategy: RedactionStrategy.SUMMARIZE, customRules: [rule] });
    expect(res.rules).toMatchObject({ strategy: RedactionStrategy.SUMMARIZE, version: 1n });
    expect(res.rules?.customRules[0]?.strategy).toBe(RedactionStrategy.SUMMARIZE);
    const read = await handlers.getRedactionRules(create(GetRedactionRulesRequestSchema), callerContext({ tenantId: "h-sum" }));
    expect(read.rules).toEqual(res.rules);
  });

  it("rejects an invalid custom rule naming its index and field", async () => {
    const good = create(CustomRedactionRuleSchema, { name: "good", regex: "abc" });
    const cases: [ReturnType<typeof create<typeof CustomRedactionRuleSchema>>, string, RegExp][] = [
      [create(CustomRedactionRuleSchema, { name: "bad", regex: "(a|b" }), "custom_rules[1].regex", /invalid RE2 pattern/],
      [create(CustomRedactionRuleSchema, { name: "bad", regex: "(a)\\1" }), "custom_rules[1].regex", /backreferences/],
      [create(CustomRedactionRuleSchema, { name: "bad", regex: "x*" }), "custom_rules[1].regex", /empty string/],
      [create(CustomRedactionRuleSchema, { name: "email", regex: "x+" }), "custom_rules[1].name", /built-in detector/],
      [create(CustomRedactionRuleSchema, { name: "good", regex: "x+" }), "custom_rules[1].name", /duplicate/],
    ];
    for (const [bad, field, message] of cases) {
      const err = await rejection(update("h-bad", { customRules: [good, bad] }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(errorInfoOf(err)?.field).toBe(field);
      expect(err.rawMessage).toMatch(message);
    }
    // Nothing was stored by the refused writes.
    expect(await findRedactionRules(db, "h-bad")).toBeUndefined();
  });

  it("refuses a stale expected_version with Aborted (409) and keeps the newer rules", async () => {
    await update("h-cas", { enabled: false });
    await update("h-cas", { enabled: true, expectedVersion: 1n });
    const err = await rejection(update("h-cas", { enabled: false, expectedVersion: 1n }));
    expect(err.code).toBe(Code.Aborted);
    expect(errorInfoOf(err)).toMatchObject({ code: "version_conflict", field: "expected_version" });
    expect(await findRedactionRules(db, "h-cas")).toMatchObject({ version: 2n, enabled: true });
    // The refused write left no audit entry: two changes, two records.
    expect((await listAuditEntries(db, "h-cas", { eventType: "config_change" }, { limit: 10 })).total).toBe(2);
  });
});

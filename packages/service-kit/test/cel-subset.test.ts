import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { ListTracesRequestSchema } from "@clasper/proto";
import { compileCelSubset, NotInSubset } from "../src/cel-subset.js";

const holds = (expression: string, init: Record<string, unknown>) =>
  compileCelSubset(ListTracesRequestSchema, expression)(create(ListTracesRequestSchema, init) as unknown as Record<string, unknown>);

describe("compileCelSubset", () => {
  it("evaluates field reads, presence, literals and comparisons with CEL's precedence", () => {
    const rule = "!has(this.min_cost_micros) || !has(this.max_cost_micros) || this.min_cost_micros <= this.max_cost_micros";
    expect(holds(rule, {})).toBe(true);
    expect(holds(rule, { minCostMicros: 5n, maxCostMicros: 5n })).toBe(true);
    expect(holds(rule, { minCostMicros: 6n, maxCostMicros: 5n })).toBe(false);
    // An explicitly set zero is present.
    expect(holds("has(this.min_cost_micros)", { minCostMicros: 0n })).toBe(true);
    expect(holds("has(this.label_key)", { labelKey: "" })).toBe(false);
    expect(holds("this.label_value == '' || this.label_key != \"\"", { labelValue: "v" })).toBe(false);
    // `!` binds tighter than a relation, && tighter than ||.
    expect(holds("!(this.limit == 0) && this.limit <= 200 || this.offset > 3", { limit: 0, offset: 4 })).toBe(true);
    expect(holds("!(this.limit == 0) && (this.limit <= 200 || this.offset > 3)", { limit: 0, offset: 4 })).toBe(false);
    // An enum reads as its number; an unset optional as its zero value.
    expect(holds("this.status == 3 && this.max_cost_micros == 0", { status: 3 })).toBe(true);
  });

  it.each([
    "this.limit + 1 > 2",
    "this.label_key < 'a'",
    "size(this.label_key) > 0",
    "this.label_key.size() > 0",
    "this.start_time < this.end_time",
    "this.limit < 2 < 3",
    "this.limit == 'x'",
    "this.label_key == 1",
    "this.limit > -1",
    "this.limit == 1u",
    "this.limit > 1.5",
    "this.limit == 007",
    "this.nope == 1",
    "has(this.label_key) || 'x'",
    "this.label_value == 'a\\'b'",
    "this.limit",
    "!this.limit == 0",
    "has(this.label_key) this.limit == 1",
  ])("refuses %s, which protovalidate keeps", (expression) => {
    expect(() => compileCelSubset(ListTracesRequestSchema, expression)).toThrow(NotInSubset);
  });
});

import { describe, expect, it } from "vitest";
import { GovernanceService, TraceService, RetentionStorageMode, SamplingStrategy } from "@clasper/proto";
import { bindRequest } from "../src/bind.js";
import { FieldError, protoToRestJson } from "../src/json-shape.js";
import { restRoutes, type RestRoute } from "../src/route-table.js";

const routes = restRoutes([TraceService]);
const route = (verb: string, template: string): RestRoute => {
  const found = routes.find((r) => r.verb === verb && r.template === template);
  if (!found) throw new Error(`no route ${verb} ${template}`);
  return found;
};
const noQuery = new URLSearchParams();

function fieldErrorOf(fn: () => unknown): FieldError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FieldError) return err;
    throw err;
  }
  throw new Error("expected a FieldError");
}

describe("REST request binding", () => {
  const setPolicy = route("POST", "/retention/policy");

  it("binds a documented body with lower-case enum names", () => {
    const message = bindRequest(setPolicy, {}, noQuery, { retention_days: 30, sampling_strategy: "errors_only", storage_mode: "summary" });
    expect(message).toMatchObject({ retentionDays: 30, samplingStrategy: SamplingStrategy.ERRORS_ONLY, storageMode: RetentionStorageMode.SUMMARY });
  });

  it("accepts numeric strings for integers, as proto3 JSON does", () => {
    expect(bindRequest(setPolicy, {}, noQuery, { retention_days: "45" })).toMatchObject({ retentionDays: 45 });
  });

  it.each([
    [{ retention_days: "thirty" }, "retention_days", "must be an integer"],
    [{ retention_days: 1.5 }, "retention_days", "must be an integer"],
    [{ retention_days: 2 ** 40 }, "retention_days", "between"],
    [{ sampling_strategy: "sometimes" }, "sampling_strategy", 'unknown value "sometimes"'],
    [{ sampling_strategy: 3 }, "sampling_strategy", "must be one of"],
    [{ sample_rate: "lots" }, "sample_rate", "must be a number"],
    [{ tenant_id: "other" }, "tenant_id", "unknown field"],
    [{ __proto__x: 1 }, "__proto__x", "unknown field"],
  ])("rejects %j naming %s", (body, field, reason) => {
    const err = fieldErrorOf(() => bindRequest(setPolicy, {}, noQuery, body));
    expect(err.field).toBe(field);
    expect(err.reason).toContain(reason);
  });

  it("takes a 64-bit integer as a string or as a JSON number only while the number is exact", () => {
    const setBudget = restRoutes([GovernanceService]).find((r) => r.verb === "POST" && r.template === "/budget")!;
    expect(bindRequest(setBudget, {}, noQuery, { limit_micros: Number.MAX_SAFE_INTEGER })).toMatchObject({ limitMicros: 9007199254740991n });
    expect(bindRequest(setBudget, {}, noQuery, { limit_micros: "9007199254740993" })).toMatchObject({ limitMicros: 9007199254740993n });
    // JSON.parse has already rounded 9007199254740993 to ...992: refused, not stored as another amount.
    const err = fieldErrorOf(() => bindRequest(setBudget, {}, noQuery, JSON.parse('{"limit_micros": 9007199254740993}')));
    expect(err.field).toBe("limit_micros");
    expect(err.reason).toContain("must be a string");
  });

  it("rejects a body that is not an object", () => {
    expect(fieldErrorOf(() => bindRequest(setPolicy, {}, noQuery, [1, 2])).field).toBe("(body)");
    expect(fieldErrorOf(() => bindRequest(setPolicy, {}, noQuery, "x")).field).toBe("(body)");
  });

  it("binds path parameters and query strings on GET routes", () => {
    const getTrace = route("GET", "/traces/{trace_id}");
    expect(bindRequest(getTrace, { trace_id: "abc" }, noQuery, undefined)).toMatchObject({ traceId: "abc" });
    const list = route("GET", "/traces");
    const message = bindRequest(list, {}, new URLSearchParams("limit=20&workspace_id=w1"), undefined);
    expect(message).toMatchObject({ limit: 20, workspaceId: "w1" });
  });

  it("rejects unknown and repeated query parameters by name", () => {
    const list = route("GET", "/traces");
    expect(fieldErrorOf(() => bindRequest(list, {}, new URLSearchParams("tenant_id=b"), undefined)).field).toBe("tenant_id");
    expect(fieldErrorOf(() => bindRequest(list, {}, new URLSearchParams("limit=1&limit=2"), undefined)).field).toBe("limit");
    expect(fieldErrorOf(() => bindRequest(list, {}, new URLSearchParams("limit=many"), undefined)).field).toBe("limit");
  });

  it("names the field of a malformed timestamp", () => {
    const list = route("GET", "/traces");
    const err = fieldErrorOf(() => bindRequest(list, {}, new URLSearchParams("start_time=yesterday"), undefined));
    expect(err.field).toBe("start_time");
    expect(err.reason).toContain("RFC 3339");
  });
});

describe("REST response rendering", () => {
  it("writes enums as lower-case names and unset enums as null", () => {
    const schema = route("POST", "/retention/policy").method.output;
    expect(protoToRestJson(schema, { policy: { retention_days: 5, sampling_strategy: "SAMPLING_STRATEGY_ERRORS_ONLY", storage_mode: "RETENTION_STORAGE_MODE_UNSPECIFIED" } })).toEqual({
      policy: { retention_days: 5, sampling_strategy: "errors_only", storage_mode: null },
    });
  });
});

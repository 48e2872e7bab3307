import type { Migration } from "kysely";
import * as retentionPolicies from "./20261124000000_retention_policies.js";
import * as spansAndTraces from "./20261124010000_spans_and_traces.js";

/** Every migration of the trace schema, in order. */
export const migrations: Record<string, Migration> = {
  "20261124000000_retention_policies": retentionPolicies,
  "20261124010000_spans_and_traces": spansAndTraces,
};

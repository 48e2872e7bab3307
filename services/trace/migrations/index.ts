import type { Migration } from "kysely";
import * as retentionPolicies from "./20261124000000_retention_policies.js";
import * as spansAndTraces from "./20261124010000_spans_and_traces.js";
import * as retentionRuns from "./20261125000000_retention_runs.js";
import * as traceAssembly from "./20261125010000_trace_assembly.js";
import * as ingestStorage from "./20261126000000_ingest_storage.js";
import * as traceListIndexes from "./20261126010000_trace_list_indexes.js";
import * as spanPayload from "./20261127000000_span_payload.js";

/** Every migration of the trace schema, in order. */
export const migrations: Record<string, Migration> = {
  "20261124000000_retention_policies": retentionPolicies,
  "20261124010000_spans_and_traces": spansAndTraces,
  "20261125000000_retention_runs": retentionRuns,
  "20261125010000_trace_assembly": traceAssembly,
  "20261126000000_ingest_storage": ingestStorage,
  "20261126010000_trace_list_indexes": traceListIndexes,
  "20261127000000_span_payload": spanPayload,
};

import type { ColumnType, Generated } from "kysely";

/** Tables of the `trace` schema, as the migrations create them. */
export interface TraceDatabase {
  retention_policies: RetentionPoliciesTable;
  retention_runs: RetentionRunsTable;
  spans: SpansTable;
  traces: TracesTable;
  trace_annotations: TraceAnnotationsTable;
  sampled_out_traces: SampledOutTracesTable;
}

export type SamplingStrategyValue = "full" | "sampled" | "errors_only";
export type StorageModeValue = "full" | "summary" | "minimal";

export interface RetentionPoliciesTable {
  tenant_id: string;
  retention_days: number;
  sampling_strategy: SamplingStrategyValue;
  storage_mode: StorageModeValue;
  sample_rate: number;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

/** The last retention enforcement per tenant (migration 20261125000000_retention_runs). */
export interface RetentionRunsTable {
  tenant_id: string;
  last_enforced_at: Date;
  last_cutoff: Date;
  last_deleted: ColumnType<bigint, bigint | number, bigint | number>;
}

export interface SpansTable {
  tenant_id: string;
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  kind: number;
  operation: string | null;
  /** Written as µs-precision ISO strings (a Date would round to ms). */
  start_time: ColumnType<Date, Date | string, Date | string>;
  end_time: ColumnType<Date, Date | string, Date | string>;
  status_code: number;
  status_message: string | null;
  /**
   * Attribute key → value (string | number | boolean | array) and events as jsonb: rows written
   * before migration 20261127000000_span_payload; null in later rows, which use `payload`.
   */
  attributes: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  events: ColumnType<SpanEventRow[] | null, string | null | undefined, string | null>;
  service_name: string | null;
  received_at: Generated<Date>;
  /** Attributes and events as encoded by store/span-payload.ts (migration 20261127000000). */
  payload: ColumnType<Uint8Array | null, Uint8Array | null | undefined, Uint8Array | null>;
}

export interface SpanEventRow {
  name: string;
  time: string;
  attributes: Record<string, unknown>;
}

export interface TracesTable {
  tenant_id: string;
  trace_id: string;
  started_at: ColumnType<Date, Date | string, Date | string>;
  completed_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  duration_ms: ColumnType<bigint, bigint | number | undefined, bigint | number>;
  /** TraceStatus number: 1 running, 2 success, 3 error, 4 blocked. */
  status: number;
  execution_id: string | null;
  workspace_id: string | null;
  environment: string | null;
  agent_role: string | null;
  user_id: string | null;
  model: string | null;
  provider: string | null;
  workspace_version_hash: string | null;
  skill_versions: ColumnType<Record<string, string>, string | undefined, string>;
  input_tokens: ColumnType<bigint, bigint | number | undefined, bigint | number>;
  output_tokens: ColumnType<bigint, bigint | number | undefined, bigint | number>;
  cache_read_tokens: ColumnType<bigint, bigint | number | undefined, bigint | number>;
  cache_write_tokens: ColumnType<bigint, bigint | number | undefined, bigint | number>;
  reasoning_tokens: ColumnType<bigint, bigint | number | undefined, bigint | number>;
  cost_micros: ColumnType<bigint, bigint | number | undefined, bigint | number>;
  llm_call_count: ColumnType<number, number | undefined, number>;
  tool_call_count: ColumnType<number, number | undefined, number>;
  span_count: ColumnType<number, number | undefined, number>;
  error_code: string | null;
  error_message: string | null;
  labels: ColumnType<Record<string, string>, string | undefined, string>;
  task_id: string | null;
  document_id: string | null;
  message_id: string | null;
  risk_score: number | null;
  /** RiskLevel number: 1 low .. 4 critical. */
  risk_level: number | null;
  decision_id: string | null;
  redaction_types: ColumnType<string[], string[] | undefined, string[]>;
  source: string | null;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  // Migration 20261125010000_trace_assembly (written by span ingest, services/trace/src/ingest).
  input_message: string | null;
  input_history_count: number | null;
  output_message: string | null;
  blocked: ColumnType<boolean, boolean | undefined, boolean>;
  /** Pick keys: which span supplied a group of fields (see the migration); internal to ingest. */
  root_span_key: string | null;
  model_span_key: string | null;
  error_span_key: string | null;
  governance_span_key: string | null;
  decision_span_key: string | null;
}

/** Traces the sampling strategy dropped on completion; later spans of them are dropped too. */
export interface SampledOutTracesTable {
  tenant_id: string;
  trace_id: string;
  decided_at: Generated<Date>;
}

export interface TraceAnnotationsTable {
  tenant_id: string;
  annotation_id: string;
  trace_id: string;
  key: string;
  value: string;
  created_by: string | null;
  created_at: Generated<Date>;
}

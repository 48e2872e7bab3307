import type { ColumnType, Generated } from "kysely";

/** Tables of the `trace` schema, as the migrations create them. */
export interface TraceDatabase {
  retention_policies: RetentionPoliciesTable;
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

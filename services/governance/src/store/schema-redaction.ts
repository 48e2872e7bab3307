import type { ColumnType, Generated } from "kysely";

/**
 * Tables of the risk / forecast / redaction-rules area of the governance schema. Risk scoring
 * and GetMe keep no state; forecasts read the tenant's price overrides.
 */
export interface RedactionTables {
  redaction_rules: RedactionRulesTable;
  model_price_overrides: ModelPriceOverridesTable;
}

export type RedactionStrategyValue = "mask" | "hash" | "drop" | "summarize";

/** One tenant-defined rule as stored (the proto CustomRedactionRule in snake_case). */
export interface StoredCustomRule {
  name: string;
  regex: string;
  /** Absent = the rule set's strategy. */
  strategy?: RedactionStrategyValue;
  /** Absent = "[NAME]". */
  replacement?: string;
}

/** One row per tenant that ever changed its rules; a tenant without a row gets the defaults. */
export interface RedactionRulesTable {
  tenant_id: string;
  enabled: boolean;
  /** Built-in detector names (REST spelling, e.g. "email"); empty = all. */
  pii_patterns: ColumnType<string[], string, string>;
  strategy: RedactionStrategyValue;
  custom_rules: ColumnType<StoredCustomRule[], string, string>;
  /** 1 on first write, +1 on every change: the trace service's cache key. */
  version: ColumnType<bigint, bigint | number, bigint | number>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  updated_by: string;
}

/**
 * A tenant's own price for a model (negotiated rates, self-hosted models). Set through SQL for
 * now (the contract has no RPC for it); see docs/GOVERNANCE.md ("Cost forecast").
 */
export interface ModelPriceOverridesTable {
  tenant_id: string;
  /** "" = any provider. */
  provider: string;
  /** A model id, or "*" = the tenant's price for models the catalogue does not know. */
  model: string;
  input_per_mtok_micros: ColumnType<bigint, bigint | number, bigint | number>;
  output_per_mtok_micros: ColumnType<bigint, bigint | number, bigint | number>;
  /** null = the catalogue's cache price (or the input price when the catalogue lacks the model). */
  cache_read_per_mtok_micros: ColumnType<bigint | null, bigint | number | null | undefined, bigint | number | null>;
  cache_write_per_mtok_micros: ColumnType<bigint | null, bigint | number | null | undefined, bigint | number | null>;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

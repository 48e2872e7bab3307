import type { ColumnType, Generated } from "kysely";

/** int8 money column: bigint on both backends; bigint, number or decimal string on write. */
type Micros = ColumnType<bigint, bigint | number | string, bigint | number | string>;
type NullableMicros = ColumnType<bigint | null, bigint | number | string | null | undefined, bigint | number | string | null>;

export type BudgetPeriodValue = "daily" | "weekly" | "monthly" | "none";
export type ReservationStatusValue = "open" | "settled" | "released" | "expired";

/** One budget per tenant (migration 20261124020000_budgets). */
export interface BudgetsTable {
  tenant_id: string;
  limit_micros: Micros;
  /** Settled spend in the current period. */
  spent_micros: ColumnType<bigint, bigint | number | string | undefined, bigint | number | string>;
  /** Sum of the amounts of the tenant's open reservations. */
  reserved_micros: ColumnType<bigint, bigint | number | string | undefined, bigint | number | string>;
  period: BudgetPeriodValue;
  period_start: Date;
  /** Null for period "none". */
  period_end: Date | null;
  hard_limit: boolean;
  alert_threshold: number;
  is_default: ColumnType<boolean, boolean | undefined, boolean>;
  warned_period_start: ColumnType<Date | null, Date | null | undefined, Date | null>;
  exceeded_period_start: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

/** A hold of worst-case cost for one execution, until settled, released or expired. */
export interface BudgetReservationsTable {
  tenant_id: string;
  reservation_id: string;
  execution_id: string;
  trace_id: string | null;
  amount_micros: Micros;
  status: ReservationStatusValue;
  created_at: Date;
  expires_at: Date;
  closed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  release_reason: ColumnType<string | null, string | null | undefined, string | null>;
  actual_micros: NullableMicros;
  spent_after_micros: NullableMicros;
  remaining_after_micros: NullableMicros;
  warning: ColumnType<string | null, string | null | undefined, string | null>;
  threshold_crossed: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
  exceeded: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
}

/** Tables of the budgets area of the governance schema. */
export interface BudgetTables {
  budgets: BudgetsTable;
  budget_reservations: BudgetReservationsTable;
}

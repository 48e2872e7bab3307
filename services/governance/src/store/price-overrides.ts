import type { Kysely, Selectable, Transaction } from "kysely";
import type { GovernanceDatabase } from "./schema.js";
import type { ModelPriceOverridesTable } from "./schema-redaction.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export type PriceOverrideRow = Selectable<ModelPriceOverridesTable>;

/** Model name of the tenant's fallback price for models the catalogue does not know. */
export const TENANT_DEFAULT_MODEL = "*";

export interface PriceOverrideInit {
  /** "" or absent = any provider. */
  provider?: string;
  model: string;
  inputPerMtokMicros: bigint;
  outputPerMtokMicros: bigint;
  cacheReadPerMtokMicros?: bigint | null;
  cacheWritePerMtokMicros?: bigint | null;
}

export interface PriceOverrideMatch {
  /** The override for this model (provider-specific before any-provider), if any. */
  exact: PriceOverrideRow | undefined;
  /** The tenant's fallback price ("*"), if any. */
  fallback: PriceOverrideRow | undefined;
}

/** The tenant's overrides that can price `model` (from `provider`, when known), in one query. */
export async function findPriceOverrides(
  db: Executor,
  tenantId: string,
  model: string,
  provider: string | undefined,
): Promise<PriceOverrideMatch> {
  const providers = provider ? ["", provider] : [""];
  const rows = await db
    .selectFrom("model_price_overrides")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("model", "in", [model, TENANT_DEFAULT_MODEL])
    .where("provider", "in", providers)
    .execute();
  const pick = (name: string) =>
    rows.find((r) => r.model === name && r.provider !== "") ?? rows.find((r) => r.model === name && r.provider === "");
  return { exact: pick(model), fallback: pick(TENANT_DEFAULT_MODEL) };
}

export async function listPriceOverrides(db: Executor, tenantId: string): Promise<PriceOverrideRow[]> {
  return db
    .selectFrom("model_price_overrides")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .orderBy("provider")
    .orderBy("model")
    .execute();
}

export async function upsertPriceOverride(db: Executor, tenantId: string, init: PriceOverrideInit): Promise<PriceOverrideRow> {
  const prices = {
    input_per_mtok_micros: init.inputPerMtokMicros,
    output_per_mtok_micros: init.outputPerMtokMicros,
    cache_read_per_mtok_micros: init.cacheReadPerMtokMicros ?? null,
    cache_write_per_mtok_micros: init.cacheWritePerMtokMicros ?? null,
  };
  return db
    .insertInto("model_price_overrides")
    .values({ tenant_id: tenantId, provider: init.provider ?? "", model: init.model, ...prices })
    .onConflict((oc) => oc.columns(["tenant_id", "provider", "model"]).doUpdateSet({ ...prices, updated_at: new Date() }))
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deletePriceOverride(db: Executor, tenantId: string, model: string, provider = ""): Promise<boolean> {
  const result = await db
    .deleteFrom("model_price_overrides")
    .where("tenant_id", "=", tenantId)
    .where("provider", "=", provider)
    .where("model", "=", model)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

import type { Kysely, Transaction } from "kysely";
import { invalidField } from "@clasper/core";
import { catalogPrice, splitModel, type ModelPrice } from "./forecast.js";
import { findPriceOverrides, type PriceOverrideRow } from "./store/price-overrides.js";
import type { GovernanceDatabase } from "./store/schema.js";

type Executor = Kysely<GovernanceDatabase> | Transaction<GovernanceDatabase>;

export interface ResolvedPrice {
  price: ModelPrice;
  /** False when only the tenant's fallback price ("*") could price the model. */
  known: boolean;
}

function fromOverride(row: PriceOverrideRow, provider: string, model: string, catalog: ModelPrice | undefined, source: ModelPrice["source"]): ModelPrice {
  return {
    provider,
    model,
    source,
    inputPerMtokMicros: row.input_per_mtok_micros,
    outputPerMtokMicros: row.output_per_mtok_micros,
    // An override that names no cache price keeps the catalogue's, or charges cache as input.
    cacheReadPerMtokMicros: row.cache_read_per_mtok_micros ?? catalog?.cacheReadPerMtokMicros ?? row.input_per_mtok_micros,
    cacheWritePerMtokMicros: row.cache_write_per_mtok_micros ?? catalog?.cacheWritePerMtokMicros ?? row.input_per_mtok_micros,
  };
}

/**
 * The price the tenant pays for a model: its own override for that model, else pi-ai's
 * catalogue, else its fallback price ("*"); a model none of these know is bad input (`model`).
 */
export async function resolveModelPrice(db: Executor, tenantId: string, model: string, provider?: string): Promise<ResolvedPrice> {
  const catalog = catalogPrice(model, provider || undefined);
  const split = splitModel(model, provider || undefined);
  const id = catalog?.model ?? split.model;
  const from = catalog?.provider ?? split.provider;
  const overrides = await findPriceOverrides(db, tenantId, id, from);
  if (overrides.exact) return { price: fromOverride(overrides.exact, from ?? "", id, catalog, "tenant_override"), known: true };
  if (catalog) return { price: catalog, known: true };
  if (overrides.fallback) return { price: fromOverride(overrides.fallback, from ?? "", id, undefined, "tenant_default"), known: false };
  const where = provider ? ` for provider "${provider}"` : "";
  throw invalidField("model", `unknown model "${model}"${where}: not in the price catalogue and the tenant has no price for it`);
}

import type { Migration } from "kysely";
import * as retentionPolicies from "./20261124000000_retention_policies.js";

/** Every migration of the trace schema, in order. */
export const migrations: Record<string, Migration> = {
  "20261124000000_retention_policies": retentionPolicies,
};

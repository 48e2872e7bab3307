import type { Migration } from "kysely";

/** Every migration of the runtime service, in order (none yet: its RPCs answer Unimplemented). */
export const migrations: Record<string, Migration> = {};

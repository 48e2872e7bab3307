import type { Migration } from "kysely";

/** Every migration of the registry service, in order (none yet: its RPCs answer Unimplemented). */
export const migrations: Record<string, Migration> = {};

import type { ServiceModule } from "@clasper/service-kit";
import { migrations } from "../migrations/index.js";
import { build, GOVERNANCE_SCHEMA } from "./server.js";

/** The governance service (owns the `governance` schema). */
const governanceService: ServiceModule = { name: "governance", schema: GOVERNANCE_SCHEMA, migrations, build };
export default governanceService;
export { build };
// The audit chain's append, for in-process callers that hold the database (system tests seed it).
export { appendAudit, AUDIT_EVENT_TYPES, type AuditEventInput } from "./store/audit.js";

import type { ServiceModule } from "@clasper/service-kit";
import { migrations } from "../migrations/index.js";
import { build, GOVERNANCE_SCHEMA } from "./server.js";

/** The governance service (owns the `governance` schema). */
const governanceService: ServiceModule = { name: "governance", schema: GOVERNANCE_SCHEMA, migrations, build };
export default governanceService;
export { build };

import type { ServiceModule } from "@clasper/service-kit";
import { migrations } from "../migrations/index.js";
import { build, WORKSPACE_SCHEMA } from "./server.js";

/** The workspace service (owns the `workspace` schema). */
const workspaceService: ServiceModule = { name: "workspace", schema: WORKSPACE_SCHEMA, migrations, build };
export default workspaceService;
export { build };

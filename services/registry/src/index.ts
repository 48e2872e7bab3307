import type { ServiceModule } from "@clasper/service-kit";
import { migrations } from "../migrations/index.js";
import { build, REGISTRY_SCHEMA } from "./server.js";

/** The registry service (owns the `registry` schema). */
const registryService: ServiceModule = { name: "registry", schema: REGISTRY_SCHEMA, migrations, build };
export default registryService;
export { build };

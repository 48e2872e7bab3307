import type { ServiceModule } from "@clasper/service-kit";
import { migrations } from "../migrations/index.js";
import { build, RUNTIME_SCHEMA } from "./server.js";

/** The runtime service (stateless). */
const runtimeService: ServiceModule = { name: "runtime", schema: RUNTIME_SCHEMA, migrations, build };
export default runtimeService;
export { build };

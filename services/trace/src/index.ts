import type { ServiceModule } from "@clasper/service-kit";
import { migrations } from "../migrations/index.js";
import { build, TRACE_SCHEMA } from "./server.js";

/** The trace service: traces assembled from spans, queries, diff, replay, labels, retention. */
const traceService: ServiceModule = { name: "trace", schema: TRACE_SCHEMA, migrations, build };
export default traceService;
export { build, TRACE_SCHEMA };

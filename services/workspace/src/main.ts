import { createLogger } from "@clasper/telemetry";
import { exitOnSignals, runService } from "@clasper/service-kit";
import workspaceService from "./index.js";

// Standalone entry: config → db → migrations → listen → SIGTERM drain.
const running = await runService(workspaceService);
exitOnSignals(running.stop, createLogger({ serviceName: "clasper-workspace" }));

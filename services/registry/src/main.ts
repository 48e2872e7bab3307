import { createLogger } from "@clasper/telemetry";
import { exitOnSignals, failStartup, runService } from "@clasper/service-kit";
import registryService from "./index.js";

// Standalone entry: config → db → migrations → listen → SIGTERM drain.
const running = await runService(registryService).catch(failStartup);
exitOnSignals(running.stop, createLogger({ serviceName: "clasper-registry" }));

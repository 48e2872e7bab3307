import { createLogger } from "@clasper/telemetry";
import { exitOnSignals, runService } from "@clasper/service-kit";
import runtimeService from "./index.js";

// Standalone entry: config → db → migrations → listen → SIGTERM drain.
const running = await runService(runtimeService);
exitOnSignals(running.stop, createLogger({ serviceName: "clasper-runtime" }));

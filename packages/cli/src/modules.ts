import type { ServiceModule, ServiceName } from "@clasper/service-kit";
import governance from "@clasper/service-governance";
import registry from "@clasper/service-registry";
import runtime from "@clasper/service-runtime";
import trace from "@clasper/service-trace";
import workspace from "@clasper/service-workspace";

/** Every service, by name. */
export const SERVICE_MODULES: Readonly<Record<ServiceName, ServiceModule>> = { runtime, trace, governance, registry, workspace };

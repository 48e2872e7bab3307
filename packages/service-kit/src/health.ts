import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthListResponseSchema,
} from "@clasper/proto";

/** A readiness probe: resolves when the component can serve, rejects with the reason otherwise. */
export type ReadinessCheck = () => Promise<void>;

export interface HealthRegistry {
  /** Service names this process serves ("" is the whole server, per the gRPC health protocol). */
  readonly services: readonly string[];
  check(): Promise<{ ok: boolean; error?: string }>;
}

export function createHealthRegistry(services: string[], readiness: ReadinessCheck): HealthRegistry {
  return {
    services: ["", ...services],
    async check() {
      try {
        await readiness();
        return { ok: true };
      } catch (err) {
        return { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
    },
  };
}

/** grpc.health.v1.Health for one process; Watch reports the current status then re-checks every 5 s. */
export function healthRoutes(registry: HealthRegistry) {
  const statusOf = async (service: string) => {
    if (!registry.services.includes(service)) {
      throw new ConnectError(`unknown service ${service}`, Code.NotFound);
    }
    const { ok } = await registry.check();
    return ok ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  };
  return (router: ConnectRouter) => {
    router.service(Health, {
      async check(req) {
        return create(HealthCheckResponseSchema, { status: await statusOf(req.service) });
      },
      async list() {
        const { ok } = await registry.check();
        const status = ok ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
        return create(HealthListResponseSchema, {
          statuses: Object.fromEntries(
            registry.services.map((name) => [name, create(HealthCheckResponseSchema, { status })]),
          ),
        });
      },
      async *watch(req, ctx) {
        let last: ServingStatus | undefined;
        while (!ctx.signal.aborted) {
          const status = await statusOf(req.service);
          if (status !== last) {
            last = status;
            yield create(HealthCheckResponseSchema, { status });
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 5_000);
            ctx.signal.addEventListener("abort", () => {
              clearTimeout(timer);
              resolve();
            }, { once: true });
          });
        }
      },
    });
  };
}

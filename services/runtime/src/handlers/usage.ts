import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { invalidField } from "@clasper/core";
import { GetUsageResponseSchema, type GetUsageRequest, type GetUsageResponse } from "@clasper/proto";
import type { PeerClients } from "@clasper/service-kit";

const THIRTY_DAYS_MS = 30 * 86_400_000;

/**
 * GET /usage from the trace service's stored traces (GetTraceStats), so it is per tenant and
 * correct across replicas and restarts. The default window starts at the current budget period,
 * else 30 days ago.
 */
export class UsageHandlers {
  constructor(private readonly peers: PeerClients) {}

  async getUsage(req: GetUsageRequest, _ctx: HandlerContext): Promise<GetUsageResponse> {
    const end = req.endTime ? timestampDate(req.endTime) : new Date();
    let start = req.startTime ? timestampDate(req.startTime) : undefined;
    if (!start) {
      try {
        const budget = await this.peers.governance.getBudget({});
        if (budget.budget?.periodStart) start = timestampDate(budget.budget.periodStart);
      } catch (err) {
        // No budget (or no right to read it): the 30-day default window.
        if (!(err instanceof ConnectError) || (err.code !== Code.NotFound && err.code !== Code.PermissionDenied)) throw err;
      }
      start ??= new Date(end.getTime() - THIRTY_DAYS_MS);
    }
    if (start.getTime() > end.getTime()) throw invalidField("start_time", "must not be after end_time");
    const { stats } = await this.peers.trace.getTraceStats({ startTime: timestampFromDate(start), endTime: timestampFromDate(end), workspaceId: req.workspaceId });
    const input = stats?.usage?.promptTokens ?? 0n;
    const output = stats?.usage?.completionTokens ?? 0n;
    return create(GetUsageResponseSchema, {
      requestCount: stats?.totalTraces ?? 0n,
      totalInputTokens: input,
      totalOutputTokens: output,
      totalTokens: stats?.usage?.totalTokens || input + output,
      totalCostMicros: stats?.totalCostMicros ?? 0n,
      currency: "USD",
      windowStart: timestampFromDate(start),
      windowEnd: timestampFromDate(end),
    });
  }
}

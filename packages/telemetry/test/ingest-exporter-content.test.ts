import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ATTR, createIngestSpanProcessor, startTelemetry, type IngestSpan, type TelemetryEnv } from "../src/index.js";
import { startOtlpCollector, type OtlpCollector } from "./otlp-collector.js";

let collector: OtlpCollector;

beforeAll(async () => {
  collector = await startOtlpCollector();
});
beforeEach(() => {
  collector.received.length = 0;
});
afterAll(() => collector.close());

const PROMPT = "my card number is 4111 1111 1111 1111";
const COMPLETION = "noted your card";
const TOOL_ARGS = '{"query":"secret plans"}';

/**
 * One chat span with content in attributes and a gen_ai.* event, exported over OTLP and
 * delivered to the trace service by the same process; returns what each side received.
 */
async function emitChat(env: TelemetryEnv): Promise<{ otlp: string; ingested: IngestSpan[] }> {
  const telemetry = startTelemetry({ serviceName: "clasper-runtime", env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, ...env } });
  const ingested: IngestSpan[] = [];
  telemetry.addSpanProcessor(
    createIngestSpanProcessor({ tenantOf: () => "acme", send: async (_tenant, spans) => void ingested.push(...spans) }),
  );
  const span = telemetry.tracer.startSpan("chat gpt-4o-mini", {
    attributes: {
      [ATTR.operationName]: "chat",
      [ATTR.requestModel]: "gpt-4o-mini",
      [ATTR.inputMessages]: JSON.stringify([{ role: "user", parts: [{ type: "text", content: PROMPT }] }]),
      [ATTR.outputMessages]: JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: COMPLETION }] }]),
      [ATTR.toolCallArguments]: TOOL_ARGS,
    },
  });
  span.addEvent("gen_ai.content.prompt", { "gen_ai.prompt": PROMPT });
  span.addEvent("exception", { "exception.type": "RateLimited", [ATTR.outputMessage]: COMPLETION });
  span.end();
  await telemetry.shutdown();
  expect(collector.received).toHaveLength(1);
  return { otlp: collector.received[0]!.body, ingested };
}

const attributeKeys = (span: IngestSpan | undefined) => (span?.attributes ?? []).map((attribute) => attribute.key);

describe("message content on the OTLP path", () => {
  for (const env of [{}, { OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "false" }]) {
    it(`is stripped when capture is not enabled (${JSON.stringify(env)}), while the trace service still gets it`, async () => {
      const { otlp, ingested } = await emitChat(env);
      expect(otlp).toContain("chat gpt-4o-mini");
      expect(otlp).toContain('"stringValue":"gpt-4o-mini"');
      expect(otlp).toContain("RateLimited");
      for (const secret of [PROMPT, COMPLETION, "secret plans", ATTR.inputMessages, ATTR.toolCallArguments, "gen_ai.content.prompt"]) {
        expect(otlp).not.toContain(secret);
      }

      const [span] = ingested;
      expect(attributeKeys(span)).toEqual(expect.arrayContaining([ATTR.inputMessages, ATTR.outputMessages, ATTR.toolCallArguments]));
      expect(span?.events?.map((event) => event.name)).toEqual(["gen_ai.content.prompt", "exception"]);
    });
  }

  it("is exported when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true", async () => {
    const { otlp } = await emitChat({ OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "TRUE" });
    for (const content of [PROMPT, COMPLETION, "secret plans", ATTR.inputMessages, "gen_ai.content.prompt"]) {
      expect(otlp).toContain(content);
    }
  });
});

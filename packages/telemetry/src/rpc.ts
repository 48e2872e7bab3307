import { Code, ConnectError, type StreamResponse, type UnaryRequest, type StreamRequest, type UnaryResponse } from "@connectrpc/connect";

export type RpcRequest = UnaryRequest | StreamRequest;
export type RpcResponse = UnaryResponse | StreamResponse;

/** How a call ended; `code` is the Connect code name ("ok", "not_found", …) the client sees. */
export type CallOutcome = { readonly code: "ok"; readonly error?: undefined } | { readonly code: string; readonly error: unknown };

/** `package.Service/Method`, the span name the RPC semantic conventions prescribe. */
export function rpcName(req: RpcRequest): string {
  return `${req.service.typeName}/${req.method.name}`;
}

/** `/package.Service/Method`, the path a Connect or gRPC request is sent to. */
export function procedureOf(req: RpcRequest): string {
  return `/${rpcName(req)}`;
}

/**
 * The snake_case name of a Connect code ("not_found"), as on the wire. Connect's own
 * codeToString is marked private, so we derive it from the public enum.
 */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/**
 * The code a failure reaches the client with: Connect's handlers answer anything that is not a
 * ConnectError with `internal` (hiding the message), and client transports only throw ConnectErrors.
 */
function codeOf(error: unknown): Code {
  return error instanceof ConnectError ? error.code : Code.Internal;
}

export function outcomeOf(error: unknown): CallOutcome {
  return { code: codeName(codeOf(error)), error };
}

/**
 * Codes that mean the server failed rather than the caller (the set the RPC conventions mark
 * as server errors); expected failures like not_found are not alarms.
 */
const SERVER_FAULTS = new Set<Code>([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

export function isServerFault(error: unknown): boolean {
  return SERVER_FAULTS.has(codeOf(error));
}

/** Runs `fn` in a chosen async context (for example the span's); identity by default. */
export type RunIn = <T>(fn: () => T) => T;
const runHere: RunIn = (fn) => fn();

const OK: CallOutcome = Object.freeze({ code: "ok" });

/**
 * Calls `next` and reports exactly once when the call is over: a unary call when its promise
 * settles, a streaming call when its response stream ends, fails or is abandoned. Errors are
 * rethrown untouched so the interceptors above and Connect still see them. (A plain `then`, not
 * an async function: three of these wrap every RPC, and each await costs promises.)
 */
export function observeCall(
  call: () => Promise<RpcResponse>,
  onEnd: (outcome: CallOutcome) => void,
  runIn: RunIn = runHere,
): Promise<RpcResponse> {
  let pending: Promise<RpcResponse>;
  try {
    pending = runIn(call);
  } catch (error) {
    onEnd(outcomeOf(error));
    return Promise.reject(error);
  }
  return pending.then(
    (res) => {
      if (!res.stream) {
        onEnd(OK);
        return res;
      }
      return { ...res, message: observeStream(res.message, onEnd, runIn) };
    },
    (error: unknown) => {
      onEnd(outcomeOf(error));
      throw error;
    },
  );
}

/**
 * Server-streaming handlers run lazily, as the response is read; each step is pulled inside
 * `runIn` so the handler sees the span's context, and the call ends with the stream.
 */
async function* observeStream<T>(
  stream: AsyncIterable<T>,
  onEnd: (outcome: CallOutcome) => void,
  runIn: RunIn,
): AsyncGenerator<T, void, undefined> {
  const iterator = stream[Symbol.asyncIterator]();
  let outcome: CallOutcome | undefined;
  try {
    for (;;) {
      const step = await runIn(() => iterator.next());
      if (step.done) {
        outcome = OK;
        return;
      }
      yield step.value;
    }
  } catch (error) {
    outcome = outcomeOf(error);
    throw error;
  } finally {
    if (outcome === undefined) {
      // The reader stopped early (client went away or broke out of the loop): close the source
      // so the handler's own finally blocks run, and count the call as canceled.
      outcome = outcomeOf(new ConnectError("stream abandoned by the reader", Code.Canceled));
      await runIn(() => iterator.return?.());
    }
    onEnd(outcome);
  }
}

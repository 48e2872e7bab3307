import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { isSerializationFailure } from "@clasper/db";

/**
 * A transaction that lost a serialization race (after withTransaction's own retries) is the
 * caller's to retry, not an internal error: it leaves the service as Code.Aborted (HTTP 409).
 */
export function storeErrorInterceptor(): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (!(err instanceof ConnectError) && isSerializationFailure(err)) {
        throw new ConnectError("concurrent update conflict; retry the request", Code.Aborted, undefined, undefined, err);
      }
      throw err;
    }
  };
}

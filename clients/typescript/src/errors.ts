// Errors, one class per kind of failure a caller handles differently. The service answers
// `{"error": {"code", "message", "status", "field"?}}`; the class follows the status and code.

/** Base class of every error this package throws. */
export class LimitryError extends Error {
  override name = "LimitryError";
}

/** The service could not be used: an error answer, or no answer at all. */
export class APIError extends LimitryError {
  override name = "APIError";
}

/** The service could not be reached (refused, reset, DNS, TLS). */
export class APIConnectionError extends APIError {
  override name = "APIConnectionError";
  constructor(message = "Could not connect to the Limitry service", options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The service did not answer within the configured timeout. */
export class APITimeoutError extends APIConnectionError {
  override name = "APITimeoutError";
  constructor(message = "The Limitry service did not answer in time", options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface StatusErrorInit {
  status: number;
  code?: string;
  field?: string;
  body?: unknown;
  headers?: Headers;
}

/** The service answered with a 4xx or 5xx status. */
export class APIStatusError extends APIError {
  override name = "APIStatusError";
  readonly status: number;
  readonly code?: string;
  /** The JSON path of the offending field (`events[3].customerId`), when the service names one. */
  readonly field?: string;
  readonly body?: unknown;
  readonly headers?: Headers;
  constructor(message: string, init: StatusErrorInit) {
    super(message);
    this.status = init.status;
    this.code = init.code;
    this.field = init.field;
    this.body = init.body;
    this.headers = init.headers;
  }
}

/** 400: the request could not be understood (e.g. malformed JSON). */
export class BadRequestError extends APIStatusError {
  override name = "BadRequestError";
}
/** 400 `missing_required_field` / `invalid_field_value`; `field` is the JSON path. */
export class ValidationError extends BadRequestError {
  override name = "ValidationError";
}
/** 401: the API key is missing, unknown or revoked. */
export class AuthenticationError extends APIStatusError {
  override name = "AuthenticationError";
}
/** 403: the key may not do this. */
export class PermissionDeniedError extends APIStatusError {
  override name = "PermissionDeniedError";
}
/** 404: `customer_not_found`, `meter_not_found`, `route_not_found`, … */
export class NotFoundError extends APIStatusError {
  override name = "NotFoundError";
}
/** 409: the request contradicts the current state. */
export class ConflictError extends APIStatusError {
  override name = "ConflictError";
}
/** 429: the service's own API rate limit; `retryAfter` in seconds (undefined if not sent). */
export class RateLimitError extends APIStatusError {
  override name = "RateLimitError";
  readonly retryAfter?: number;
  constructor(message: string, init: StatusErrorInit & { retryAfter?: number }) {
    super(message, init);
    this.retryAfter = init.retryAfter;
  }
}
/** 5xx: the service failed; retried automatically, then thrown. */
export class InternalServerError extends APIStatusError {
  override name = "InternalServerError";
}

/** A guarded call was refused by a limit check; `check` is the answer that refused it. */
export class LimitExceededError extends LimitryError {
  override name = "LimitExceededError";
  readonly check: { allowed: boolean; reason?: string | null };
  readonly reason: string;
  constructor(check: { allowed: boolean; reason?: string | null }, message?: string) {
    const reason = check.reason ?? "limit_exceeded";
    super(message ?? `Refused by Limitry: ${reason}`);
    this.check = check;
    this.reason = reason;
  }
}

/** Seconds from a `Retry-After` header (seconds or an HTTP date). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value == null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(seconds, 0);
  const when = Date.parse(value);
  return Number.isNaN(when) ? undefined : Math.max((when - Date.now()) / 1000, 0);
}

/** The error for an error answer. */
export function statusError(status: number, body: unknown, headers: Headers): APIStatusError {
  const detail = (body as { error?: unknown } | null)?.error;
  let code: string | undefined;
  let message = `HTTP ${status}`;
  let field: string | undefined;
  if (detail && typeof detail === "object") {
    const d = detail as { code?: string; message?: string; field?: string };
    code = d.code;
    message = d.message ?? message;
    field = d.field ?? undefined;
  } else if (typeof detail === "string") {
    message = detail;
  }
  const init: StatusErrorInit = { status, code, field, body, headers };
  if (status === 400) {
    return code === "missing_required_field" || code === "invalid_field_value" || field
      ? new ValidationError(message, init)
      : new BadRequestError(message, init);
  }
  if (status === 401) return new AuthenticationError(message, init);
  if (status === 403) return new PermissionDeniedError(message, init);
  if (status === 404) return new NotFoundError(message, init);
  if (status === 409) return new ConflictError(message, init);
  if (status === 422) return new ValidationError(message, init);
  if (status === 429) return new RateLimitError(message, { ...init, retryAfter: parseRetryAfter(headers.get("retry-after")) });
  if (status >= 500) return new InternalServerError(message, init);
  return new APIStatusError(message, init);
}

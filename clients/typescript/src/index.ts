export { Limitry, DEFAULT_BASE_URL, type ClientOptions, type GuardOptions } from "./client.js";
export { LimitryBrowserClient, type BrowserClientOptions, type ClientCheckParams, type ClientEvent } from "./browser.js";
export {
  APIConnectionError,
  APIError,
  APIStatusError,
  APITimeoutError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  InternalServerError,
  LimitExceededError,
  LimitryError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ValidationError,
} from "./errors.js";
export { BufferedRecorder, type RecorderOptions, type RecorderStats } from "./recorder.js";
export { Pager, type Page } from "./pagination.js";
export { HeldReservation } from "./resources.js";
export type { CheckResult, CheckParams, CommitParams, ConsumeParams, PageQuery, ReserveParams, SummaryQuery, WithReservationOptions } from "./resources.js";
export type * from "./types.js";

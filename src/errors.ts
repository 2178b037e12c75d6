/**
 * Application errors. Only the HTTP error handler maps them to responses
 * (`{"error": message, "code": code}` with `status`); everything else throws these.
 */
export class AppError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, details?: unknown, code = "invalid_request") {
    super(400, code, message, details);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = "Missing or invalid access token", code = "unauthorized") {
    super(401, code, message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string, details?: unknown, code = "forbidden") {
    super(403, code, message, details);
  }
}

export class NotFoundError extends AppError {
  constructor(message: string, code = "not_found") {
    super(404, code, message);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details?: unknown, code = "conflict") {
    super(409, code, message, details);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(limit: number) {
    super(413, "payload_too_large", `Request body is larger than the limit of ${limit} bytes`);
  }
}

/** Turns anything thrown (or posted across a Worker boundary) into an Error. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === "string") return new Error(value);
  if (value && typeof value === "object" && "message" in value) {
    const e = new Error(String((value as { message: unknown }).message));
    if ("stack" in value && typeof value.stack === "string") e.stack = value.stack;
    if ("name" in value && typeof value.name === "string") e.name = value.name;
    return e;
  }
  try {
    return new Error(JSON.stringify(value));
  } catch {
    return new Error(String(value));
  }
}

/**
 * The one place errors become HTTP responses: `{"error": message, "code": code}` with the
 * status of the AppError. Database errors that mean bad input map to 4xx; anything
 * unexpected is a 500 whose internal text stays in the server log.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { AppError, coerceError } from "../errors.ts";

interface PgError {
  code?: string;
  message: string;
}

export function errorResponse(err: unknown, c: Context): Response {
  if (err instanceof AppError) {
    const body: Record<string, unknown> = { error: err.message, code: err.code };
    if (err.details !== undefined) body.details = err.details;
    return c.json(body, err.status as 400);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const code = status === 413 ? "payload_too_large" : "http_error";
    return c.json({ error: err.message || "Request failed", code }, status);
  }
  const pg = err as PgError;
  switch (pg?.code) {
    case "42501": // insufficient_privilege, including "new row violates row-level security policy"
      return c.json({ error: "Not allowed by row-level security", code: "forbidden" }, 403);
    case "22P02": // invalid_text_representation
    case "22007": // invalid_datetime_format
    case "22008": // datetime_field_overflow
    case "23514": // check_violation
    case "22001": // string_data_right_truncation
      return c.json({ error: `Invalid input: ${pg.message}`, code: "invalid_request" }, 400);
    case "54000": // program_limit_exceeded (e.g. jsonb too large)
      return c.json({ error: `Input too large: ${pg.message}`, code: "invalid_request" }, 400);
  }
  console.error("Unhandled error:", coerceError(err));
  return c.json({ error: "Internal server error", code: "internal_error" }, 500);
}

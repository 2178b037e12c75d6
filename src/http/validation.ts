/**
 * Request parsing with zod: a bad body or query is a 400 that names the field. Routes call
 * these instead of touching c.req directly, so every input is checked the same way.
 */
import type { Context } from "hono";
import { z } from "zod";
import { BadRequestError } from "../errors.ts";

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  const field = issue.path.length ? issue.path.join(".") : "body";
  return `Invalid field "${field}": ${issue.message}`;
}

export async function parseBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let raw: unknown;
  const text = await c.req.text();
  if (text.trim() === "") raw = {};
  else {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new BadRequestError(
        `Request body is not valid JSON: ${(e as Error).message}`,
        undefined,
        "invalid_json",
      );
    }
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    throw new BadRequestError(describe(result.error), { issues: result.error.issues });
  }
  return result.data;
}

export function parseQuery<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const result = schema.safeParse(c.req.query());
  if (!result.success) {
    throw new BadRequestError(describe(result.error), { issues: result.error.issues });
  }
  return result.data;
}

export const pagination = {
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).default(0),
};

export const name = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/,
  "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit",
);

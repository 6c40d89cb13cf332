// The two services, called cross-origin with a bearer token (when one is set), the way a
// production frontend calls them. Errors are RFC 9457 problems; a 422's `errors` name fields.

/** Where the services are, from /config.js (written by the static server). */
interface Config {
  command: string;
  query: string;
}

declare global {
  interface Window {
    ORDERS_CONFIG?: Config;
  }
}

const given: Config = window.ORDERS_CONFIG ?? {
  command: "http://127.0.0.1:8080",
  query: "http://127.0.0.1:8081",
};
const config: Config = {
  command: given.command.replace(/\/+$/, ""),
  query: given.query.replace(/\/+$/, ""),
};

/** A field the service refused, and why. */
export interface FieldError {
  field: string;
  message: string;
}

/** A refused request, as the service described it. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
    readonly errors: FieldError[],
    readonly body: Record<string, unknown>,
  ) {
    super(detail ?? title);
  }
}

/** A command's answer: the aggregate, its new version and the consistency token. */
export interface Accepted {
  id: string;
  version: number;
  token: string | null;
}

/** Where this page keeps its bearer token: the storefront's (a customer's) and the back
 * office's (an admin's) are kept apart, so one browser can be both. */
let tokenKey = "orders.token.storefront";

/** Chooses the page's token slot; call before any request. */
export function tokenSlot(name: "storefront" | "backoffice"): void {
  tokenKey = `orders.token.${name}`;
}

/** The bearer token this page sends; none in the services' auth-off mode. */
export function bearer(): string | null {
  return localStorage.getItem(tokenKey);
}

/** Sets (or, with an empty value, clears) the bearer token. */
export function setBearer(token: string): void {
  if (token.trim()) localStorage.setItem(tokenKey, token.trim());
  else localStorage.removeItem(tokenKey);
}

async function call(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  const token = bearer();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(base + path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    throw new Problem(
      response.status,
      String(body.title ?? response.statusText),
      body.detail as string | undefined,
      (body.errors as FieldError[] | undefined) ?? [],
      body,
    );
  }
  return response;
}

/** Sends a command (`POST`, or `DELETE` to remove a line); `ifMatch` is the version the
 * client saw. A new `Idempotency-Key` per call: a page calls again only after a refusal. */
export async function command(
  path: string,
  body?: unknown,
  ifMatch?: number,
  method: "POST" | "DELETE" = "POST",
): Promise<Accepted> {
  const headers: Record<string, string> = { "Idempotency-Key": crypto.randomUUID() };
  if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
  const response = await call(config.command, method, path, { body, headers });
  const answer = (await response.json()) as Record<string, unknown>;
  return {
    id: (answer.order_id ?? answer.customer_id) as string,
    version: answer.version as number,
    token: response.headers.get("X-Consistency-Token"),
  };
}

/** A page of a list view; `next_cursor` asks for the next one (`null` on the last). */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** An operation on the query service's projections (`POST /admin/…`); answers its JSON. */
export async function operate<T>(path: string, body?: unknown): Promise<T> {
  const response = await call(config.query, "POST", path, { body });
  return (await response.json()) as T;
}

/** Reads a view; with `token`, the query service answers once the view includes that write. */
export async function view<T>(path: string, token?: string | null): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers["X-Consistency-Token"] = token;
  const response = await call(config.query, "GET", path, { headers });
  return (await response.json()) as T;
}

/** Opens a live view (Server-Sent Events) with a stream ticket, and opens it again with a new
 * ticket when it breaks, waiting longer after each failure (up to 30 s); `onTrouble` hears why
 * it is down (`null` once it is back). Returns the function that closes it. */
export function live<T>(
  stream: string,
  event: string,
  onUpdate: (value: T) => void,
  onTrouble: (reason: string | null) => void,
): () => void {
  let source: EventSource | null = null;
  let closed = false;
  let delay = 1000;
  const retry = (reason: string) => {
    source?.close();
    if (closed) return;
    onTrouble(`Live updates interrupted (${reason}); reconnecting.`);
    setTimeout(() => void open(), delay);
    delay = Math.min(delay * 2, 30_000);
  };
  const open = async () => {
    try {
      const response = await call(config.query, "POST", "/stream-tickets", { body: { stream } });
      const { url } = (await response.json()) as { url: string };
      if (closed) return;
      source = new EventSource(config.query + url);
      source.onopen = () => {
        delay = 1000;
        onTrouble(null);
      };
      source.addEventListener(event, (message) => onUpdate(JSON.parse(message.data) as T));
      source.onerror = () => retry("the stream broke");
    } catch (error) {
      retry(error instanceof Error ? error.message : String(error));
    }
  };
  void open();
  return () => {
    closed = true;
    source?.close();
  };
}

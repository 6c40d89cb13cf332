// Serves dist/ and /config.js (where the services are) on WEB_PORT. The pages call the command
// and query services cross-origin, as a production deployment would.
//   WEB_PORT (8082), COMMAND_URL (http://127.0.0.1:8080), QUERY_URL (http://127.0.0.1:8081)
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const port = Number(process.env.WEB_PORT ?? 8082);
const config = {
  command: (process.env.COMMAND_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, ""),
  query: (process.env.QUERY_URL ?? "http://127.0.0.1:8081").replace(/\/+$/, ""),
};
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};
const root = fileURLToPath(new URL("dist/", import.meta.url));
// Scripts, styles and data only from here and the two services; never framed (the back office's
// buttons act with the admin's token), no plugins, no base or form target elsewhere.
const headers = {
  "Content-Security-Policy":
    `default-src 'self'; connect-src 'self' ${config.command} ${config.query}; ` +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
};

async function answer(request, response) {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  if (path === "/healthz") {
    // For container health checks and probes.
    response.writeHead(200, { "Content-Type": "text/plain", "Cache-Control": "no-store" });
    response.end("ok\n");
    return;
  }
  if (path === "/config.js") {
    response.writeHead(200, { ...headers, "Content-Type": types[".js"], "Cache-Control": "no-store" });
    response.end(`window.ORDERS_CONFIG = ${JSON.stringify(config)};\n`);
    return;
  }
  const file = normalize(join(root, path === "/" ? "index.html" : path));
  if (!file.startsWith(root)) {
    response.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(file);
    response.writeHead(200, { ...headers, "Content-Type": types[extname(file)] ?? "application/octet-stream" });
    response.end(body);
  } catch {
    response.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
  }
}

const server = createServer((request, response) => {
  answer(request, response).catch(() => {
    // A request target the URL parser refuses, say: the client's mistake, never the server's end.
    if (!response.headersSent) response.writeHead(400, { "Content-Type": "text/plain" });
    response.end("bad request\n");
  });
}).listen(port, "0.0.0.0", () => {
  console.log(`web: http://127.0.0.1:${port} (command ${config.command}, query ${config.query})`);
});

// Stop on SIGTERM (a container's stop; as PID 1 node has no default handler) and Ctrl-C:
// answer what is in flight, then exit.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
}

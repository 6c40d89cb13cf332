// Renders the service's OpenAPI document (openapi.json, next to this page) as a readable page:
// operations grouped by tag, their parameters, request body, responses and schemas. Runs under a
// Content-Security-Policy that allows only this origin's scripts and styles, and writes every
// text of the document with textContent, so a description can never become markup.
"use strict";

const METHODS = ["get", "post", "put", "patch", "delete"];
let doc;

// An element with `attrs`, and `children` (strings become text nodes).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// Text with `code` spans for the backticks of the document's descriptions.
function prose(text) {
  return (text || "").split("`").map((part, i) => (i % 2 ? el("code", {}, part) : part));
}

function resolve(schema) {
  const ref = schema && schema.$ref;
  if (!ref) return schema || {};
  const name = ref.split("/").pop();
  return Object.assign({ title: name }, doc.components.schemas[name], schema.description ? { description: schema.description } : {});
}

// A short name for a schema's type: `string`, `Order`, `array of OrderLine`, `string | null`.
function typeName(schema) {
  if (schema.$ref) return schema.$ref.split("/").pop();
  const variants = schema.oneOf || schema.anyOf;
  if (variants) return variants.map(typeName).join(" | ");
  if (schema.type === "array") return "array of " + typeName(schema.items || {});
  const type = [].concat(schema.type || (schema.properties ? "object" : "any")).join(" | ");
  return schema.format ? `${type} (${schema.format})` : type;
}

function constraints(schema) {
  const out = [];
  if (schema.enum) out.push("one of: " + schema.enum.join(", "));
  if (schema.pattern) out.push("pattern " + schema.pattern);
  for (const key of ["minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"]) {
    if (schema[key] !== undefined) out.push(`${key} ${schema[key]}`);
  }
  return out.map((c) => el("span", { class: "constraint" }, c));
}

// A schema as nested fields; `seen` stops at a schema already being shown (recursive types).
function renderSchema(schema, seen = new Set()) {
  const ref = schema.$ref;
  if (ref && seen.has(ref)) return el("div", { class: "schema" }, typeName(schema));
  const next = ref ? new Set([...seen, ref]) : seen;
  const resolved = resolve(schema);
  const box = el("div", { class: "schema" });
  if (resolved.description && !ref) box.append(el("div", {}, prose(resolved.description)));
  const variants = resolved.oneOf || resolved.anyOf;
  if (variants) {
    for (const variant of variants.filter((v) => v.type !== "null")) box.append(renderSchema(variant, next));
    return box;
  }
  if (resolved.type === "array" || (Array.isArray(resolved.type) && resolved.items)) {
    box.append(el("div", { class: "type" }, "array of " + typeName(resolved.items || {})));
    box.append(renderSchema(resolved.items || {}, next));
    return box;
  }
  const required = new Set(resolved.required || []);
  for (const [name, property] of Object.entries(resolved.properties || {})) {
    const inner = resolve(property);
    const nested = inner.properties || inner.oneOf || inner.anyOf || inner.items;
    const line = el("div", { class: "field" },
      el("code", {}, name), " ", el("span", { class: "type" }, typeName(property)),
      required.has(name) ? el("span", { class: "required" }, " required") : null,
      constraints(inner), inner.description ? [" — ", prose(inner.description)] : null);
    box.append(nested ? el("details", {}, el("summary", {}, line), renderSchema(property, next)) : line);
  }
  if (!resolved.properties) box.append(el("div", { class: "type" }, typeName(resolved), constraints(resolved)));
  return box;
}

function parameters(list) {
  if (!list || !list.length) return null;
  const rows = list.map((p) => el("tr", {},
    el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "required" }, " required") : null),
    el("td", {}, p.in),
    el("td", {}, el("span", { class: "type" }, typeName(p.schema || {})), constraints(p.schema || {})),
    el("td", {}, prose(p.description))));
  return [el("h4", {}, "Parameters"),
    el("table", {}, el("thead", {}, el("tr", {}, ["Name", "In", "Type", "Description"].map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows))];
}

function content(body) {
  return Object.entries((body && body.content) || {}).map(([type, media]) =>
    el("div", {}, el("code", {}, type), media.schema ? renderSchema(media.schema) : null));
}

function responses(all) {
  return [el("h4", {}, "Responses"), ...Object.entries(all || {}).map(([status, response]) => {
    const headers = Object.entries(response.headers || {}).map(([name, header]) =>
      el("div", {}, "Header ", el("code", {}, name), header.description ? [" — ", prose(header.description)] : null));
    const body = [...headers, ...content(response)];
    const title = [el("span", { class: "status" }, status), " ", prose(response.description)];
    return body.length ? el("details", {}, el("summary", {}, title), body) : el("div", {}, title);
  })];
}

function operation(path, method, op) {
  const id = op.operationId || `${method}-${path}`;
  return el("article", { id },
    el("h3", {}, el("span", { class: `method ${method}` }, method), el("span", { class: "path" }, path),
      op.summary ? el("span", { class: "summary" }, op.summary) : null),
    op.description ? el("p", {}, prose(op.description)) : null,
    parameters(op.parameters),
    op.requestBody ? [el("h4", {}, "Request body"), content(op.requestBody)] : null,
    responses(op.responses));
}

function render() {
  const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, operations: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS.filter((m) => item[m])) {
      const name = (item[method].tags || ["other"])[0];
      if (!byTag.has(name)) byTag.set(name, { tag: { name }, operations: [] });
      byTag.get(name).operations.push([path, method, item[method]]);
    }
  }
  const main = document.getElementById("api");
  const nav = document.getElementById("contents");
  main.replaceChildren(el("p", {}, prose(doc.info.description)));
  for (const [name, scheme] of Object.entries((doc.components && doc.components.securitySchemes) || {})) {
    main.append(el("p", {}, el("strong", {}, "Authentication: "), `${name} (${scheme.scheme || scheme.type}`,
      scheme.bearerFormat ? `, ${scheme.bearerFormat}` : "", ") — ", prose(scheme.description)));
  }
  for (const { tag, operations } of byTag.values()) {
    if (!operations.length) continue;
    nav.append(el("h2", {}, tag.name), el("ul", {}, operations.map(([path, method, op]) =>
      el("li", {}, el("a", { href: "#" + (op.operationId || `${method}-${path}`) }, `${method.toUpperCase()} ${path}`)))));
    main.append(el("section", { class: "tag" }, el("h2", {}, tag.name),
      tag.description ? el("p", {}, prose(tag.description)) : null,
      operations.map(([path, method, op]) => operation(path, method, op))));
  }
  const schemas = Object.entries((doc.components && doc.components.schemas) || {});
  main.append(el("section", { class: "tag", id: "schemas" }, el("h2", {}, "Schemas"),
    schemas.map(([name, schema]) => el("details", { id: "schema-" + name },
      el("summary", {}, el("code", {}, name), schema.description ? [" — ", prose(schema.description)] : null),
      renderSchema({ $ref: "#/components/schemas/" + name })))));
  document.body.dataset.rendered = "true";
}

fetch("openapi.json")
  .then((response) => {
    if (!response.ok) throw new Error(`openapi.json answered ${response.status}`);
    return response.json();
  })
  .then((loaded) => {
    doc = loaded;
    render();
  })
  .catch((error) => {
    document.getElementById("status").textContent = "Could not load openapi.json: " + error.message;
  });

// The back office's order search: the filters of `GET /orders` and its keyset paging (the
// page's `next_cursor` asks for the next page; orders placed meanwhile never shift a page).

import { type Page, view } from "./api";
import { $, clearErrors, money, optional, showError, tableRow } from "./forms";
import { shell } from "./shell";

interface Summary {
  order_id: string;
  customer_id: string;
  customer_name: string | null;
  status: string;
  currency: string;
  item_count: number;
  total_cents: number;
  placed_at: string;
  version: number;
}

const form = $<HTMLFormElement>("#search");
let filters = new URLSearchParams();
let pageNumber = 1;
let next: string | null = null;

/** The form's filters as query parameters; a local time becomes RFC 3339 (UTC). */
function readFilters(): URLSearchParams {
  const params = new URLSearchParams();
  for (const name of ["status", "customer_id", "limit"]) {
    const given = optional(form, name);
    if (given) params.set(name, given);
  }
  for (const name of ["placed_after", "placed_before"]) {
    const given = optional(form, name);
    if (given) params.set(name, new Date(given).toISOString());
  }
  return params;
}

async function load(cursor: string | null): Promise<void> {
  clearErrors(form);
  const params = new URLSearchParams(filters);
  if (cursor) params.set("cursor", cursor);
  try {
    const page = await view<Page<Summary>>(`/orders?${params}`);
    $("#results").replaceChildren(
      ...page.items.map((order) => {
        const row = tableRow([
          order.order_id,
          order.customer_name ?? order.customer_id,
          order.status,
          new Date(order.placed_at).toLocaleString(),
          String(order.item_count),
          money(order.total_cents, order.currency),
          String(order.version),
        ]);
        row.dataset.order = order.order_id;
        return row;
      }),
    );
    next = page.next_cursor;
    const found = page.items.length ? `${page.items.length} orders` : "No orders match";
    $("#page-info").textContent = `Page ${pageNumber}: ${found}.`;
    $("#next").hidden = next === null;
    $("#first").hidden = pageNumber === 1;
  } catch (error) {
    showError(form, error);
  }
}

shell("backoffice");
form.addEventListener("submit", (event) => {
  event.preventDefault();
  filters = readFilters();
  pageNumber = 1;
  void load(null);
});
$("#next").addEventListener("click", () => {
  pageNumber += 1;
  void load(next);
});
$("#first").addEventListener("click", () => {
  pageNumber = 1;
  void load(null);
});
filters = readFilters();
void load(null);

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
/** The search shown: its filters, page number and the next page's cursor. */
let shownFilters = new URLSearchParams();
let pageNumber = 1;
let next: string | null = null;
/** The latest request; an answer to an earlier one is dropped. */
let latest = 0;

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

/** Shows page `number` of the search `filters` starting at `cursor`; what is shown changes
 * only when the service answered it. */
async function load(filters: URLSearchParams, number: number, cursor: string | null): Promise<void> {
  clearErrors(form);
  const request = ++latest;
  const params = new URLSearchParams(filters);
  if (cursor) params.set("cursor", cursor);
  const buttons = document.querySelectorAll<HTMLButtonElement>("#search button, #first, #next");
  buttons.forEach((button) => (button.disabled = true));
  try {
    const page = await view<Page<Summary>>(`/orders?${params}`);
    if (request !== latest) return;
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
    [shownFilters, pageNumber, next] = [filters, number, page.next_cursor];
    const found = page.items.length ? `${page.items.length} orders` : "No orders match";
    $("#page-info").textContent = `Page ${pageNumber}: ${found}.`;
    $("#next").hidden = next === null;
    $("#first").hidden = pageNumber === 1;
  } catch (error) {
    if (request === latest) showError(form, error);
  } finally {
    if (request === latest) buttons.forEach((button) => (button.disabled = false));
  }
}

shell("backoffice");
form.addEventListener("submit", (event) => {
  event.preventDefault();
  void load(readFilters(), 1, null);
});
$("#next").addEventListener("click", () => void load(shownFilters, pageNumber + 1, next));
$("#first").addEventListener("click", () => void load(shownFilters, 1, null));
void load(readFilters(), 1, null);

// The back office: the shipping dashboard, whose Ship action sends `If-Match` with the version
// shown, so an order someone else changed meanwhile is refused (412) and its row reloaded
// rather than shipped as it no longer is.

import { type Page, Problem, command, view } from "./api";
import { $, clearErrors, keyed, money, showError, status, tableRow, value } from "./forms";
import { shell } from "./shell";

interface Awaiting {
  order_id: string;
  customer_name: string | null;
  confirmed_at: string;
  item_count: number;
  total_cents: number;
  currency: string;
  version: number;
}

const PAGE = 50;
const section = $("#shipping");
/** The orders shown, longest waiting first, and where the next page starts. */
let shownOrders: Awaiting[] = [];
let next: string | null = null;

function row(order: Awaiting): HTMLTableRowElement {
  const tr = tableRow([
    order.order_id,
    order.customer_name ?? "",
    new Date(order.confirmed_at).toLocaleString(),
    String(order.item_count),
    money(order.total_cents, order.currency),
    String(order.version),
  ]);
  tr.dataset.order = order.order_id;
  tr.dataset.version = String(order.version);
  const action = document.createElement("td");
  const form = document.createElement("form");
  form.className = "ship";
  form.innerHTML = `
    <label>Carrier <input name="carrier" required></label>
    <span class="error" data-error-for="carrier"></span>
    <label>Tracking number <input name="tracking_number" required></label>
    <span class="error" data-error-for="tracking_number"></span>
    <button>Ship</button>
    <p role="status"></p>`;
  form.querySelector("button")!.setAttribute("aria-label", `Ship order ${order.order_id}`);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void ship(order, form);
  });
  action.append(form);
  tr.append(action);
  return tr;
}

async function ship(order: Awaiting, form: HTMLFormElement): Promise<void> {
  clearErrors(form);
  clearErrors(section);
  const body = { carrier: value(form, "carrier"), tracking_number: value(form, "tracking_number") };
  try {
    const accepted = await command(`/orders/${order.order_id}/ship`, body, order.version);
    status(section, `Order ${order.order_id} shipped.`);
    await loadShipping(accepted.token).catch((error) => showError(section, error));
  } catch (error) {
    showError(form, error);
    if (!(error instanceof Problem && error.status === 412)) return;
    // Someone else changed the order first: show what it is now, overwrite nothing.
    const refused = form.querySelector(":scope > [role=status]")?.textContent ?? "";
    const message = `${refused} The order changed meanwhile; the row shows it as it is now.`;
    try {
      await loadShipping(null);
    } catch (reload) {
      showError(section, reload);
      return;
    }
    const selector = `tr[data-order="${CSS.escape(order.order_id)}"] form.ship`;
    const reloaded = document.querySelector<HTMLFormElement>(selector);
    if (reloaded) status(reloaded, message);
    else status(section, `${message} It no longer waits for shipment.`);
  }
}

/** Reads the first page again (after a `token`'s write, when given), or with `more` the next
 * one below those shown. Rows whose order is unchanged keep what was typed into them. */
async function loadShipping(token: string | null, more = false): Promise<void> {
  const cursor = more && next ? `&cursor=${encodeURIComponent(next)}` : "";
  const page = await view<Page<Awaiting>>(`/dashboards/shipping?limit=${PAGE}${cursor}`, token);
  shownOrders = more ? [...shownOrders, ...page.items] : page.items;
  next = page.next_cursor;
  keyed(
    $("#shipping-rows"),
    shownOrders,
    (order) => order.order_id,
    row,
    (order, element) => element.dataset.version !== String(order.version),
  );
  $("#shipping-empty").hidden = shownOrders.length > 0;
  $("#more").hidden = next === null;
}

shell("backoffice");
$("#refresh").addEventListener("click", () => {
  clearErrors(section);
  loadShipping(null).catch((error) => showError(section, error));
});
$("#more").addEventListener("click", () => {
  clearErrors(section);
  loadShipping(null, true).catch((error) => showError(section, error));
});
loadShipping(null).catch((error) => showError(section, error));

// The back office: the shipping dashboard, whose Ship action sends `If-Match` with the version
// shown, so an order someone else changed meanwhile is refused (412) and its row reloaded
// rather than shipped as it no longer is.

import { type Page, Problem, command, view } from "./api";
import { $, clearErrors, money, showError, status, tableRow, value } from "./forms";
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
  try {
    const body = { carrier: value(form, "carrier"), tracking_number: value(form, "tracking_number") };
    const accepted = await command(`/orders/${order.order_id}/ship`, body, order.version);
    status(form, "Shipped.");
    await loadShipping(accepted.token);
  } catch (error) {
    showError(form, error);
    if (error instanceof Problem && error.status === 412) {
      // Someone else changed the order first: show what it is now, overwrite nothing.
      const kept = form.querySelector("[role=status]")?.textContent ?? "";
      await loadShipping(null);
      const reloaded = document.querySelector<HTMLFormElement>(
        `tr[data-order="${order.order_id}"] form.ship`,
      );
      const message = `${kept} The order changed meanwhile; the row shows it as it is now.`;
      if (reloaded) status(reloaded, message);
      else status($("#shipping"), `${message} It no longer waits for shipment.`);
    }
  }
}

async function loadShipping(token: string | null): Promise<void> {
  const page = await view<Page<Awaiting>>("/dashboards/shipping?limit=50", token);
  $("#shipping-rows").replaceChildren(...page.items.map(row));
  $("#shipping-empty").hidden = page.items.length > 0;
}

shell("backoffice");
$("#refresh").addEventListener("click", () => {
  clearErrors($("#shipping"));
  loadShipping(null).catch((error) => showError($("#shipping"), error));
});

loadShipping(null).catch((error) => showError($("#shipping"), error));

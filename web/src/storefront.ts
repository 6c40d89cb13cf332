// The storefront: a customer registers, fills a cart, places the order and follows it. The
// order appears at once because the page reads it with the command's consistency token, and
// it stays current through the order's live stream (the back office shipping it, say).

import { Problem, command, live, remove, view } from "./api";
import { $, clearErrors, money, showError, status, value } from "./forms";
import { shell } from "./shell";

interface Line {
  sku: string;
  name: string;
  quantity: number;
  unit_price_cents: number;
}

interface Order {
  order_id: string;
  status: string;
  currency: string;
  items: (Line & { line_total_cents: number })[];
  item_count: number;
  total_cents: number;
  version: number;
  carrier: string | null;
  tracking_number: string | null;
}

const CUSTOMER_KEY = "orders.customer";

const cart: Line[] = [];
let stopLive: (() => void) | null = null;
let shown: Order | null = null;

function customer(): string | null {
  return localStorage.getItem(CUSTOMER_KEY);
}

function showCustomer(): void {
  const id = customer();
  $("#customer-id").textContent = id ?? "not registered yet";
  $<HTMLButtonElement>("#place").disabled = !id || cart.length === 0;
}

function renderCart(): void {
  const list = $("#cart-lines");
  list.replaceChildren(
    ...cart.map((line, index) => {
      const item = document.createElement("li");
      item.textContent = `${line.quantity} × ${line.name} (${line.sku}) `;
      const drop = document.createElement("button");
      drop.type = "button";
      drop.textContent = "Remove";
      drop.addEventListener("click", () => {
        cart.splice(index, 1);
        renderCart();
      });
      item.append(drop);
      return item;
    }),
  );
  showCustomer();
}

function renderOrder(order: Order): void {
  // A stream may deliver an update the page already has; never go back to an older version.
  if (shown && shown.order_id === order.order_id && shown.version > order.version) return;
  shown = order;
  $("#order").hidden = false;
  $("#order-id").textContent = order.order_id;
  $("#order-status").textContent = order.status;
  $("#order-version").textContent = String(order.version);
  $("#order-total").textContent = money(order.total_cents, order.currency);
  $("#order-shipment").textContent =
    order.carrier ? `${order.carrier}, tracking number ${order.tracking_number}` : "not yet";
  const pending = order.status === "pending";
  $("#order-lines").replaceChildren(
    ...order.items.map((line) => {
      const item = document.createElement("li");
      item.textContent = `${line.quantity} × ${line.name} (${line.sku}): ${money(line.line_total_cents, order.currency)} `;
      if (pending) {
        const drop = document.createElement("button");
        drop.type = "button";
        drop.textContent = "Remove";
        drop.addEventListener("click", () => void removeLine(order.order_id, line.sku));
        item.append(drop);
      }
      return item;
    }),
  );
  $("#add-line").hidden = !pending;
  $<HTMLButtonElement>("#confirm").hidden = !pending;
  $<HTMLButtonElement>("#cancel").hidden = !(pending || order.status === "confirmed");
}

/** Shows the order as the command that changed it left it, then follows it live. */
async function follow(orderId: string, token: string | null): Promise<void> {
  renderOrder(await view<Order>(`/orders/${orderId}`, token));
  stopLive?.();
  stopLive = live<Order>(`/orders/${orderId}/stream`, "order", renderOrder);
}

async function removeLine(orderId: string, sku: string): Promise<void> {
  const form = $("#order");
  clearErrors(form);
  try {
    const accepted = await remove(`/orders/${orderId}/items/${encodeURIComponent(sku)}`);
    await follow(orderId, accepted.token);
  } catch (error) {
    showError(form, error);
  }
}

$<HTMLFormElement>("#register").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  clearErrors(form);
  try {
    const body = { name: value(form, "name"), email: value(form, "email") };
    const accepted = await command("/customers", body);
    localStorage.setItem(CUSTOMER_KEY, accepted.id);
    status(form, "Registered.");
    showCustomer();
  } catch (error) {
    showError(form, error);
  }
});

$<HTMLFormElement>("#cart-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  clearErrors(form);
  cart.push({
    sku: value(form, "sku"),
    name: value(form, "name"),
    quantity: Number(value(form, "quantity")),
    unit_price_cents: Math.round(Number(value(form, "unit_price")) * 100),
  });
  form.reset();
  renderCart();
});

$<HTMLButtonElement>("#place").addEventListener("click", async () => {
  const form = $("#cart");
  clearErrors(form);
  try {
    const accepted = await command("/orders", {
      customer_id: customer(),
      currency: "EUR",
      items: cart,
    });
    cart.splice(0);
    renderCart();
    await follow(accepted.id, accepted.token);
  } catch (error) {
    showError(form, error);
  }
});

$<HTMLFormElement>("#add-line").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  clearErrors(form);
  if (!shown) return;
  try {
    const accepted = await command(`/orders/${shown.order_id}/items`, {
      sku: value(form, "sku"),
      name: value(form, "name"),
      quantity: Number(value(form, "quantity")),
      unit_price_cents: Math.round(Number(value(form, "unit_price")) * 100),
    });
    form.reset();
    await follow(accepted.id, accepted.token);
  } catch (error) {
    showError(form, error);
  }
});

for (const [button, action] of [
  ["#confirm", "confirm"],
  ["#cancel", "cancel"],
] as const) {
  $(button).addEventListener("click", async () => {
    const form = $("#order");
    clearErrors(form);
    if (!shown) return;
    try {
      const body = action === "cancel" ? { reason: "cancelled in the storefront" } : undefined;
      const accepted = await command(`/orders/${shown.order_id}/${action}`, body, shown.version);
      await follow(accepted.id, accepted.token);
    } catch (error) {
      showError(form, error);
      if (error instanceof Problem && error.status === 412) await follow(shown.order_id, null);
    }
  });
}

shell("storefront");
renderCart();

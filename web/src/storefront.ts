// The storefront: a customer registers, fills a cart, places the order and follows it. The
// order appears at once because the page reads it with the command's consistency token, and
// it stays current through the order's live stream (the back office shipping it, say).

import { type Accepted, Problem, command, live, view } from "./api";
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

/** The customer this browser registered, under the token it was registered with. */
const CUSTOMER_KEY = "orders.customer";

const cart: Line[] = [];
let shown: Order | null = null;
/** The order whose stream is open, and how to close it. */
let following: string | null = null;
let stopLive: (() => void) | null = null;

function customer(): string | null {
  return localStorage.getItem(CUSTOMER_KEY);
}

function showCustomer(): void {
  const id = customer();
  $("#customer-id").textContent = id ?? "not registered yet";
  $<HTMLButtonElement>("#place").disabled = !id || cart.length === 0;
}

/** A button that names what it acts on (`label`) for screen readers. */
function button(text: string, label: string, onClick: () => void): HTMLButtonElement {
  const made = document.createElement("button");
  made.type = "button";
  made.textContent = text;
  made.setAttribute("aria-label", label);
  made.addEventListener("click", onClick);
  return made;
}

/** The line a form describes (its unit price typed in euros). */
function lineFrom(form: HTMLFormElement): Line {
  return {
    sku: value(form, "sku"),
    name: value(form, "name"),
    quantity: Number(value(form, "quantity")),
    unit_price_cents: Math.round(Number(value(form, "unit_price")) * 100),
  };
}

function renderCart(): void {
  $("#cart-lines").replaceChildren(
    ...cart.map((line, index) => {
      const item = document.createElement("li");
      item.textContent = `${line.quantity} × ${line.name} (${line.sku}) `;
      item.append(
        button("Remove", `Remove ${line.name} from the cart`, () => {
          cart.splice(index, 1);
          renderCart();
        }),
      );
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
      const total = money(line.line_total_cents, order.currency);
      item.textContent = `${line.quantity} × ${line.name} (${line.sku}): ${total} `;
      if (pending) {
        const label = `Remove ${line.name} from the order`;
        item.append(button("Remove", label, () => void removeLine(order.order_id, line.sku)));
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
  if (following === orderId) return;
  stopLive?.();
  following = orderId;
  stopLive = live<Order>(`/orders/${orderId}/stream`, "order", renderOrder, (trouble) =>
    status($("#order"), trouble ?? ""),
  );
}

/** Sends a command about the shown order from `form`, then shows the order as it left it. A
 * command that was accepted is never reported as refused: if only the read after it failed,
 * the page says so, and the live stream brings the change. */
async function orderCommand(form: HTMLElement, send: () => Promise<Accepted>): Promise<void> {
  clearErrors(form);
  let accepted: Accepted;
  try {
    accepted = await send();
  } catch (error) {
    showError(form, error);
    // Changed meanwhile (412): show the order as it is now.
    if (error instanceof Problem && error.status === 412 && shown) {
      await follow(shown.order_id, null).catch(() => {});
    }
    return;
  }
  try {
    await follow(accepted.id, accepted.token);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    status(form, `Done, but the order could not be shown yet (${why}); it follows live.`);
  }
}

function removeLine(orderId: string, sku: string): Promise<void> {
  const path = `/orders/${orderId}/items/${encodeURIComponent(sku)}`;
  return orderCommand($("#order"), () => command(path, undefined, undefined, "DELETE"));
}

// Another token is another customer: forget the one registered under the previous token.
shell("storefront", () => {
  localStorage.removeItem(CUSTOMER_KEY);
  showCustomer();
});

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
  cart.push(lineFrom(form));
  form.reset();
  renderCart();
});

$<HTMLButtonElement>("#place").addEventListener("click", () =>
  orderCommand($("#cart"), async () => {
    const accepted = await command("/orders", {
      customer_id: customer(),
      currency: "EUR",
      items: cart,
    });
    cart.splice(0);
    renderCart();
    return accepted;
  }),
);

$<HTMLFormElement>("#add-line").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  if (!shown) return;
  const orderId = shown.order_id;
  void orderCommand(form, async () => {
    const accepted = await command(`/orders/${orderId}/items`, lineFrom(form));
    form.reset();
    return accepted;
  });
});

for (const [selector, action] of [
  ["#confirm", "confirm"],
  ["#cancel", "cancel"],
] as const) {
  $(selector).addEventListener("click", () => {
    if (!shown) return;
    const { order_id, version } = shown;
    const body = action === "cancel" ? { reason: "cancelled in the storefront" } : undefined;
    void orderCommand($("#order"), () => command(`/orders/${order_id}/${action}`, body, version));
  });
}

renderCart();

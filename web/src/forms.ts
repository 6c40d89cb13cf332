// Showing a refused request where the person looks: each field error next to the field it
// names (an element with `data-error-for="<field>"`, described by it), anything else in the
// form's own status line.

import { Problem } from "./api";

/** The page's element matching `selector` (the pages' markup has it). */
export const $ = <T extends HTMLElement>(selector: string) => document.querySelector<T>(selector)!;

/** Clears the form's earlier errors. */
export function clearErrors(form: HTMLElement): void {
  for (const element of form.querySelectorAll<HTMLElement>("[data-error-for]")) {
    element.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
  status(form, "");
}

/** The input an API field names: by its name, or by `data-field` where the input holds the
 * value in another form (euros for `unit_price_cents`). */
function inputFor(form: HTMLElement, field: string): HTMLElement | null {
  const name = CSS.escape(field);
  return form.querySelector(`[name="${name}"], [data-field="${name}"]`);
}

/** Shows `error` on `form`: field errors beside their fields (the first one focused), a rule
 * or any other problem in the status line. */
export function showError(form: HTMLElement, error: unknown): void {
  if (!(error instanceof Problem)) {
    status(form, `The service could not be reached: ${String(error)}`);
    return;
  }
  const unplaced: string[] = [];
  let first: HTMLElement | null = null;
  for (const { field, message } of error.errors) {
    const slot = form.querySelector<HTMLElement>(`[data-error-for="${CSS.escape(field)}"]`);
    const input = inputFor(form, field);
    if (slot && input) {
      slot.textContent = message;
      slot.id ||= `${form.id || "form"}-${field}-error`;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", slot.id);
      first ??= input;
    } else {
      unplaced.push(`${field}: ${message}`);
    }
  }
  first?.focus();
  const rule = typeof error.body.rule === "string" ? ` (rule: ${error.body.rule})` : "";
  const signIn = error.status === 401 ? " Sign in (again) with a valid token." : "";
  const summary = error.errors.length
    ? `${error.errors.length} field(s) need attention.`
    : `${error.title}${rule}. ${error.detail ?? ""}${signIn}`;
  status(form, [summary, ...unplaced].join(" "));
}

/** Sets the form's own status line (a `role="status"` child, read out by screen readers). */
export function status(form: HTMLElement, text: string): void {
  const line = form.querySelector<HTMLElement>(":scope > [role=status]");
  if (line) line.textContent = text;
}

/** Formats minor units of `currency`. */
export function money(cents: number, currency: string): string {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
}

/** The value of the form's field `name`. */
export function value(form: HTMLFormElement, name: string): string {
  const field = form.elements.namedItem(name);
  const editable =
    field instanceof HTMLInputElement ||
    field instanceof HTMLSelectElement ||
    field instanceof HTMLTextAreaElement;
  return editable ? field.value : "";
}

/** The value of the form's field `name`, or undefined when it is empty. */
export function optional(form: HTMLFormElement, name: string): string | undefined {
  return value(form, name).trim() || undefined;
}

/** A table row of `cells` (text only: nothing a service returned is parsed as HTML). */
export function tableRow(cells: string[]): HTMLTableRowElement {
  const tr = document.createElement("tr");
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

/** Keeps the children of `list` keyed by `data-key` in the order of `items`: an element whose
 * key is still there stays as it is (with what was typed into it and the focus), unless
 * `changed` says its item differs; new ones are made by `render`, gone ones removed. */
export function keyed<T>(
  list: HTMLElement,
  items: T[],
  key: (item: T) => string,
  render: (item: T) => HTMLElement,
  changed: (item: T, element: HTMLElement) => boolean = () => false,
): void {
  const kept = new Map<string, HTMLElement>();
  for (const element of list.querySelectorAll<HTMLElement>(":scope > [data-key]")) {
    kept.set(element.dataset.key!, element);
  }
  const elements = items.map((item) => {
    const old = kept.get(key(item));
    if (old && !changed(item, old)) return old;
    const made = render(item);
    made.dataset.key = key(item);
    return made;
  });
  // Remove what went first, then move only what is out of place: an element that stays where
  // it was is never taken out of the document (which would take the focus from it).
  const staying = new Set(elements);
  for (const element of [...list.children]) {
    if (!staying.has(element as HTMLElement)) element.remove();
  }
  elements.forEach((element, i) => {
    const at = list.children[i] ?? null;
    if (at !== element) list.insertBefore(element, at);
  });
}

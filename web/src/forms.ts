// Showing a refused request where the person looks: each field error next to the field it
// names (an element with `data-error-for="<field>"`), anything else in the form's status line.

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

/** Shows `error` on `form`: field errors beside their fields, a rule or other problem above. */
export function showError(form: HTMLElement, error: unknown): void {
  if (!(error instanceof Problem)) {
    status(form, `The service could not be reached: ${String(error)}`);
    return;
  }
  const unplaced: string[] = [];
  for (const { field, message } of error.errors) {
    const slot = form.querySelector<HTMLElement>(`[data-error-for="${CSS.escape(field)}"]`);
    if (slot) {
      slot.textContent = message;
      form.querySelector(`[name="${CSS.escape(field)}"]`)?.setAttribute("aria-invalid", "true");
    } else {
      unplaced.push(`${field}: ${message}`);
    }
  }
  const rule = typeof error.body.rule === "string" ? ` (rule: ${error.body.rule})` : "";
  const summary = error.errors.length ? "" : `${error.title}${rule}. ${error.detail ?? ""}`;
  status(form, [summary, ...unplaced].filter(Boolean).join(" "));
}

/** Sets the form's status line (`role="status"`, read out by screen readers). */
export function status(form: HTMLElement, text: string): void {
  const line = form.querySelector<HTMLElement>("[role=status]");
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

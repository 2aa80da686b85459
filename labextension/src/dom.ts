// Small DOM helpers shared by the sections.
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { className?: string; text?: string; title?: string } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.className) {
    node.className = props.className;
  }
  if (props.text !== undefined) {
    node.textContent = props.text;
  }
  if (props.title) {
    node.title = props.title;
  }
  node.append(...children);
  return node;
}

/** A small text button; `label` is also its accessible name. */
export function button(
  label: string,
  onClick: () => void,
  title?: string
): HTMLButtonElement {
  const node = h('button', {
    className: 'jr-Button',
    text: label,
    title: title ?? label
  });
  node.type = 'button';
  node.addEventListener('click', event => {
    event.stopPropagation();
    onClick();
  });
  return node;
}

/** Ask before something that cannot be undone. */
export async function confirm(
  title: string,
  body: string,
  label: string
): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

/** Run `action`; show its error (the server's message) in a dialog. */
export async function attempt(
  what: string,
  action: () => Promise<void>
): Promise<void> {
  try {
    await action();
  } catch (error) {
    await showErrorMessage(
      `Could not ${what}`,
      error instanceof Error ? error.message : String(error)
    );
  }
}

export function formatBytes(size: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${size} B` : `${value.toFixed(1)} ${units[unit]}`;
}

// Secrets: names and key names only. Values are typed into masked inputs, sent once,
// and never shown: the server never returns them.
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { addIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { jsonBody, requestAPI } from './api';
import { attempt, button, confirm, h } from './dom';
import { Section } from './section';

interface ISecret {
  name: string;
  keys: string[];
  updated_at: string;
}

interface IForm {
  name: string;
  values: Record<string, string>;
  remove: string[];
}

/** The form of a secret: a name (when new), key/value rows with masked values. */
class SecretForm extends Widget implements Dialog.IBodyWidget<IForm> {
  private readonly nameInput: HTMLInputElement | null;
  private readonly rows: HTMLElement;

  constructor(private readonly existing: ISecret | null) {
    super({ node: h('div', { className: 'jr-SecretForm' }) });
    if (existing === null) {
      this.nameInput = h('input', { className: 'jr-SecretName jp-mod-styled' });
      this.nameInput.placeholder = 'name, e.g. db';
      this.nameInput.setAttribute('aria-label', 'Secret name');
      this.node.append(h('label', { text: 'Name' }, this.nameInput));
    } else {
      this.nameInput = null;
    }
    this.rows = h('div', { className: 'jr-SecretRows' });
    this.node.append(this.rows);
    for (const key of existing?.keys ?? []) {
      this.addRow(key, true);
    }
    if (existing === null) {
      this.addRow('', false);
    }
    this.node.append(button('Add key', () => this.addRow('', false), 'Add a key/value row'));
    if (existing !== null) {
      this.node.append(
        h('p', {
          className: 'jr-Hint',
          text: 'Values are never shown. Leave a value empty to keep it; tick Remove to drop a key.'
        })
      );
    }
  }

  private addRow(key: string, known: boolean): void {
    const keyInput = h('input', { className: 'jr-SecretKey jp-mod-styled' });
    keyInput.placeholder = 'KEY';
    keyInput.value = key;
    keyInput.readOnly = known;
    keyInput.setAttribute('aria-label', 'Key');
    const valueInput = h('input', { className: 'jr-SecretValue jp-mod-styled' });
    valueInput.type = 'password';
    valueInput.autocomplete = 'new-password';
    valueInput.placeholder = known ? 'unchanged' : 'value';
    valueInput.setAttribute('aria-label', 'Value');
    const row = h('div', { className: 'jr-SecretRow' }, keyInput, valueInput);
    if (known) {
      const remove = h('input', { className: 'jr-SecretRemove' });
      remove.type = 'checkbox';
      row.append(h('label', { text: 'Remove' }, remove));
    }
    this.rows.append(row);
    keyInput.focus();
  }

  getValue(): IForm {
    const values: Record<string, string> = {};
    const remove: string[] = [];
    for (const row of Array.from(this.rows.children)) {
      const key = (row.querySelector('.jr-SecretKey') as HTMLInputElement).value.trim();
      const valueInput = row.querySelector('.jr-SecretValue') as HTMLInputElement;
      const removed = row.querySelector('.jr-SecretRemove') as HTMLInputElement | null;
      if (removed?.checked) {
        remove.push(key);
      } else if (key && valueInput.value !== '') {
        values[key] = valueInput.value;
      }
      valueInput.value = ''; // read once: the DOM keeps no value after the dialog
    }
    return { name: this.nameInput?.value.trim() ?? this.existing!.name, values, remove };
  }
}

export class SecretsSection extends Section {
  constructor() {
    super('secrets', 'Secrets');
    this.addTool('new-secret', addIcon, 'New secret', () => void this.edit(null));
  }

  protected async load(): Promise<string> {
    const { secrets } = await requestAPI<{ secrets: ISecret[] }>('secrets');
    if (secrets.length === 0) {
      this.showMessage('No secrets yet. Create one with +.');
      return '[]';
    }
    const list = h('ul', { className: 'jr-Tree' });
    for (const secret of secrets) {
      const keys = h('span', { className: 'jr-Keys' });
      for (const key of secret.keys) {
        keys.append(h('code', { className: 'jr-Key', text: key }));
      }
      const row = h(
        'div',
        { className: 'jr-Row jr-SecretRowItem', title: `updated ${secret.updated_at}` },
        h('span', { className: 'jr-Name', text: secret.name }),
        keys,
        button('Edit', () => void this.edit(secret), `Update secret ${secret.name}`),
        button('Delete', () => void this.remove(secret.name), `Delete secret ${secret.name}`)
      );
      row.dataset.secret = secret.name;
      list.append(h('li', {}, row));
    }
    this.body.replaceChildren(list);
    return JSON.stringify(secrets);
  }

  private async edit(existing: ISecret | null): Promise<void> {
    const result = await showDialog({
      title: existing ? `Update secret ${existing.name}` : 'New secret',
      body: new SecretForm(existing),
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({ label: existing ? 'Update' : 'Create' })
      ],
      focusNodeSelector: 'input'
    });
    if (!result.button.accept || result.value === null) {
      return;
    }
    const form = result.value;
    await attempt(existing ? `update secret ${form.name}` : 'create the secret', async () => {
      if (existing) {
        await requestAPI(
          `secrets/${encodeURIComponent(form.name)}`,
          jsonBody({ values: form.values, remove: form.remove }, 'PUT')
        );
      } else {
        await requestAPI('secrets', jsonBody({ name: form.name, values: form.values }, 'POST'));
      }
    });
    await this.refresh().catch(() => undefined);
  }

  private async remove(name: string): Promise<void> {
    if (!(await confirm('Delete secret?', `Delete secret ${name}? This cannot be undone.`, 'Delete'))) {
      return;
    }
    await attempt(`delete secret ${name}`, async () => {
      await requestAPI(`secrets/${encodeURIComponent(name)}`, { method: 'DELETE' });
    });
    await this.refresh().catch(() => undefined);
  }
}

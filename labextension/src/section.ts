// A titled section of the sidebar with its own toolbar and a body it re-renders.
import { Toolbar, ToolbarButton } from '@jupyterlab/apputils';
import { LabIcon, refreshIcon } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { h } from './dom';

export abstract class Section extends Panel {
  readonly body: HTMLElement;
  readonly toolbar = new Toolbar();
  private lastSeen = '';

  constructor(
    readonly key: string,
    title: string
  ) {
    super();
    this.addClass('jr-Section');
    this.addClass(`jr-Section-${key}`);
    this.node.dataset.section = key;
    const header = new Widget({ node: h('div', { className: 'jr-SectionHeader' }) });
    header.node.append(h('h3', { className: 'jr-SectionTitle', text: title }));
    this.addWidget(header);
    this.toolbar.addClass('jr-SectionToolbar');
    this.addWidget(this.toolbar);
    const content = new Widget({ node: h('div', { className: 'jr-SectionBody' }) });
    this.body = content.node;
    this.addWidget(content);
    this.addTool('refresh', refreshIcon, `Refresh ${title}`, () => this.refresh());
  }

  addTool(name: string, icon: LabIcon, tooltip: string, onClick: () => void): void {
    this.toolbar.addItem(
      name,
      new ToolbarButton({ icon, tooltip, onClick, className: `jr-Tool-${name}` })
    );
  }

  /** Fetch and render; true when what the server said changed since last time. */
  async refresh(): Promise<boolean> {
    let seen: string;
    try {
      seen = await this.load();
    } catch (error) {
      this.lastSeen = '';
      this.showMessage(error instanceof Error ? error.message : String(error), 'jr-Error');
      throw error;
    }
    const changed = seen !== this.lastSeen;
    this.lastSeen = seen;
    return changed;
  }

  /** Fetch, render, and return a fingerprint of what was fetched. */
  protected abstract load(): Promise<string>;

  protected showMessage(text: string, className = 'jr-Message'): void {
    this.body.replaceChildren(h('div', { className, text }));
  }
}

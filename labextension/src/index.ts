// The jupyter_remote sidebar: volumes, secrets, where work runs, running work.
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Poll } from '@lumino/polling';
import { Panel } from '@lumino/widgets';

import { BackendIndicator, RunningSection } from './running';
import { Section } from './section';
import { SecretsSection } from './secrets';
import { VolumesSection } from './volumes';

const ICON = new LabIcon({
  name: 'jupyter-remote:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M4 5h16v4H4zm0 5h16v4H4zm0 5h16v4H4z" opacity=".85"/>' +
    '<circle cx="7" cy="7" r="1"/><circle cx="7" cy="12" r="1"/><circle cx="7" cy="17" r="1"/></g></svg>'
});

// Polling: every 5 s while the sidebar is shown; twice as long after each poll that saw no
// change, up to a minute; after an error Poll backs off the same way. Nothing runs while
// the sidebar is hidden or the browser tab is in the background.
const FAST_MS = 5_000;
const SLOW_MS = 60_000;

class Sidebar extends Panel {
  readonly sections: Section[] = [
    new BackendIndicator(),
    new VolumesSection(),
    new SecretsSection(),
    new RunningSection()
  ];
  readonly poll: Poll;

  constructor() {
    super();
    this.id = 'jupyter-remote-sidebar';
    this.addClass('jr-Sidebar');
    this.title.icon = ICON;
    this.title.caption = 'jupyter_remote: volumes, secrets, running work';
    for (const section of this.sections) {
      this.addWidget(section);
    }
    this.poll = new Poll({
      auto: false,
      factory: () => this.refreshAll(),
      frequency: { interval: FAST_MS, backoff: true, max: SLOW_MS },
      name: 'jupyter-remote:sidebar',
      standby: () => (this.isVisible ? 'when-hidden' : true)
    });
  }

  private async refreshAll(): Promise<void> {
    const changed = await Promise.all(this.sections.map(s => s.refresh()));
    const interval = changed.some(Boolean)
      ? FAST_MS
      : Math.min(SLOW_MS, this.poll.frequency.interval * 2);
    if (interval !== this.poll.frequency.interval) {
      this.poll.frequency = { ...this.poll.frequency, interval };
    }
  }

  protected onAfterShow(): void {
    this.poll.frequency = { ...this.poll.frequency, interval: FAST_MS };
    void this.poll.start().then(() => this.poll.refresh());
  }

  dispose(): void {
    this.poll.dispose();
    super.dispose();
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-remote:sidebar',
  description: 'A sidebar for jupyter_remote: volumes, secrets, where work runs, running work.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const sidebar = new Sidebar();
    app.shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, sidebar.id);
    const command = 'jupyter-remote:open-sidebar';
    app.commands.addCommand(command, {
      label: 'Show the jupyter_remote sidebar',
      execute: () => app.shell.activateById(sidebar.id)
    });
    palette?.addItem({ command, category: 'jupyter_remote' });
  }
};

export default plugin;

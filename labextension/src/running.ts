// Running work (Nomad: the jobs `jupyter-remote ps` lists, logs, stop) and the backend
// indicator (where work runs).
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { requestAPI, withQuery } from './api';
import { attempt, button, confirm, h } from './dom';
import { Section } from './section';

interface IGpus {
  device: string;
  gpu: string | null;
  count: number;
  per_node: number;
}

export interface IBackend {
  backend: string;
  address: string;
  reachable: boolean;
  message: string;
  gpus: IGpus[];
}

interface IJob {
  id: string;
  function: string;
  owner: string;
  status: string;
  running: number;
  pending: number;
  resources: string;
  gpus: string[];
}

interface ILogs {
  allocations: { id: string; index: number; status: string; text: string }[];
}

/** Where work runs: a line at the top of the sidebar. */
export class BackendIndicator extends Section {
  constructor() {
    super('backend', 'Where work runs');
  }

  protected async load(): Promise<string> {
    const status = await requestAPI<IBackend>('backend');
    const dot = h('span', {
      className: `jr-Dot ${status.reachable ? 'jr-Dot-ok' : 'jr-Dot-down'}`
    });
    const name = status.backend === 'nomad' ? 'Nomad' : 'Local';
    const line = h(
      'div',
      { className: 'jr-Backend', title: status.message },
      dot,
      h('strong', { className: 'jr-BackendName', text: name }),
      h('span', { className: 'jr-Address', text: ` ${status.address}` })
    );
    line.dataset.backend = status.backend;
    const gpus = status.gpus.length
      ? status.gpus
          .map(g => `${g.count} × ${g.gpu ?? g.device}${g.gpu ? '' : ' (gpu="any")'}`)
          .join(', ')
      : 'no GPUs';
    const detail = h('div', {
      className: status.reachable ? 'jr-Meta' : 'jr-Error',
      text: status.reachable ? gpus : status.message
    });
    this.body.replaceChildren(line, detail);
    return JSON.stringify(status);
  }
}

export class RunningSection extends Section {
  constructor() {
    super('running', 'Running');
  }

  protected async load(): Promise<string> {
    const reply = await requestAPI<{ listable: boolean; message: string; jobs: IJob[] }>(
      'running'
    );
    if (!reply.listable || reply.jobs.length === 0) {
      this.showMessage(reply.message);
      return JSON.stringify(reply);
    }
    const list = h('ul', { className: 'jr-Tree' });
    for (const job of reply.jobs) {
      const gpus = job.gpus.length ? ` · ${job.gpus.join(', ')}` : '';
      const row = h(
        'div',
        { className: 'jr-Row jr-Job', title: `${job.id} (owner ${job.owner}): ${job.resources}` },
        h('span', { className: 'jr-Name', text: job.function || job.id }),
        h('span', {
          className: 'jr-Meta',
          text: `${job.status} · ${job.running} running, ${job.pending} pending${gpus}`
        }),
        button('Logs', () => void this.logs(job.id), `Logs of ${job.id}`),
        button('Stop', () => void this.stop(job.id), `Stop ${job.id}`)
      );
      row.dataset.job = job.id;
      list.append(h('li', {}, row));
    }
    this.body.replaceChildren(list);
    return JSON.stringify(reply.jobs);
  }

  private async logs(job: string): Promise<void> {
    await attempt(`read the logs of ${job}`, async () => {
      const pre = h('pre', { className: 'jr-Logs' });
      const show = async () => {
        const reply = await requestAPI<ILogs>(
          withQuery(`running/${encodeURIComponent(job)}/logs`, { type: 'stderr' })
        );
        pre.textContent = reply.allocations
          .map(a => `--- allocation ${a.id.slice(0, 8)} (${a.status})\n${a.text}`)
          .join('\n');
      };
      await show();
      const body = new Widget({ node: h('div', {}, pre) });
      const timer = window.setInterval(() => void show().catch(() => undefined), 3000);
      try {
        await showDialog({ title: `Logs of ${job} (stderr)`, body, buttons: [Dialog.okButton({ label: 'Close' })] });
      } finally {
        window.clearInterval(timer);
      }
    });
  }

  private async stop(job: string): Promise<void> {
    if (!(await confirm('Stop job?', `Stop every worker of ${job}?`, 'Stop'))) {
      return;
    }
    await attempt(`stop ${job}`, async () => {
      await requestAPI(`running/${encodeURIComponent(job)}/stop`, { method: 'POST' });
    });
    await this.refresh().catch(() => undefined);
  }
}

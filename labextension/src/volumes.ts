// Volumes: a tree per volume; upload by button or drag and drop, download, delete.
import { InputDialog } from '@jupyterlab/apputils';
import { addIcon } from '@jupyterlab/ui-components';

import { jsonBody, requestAPI, requestBlob, withQuery, ApiError } from './api';
import { attempt, button, confirm, formatBytes, h } from './dom';
import { Section } from './section';

interface IVolume {
  name: string;
  size: number;
  files: number;
  mtime: number;
}

interface IEntry {
  path: string;
  name: string;
  type: 'file' | 'dir' | 'link' | 'other';
  size: number;
  mtime: number;
}

function join(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

export class VolumesSection extends Section {
  // The directories the user opened, per volume ("/" is the volume itself).
  private readonly open = new Map<string, Set<string>>();

  constructor() {
    super('volumes', 'Volumes');
    this.addTool('new-volume', addIcon, 'New volume', () => void this.create());
    // Files dropped beside a volume or folder row would make the browser open them,
    // leaving JupyterLab: accept the drag here and drop nothing.
    this.node.addEventListener('dragover', event => {
      if (event.dataTransfer?.types.includes('Files')) {
        event.preventDefault();
      }
    });
    this.node.addEventListener('drop', event => event.preventDefault());
  }

  protected async load(): Promise<string> {
    const { volumes } = await requestAPI<{ volumes: IVolume[] }>('volumes');
    const list = h('ul', { className: 'jr-Tree' });
    const trees: string[] = [];
    for (const volume of volumes) {
      const dirs = this.open.get(volume.name);
      const item = this.volumeItem(volume);
      list.append(item);
      if (dirs?.has('/')) {
        const children = await this.directory(volume.name, '/', dirs);
        item.append(children.node);
        trees.push(children.seen);
      }
    }
    if (volumes.length === 0) {
      this.showMessage('No volumes yet. Create one with +.');
    } else {
      this.body.replaceChildren(list);
    }
    return JSON.stringify([volumes, trees]);
  }

  private toggle(volume: string, dir: string): void {
    const dirs = this.open.get(volume) ?? new Set<string>();
    if (dirs.has(dir)) {
      dirs.delete(dir);
    } else {
      dirs.add(dir);
    }
    this.open.set(volume, dirs);
    void this.refresh().catch(() => undefined);
  }

  private volumeItem(volume: IVolume): HTMLLIElement {
    const opened = this.open.get(volume.name)?.has('/') ?? false;
    const row = h(
      'div',
      { className: 'jr-Row jr-VolumeRow', title: `${volume.files} files, ${formatBytes(volume.size)}` },
      h('span', { className: 'jr-Twisty', text: opened ? '▾' : '▸' }),
      h('span', { className: 'jr-Name', text: volume.name }),
      h('span', { className: 'jr-Meta', text: formatBytes(volume.size) }),
      this.uploadButton(volume.name, '/'),
      button('Delete', () => void this.deleteVolume(volume.name), `Delete volume ${volume.name}`)
    );
    row.dataset.volume = volume.name;
    row.addEventListener('click', () => this.toggle(volume.name, '/'));
    this.dropTarget(row, volume.name, '/');
    const item = h('li', { className: 'jr-Volume' }, row);
    item.dataset.volume = volume.name;
    return item;
  }

  private async directory(
    volume: string,
    dir: string,
    dirs: Set<string>
  ): Promise<{ node: HTMLUListElement; seen: string }> {
    const { entries } = await requestAPI<{ entries: IEntry[] }>(
      withQuery(`volumes/${encodeURIComponent(volume)}/files`, { path: dir })
    );
    const list = h('ul', { className: 'jr-Tree' });
    const seen: string[] = [JSON.stringify(entries)];
    if (entries.length === 0) {
      list.append(h('li', { className: 'jr-Empty', text: 'empty: drop files here or upload' }));
    }
    for (const entry of entries) {
      const isDir = entry.type === 'dir';
      const opened = isDir && dirs.has(entry.path);
      const row = h(
        'div',
        { className: `jr-Row jr-Entry jr-Entry-${entry.type}`, title: entry.path },
        h('span', { className: 'jr-Twisty', text: isDir ? (opened ? '▾' : '▸') : ' ' }),
        h('span', { className: 'jr-Name', text: entry.name }),
        h('span', { className: 'jr-Meta', text: isDir ? '' : formatBytes(entry.size) })
      );
      row.dataset.path = entry.path;
      if (isDir) {
        row.append(this.uploadButton(volume, entry.path));
        row.addEventListener('click', () => this.toggle(volume, entry.path));
        this.dropTarget(row, volume, entry.path);
      } else {
        row.append(
          button('Download', () => void this.download(volume, entry), `Download ${entry.path}`)
        );
      }
      row.append(button('Delete', () => void this.remove(volume, entry), `Delete ${entry.path}`));
      const item = h('li', {}, row);
      if (opened) {
        const inner = await this.directory(volume, entry.path, dirs);
        item.append(inner.node);
        seen.push(inner.seen);
      }
      list.append(item);
    }
    return { node: list, seen: seen.join('') };
  }

  private uploadButton(volume: string, dir: string): HTMLElement {
    const input = h('input', { className: 'jr-FileInput' });
    input.type = 'file';
    input.multiple = true;
    input.hidden = true;
    input.addEventListener('click', event => event.stopPropagation());
    input.addEventListener('change', () => {
      const files = Array.from(input.files ?? []);
      input.value = '';
      void this.upload(volume, dir, files);
    });
    const label = button('Upload', () => input.click(), `Upload files into ${volume}:${dir}`);
    return h('span', { className: 'jr-Upload' }, label, input);
  }

  private dropTarget(row: HTMLElement, volume: string, dir: string): void {
    row.addEventListener('dragover', event => {
      if (event.dataTransfer?.types.includes('Files')) {
        event.preventDefault();
        event.stopPropagation();
        row.classList.add('jr-DropTarget');
      }
    });
    row.addEventListener('dragleave', () => row.classList.remove('jr-DropTarget'));
    row.addEventListener('drop', event => {
      event.preventDefault();
      event.stopPropagation();
      row.classList.remove('jr-DropTarget');
      void this.upload(volume, dir, Array.from(event.dataTransfer?.files ?? []));
    });
  }

  private async upload(volume: string, dir: string, files: File[]): Promise<void> {
    for (const file of files) {
      await attempt(`upload ${file.name}`, async () => {
        const path = `volumes/${encodeURIComponent(volume)}/files`;
        const put = (force: boolean) =>
          requestAPI(withQuery(path, { path: join(dir, file.name), force }), {
            method: 'PUT',
            body: file,
            headers: { 'Content-Type': 'application/octet-stream' }
          });
        try {
          await put(false);
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 409)) {
            throw error;
          }
          const target = join(dir, file.name);
          if (await confirm('Replace file?', `${target} already exists in ${volume}.`, 'Replace')) {
            await put(true);
          }
        }
      });
    }
    const dirs = this.open.get(volume) ?? new Set<string>();
    dirs.add('/').add(dir);
    this.open.set(volume, dirs);
    await this.refresh().catch(() => undefined);
  }

  private async download(volume: string, entry: IEntry): Promise<void> {
    await attempt(`download ${entry.path}`, async () => {
      const blob = await requestBlob(
        withQuery(`volumes/${encodeURIComponent(volume)}/download`, { path: entry.path })
      );
      const url = URL.createObjectURL(blob);
      const link = h('a');
      link.href = url;
      link.download = entry.name;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    });
  }

  private async remove(volume: string, entry: IEntry): Promise<void> {
    const what = entry.type === 'dir' ? 'the folder and everything in it' : 'the file';
    if (!(await confirm('Delete?', `Delete ${what} ${entry.path} from ${volume}?`, 'Delete'))) {
      return;
    }
    await attempt(`delete ${entry.path}`, async () => {
      await requestAPI(
        withQuery(`volumes/${encodeURIComponent(volume)}/files`, {
          path: entry.path,
          recursive: entry.type === 'dir'
        }),
        { method: 'DELETE' }
      );
    });
    await this.refresh().catch(() => undefined);
  }

  private async create(): Promise<void> {
    const result = await InputDialog.getText({ title: 'New volume', placeholder: 'datasets' });
    if (!result.button.accept || !result.value) {
      return;
    }
    const name = result.value;
    await attempt(`create volume ${name}`, async () => {
      await requestAPI('volumes', jsonBody({ name }, 'POST'));
    });
    await this.refresh().catch(() => undefined);
  }

  private async deleteVolume(name: string): Promise<void> {
    const body = `Delete volume ${name} and every file in it? This cannot be undone.`;
    if (!(await confirm('Delete volume?', body, 'Delete'))) {
      return;
    }
    await attempt(`delete volume ${name}`, async () => {
      await requestAPI(`volumes/${encodeURIComponent(name)}`, { method: 'DELETE' });
    });
    this.open.delete(name);
    await this.refresh().catch(() => undefined);
  }
}

// The one helper that talks to the server extension (jupyter_remote/lab/).
// ServerConnection adds the token, the XSRF header and the base URL.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const API_PATH = 'jupyter-remote/api';

/** An error answered by the server extension: `message` says what to do next. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

/** `path` with a query string built from `query` (values are encoded). */
export function withQuery(
  path: string,
  query: Record<string, string | boolean>
): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    params.set(key, typeof value === 'boolean' ? (value ? '1' : '0') : value);
  }
  return `${path}?${params.toString()}`;
}

async function send(path: string, init: RequestInit): Promise<Response> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, API_PATH, path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(
      `cannot reach the Jupyter server (${String(error)}); is it still running?`,
      0
    );
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && typeof body.message === 'string') {
        message = body.message;
      }
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(message, response.status);
  }
  return response;
}

/** A JSON request; `undefined` for an answer without a body (204). */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const response = await send(path, init);
  if (response.status === 204) {
    return undefined as T;
  }
  return (await response.json()) as T;
}

/** The raw body of an answer (a file's download). */
export async function requestBlob(path: string): Promise<Blob> {
  return (await send(path, {})).blob();
}

export function jsonBody(value: unknown, method: string): RequestInit {
  return {
    method,
    body: JSON.stringify(value),
    headers: { 'Content-Type': 'application/json' }
  };
}

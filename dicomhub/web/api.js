// Every call to the dicomhub REST API goes through here, so that every failure
// becomes one ApiError with a sentence a person can read.

// The API lives one level above /app/, wherever the server is mounted.
export const API_ROOT = new URL("../", import.meta.url);

const TIMEOUT_MS = 30000;

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

export function apiUrl(path) {
  return new URL(path.replace(/^\/+/, ""), API_ROOT).href;
}

function describe(status, body) {
  const details = body && (body.Details || body.Message);
  switch (status) {
    case 400:
      return `The server refused the request: ${details || "bad request"}.`;
    case 401:
      return "You are not signed in, or your user name or password was refused.";
    case 403:
      return "You are not allowed to do this.";
    case 404:
      return "This item was not found. It may have been deleted by someone else.";
    case 409:
      return `This cannot be done now: ${details || "conflict"}.`;
    case 413:
      return "The file is too large for the server.";
    default:
      if (status >= 500) {
        return `The server had an internal problem${details ? `: ${details}` : ""}.`;
      }
      return `The server answered with an error (${status})${details ? `: ${details}` : ""}.`;
  }
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// Sends one request and answers the parsed body (JSON, text or null).
export async function request(method, path, body = undefined, { timeout = TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  const init = { method, signal: controller.signal, headers: {} };
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof ArrayBuffer || typeof body === "string") {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  let response;
  try {
    response = await fetch(apiUrl(path), init);
  } catch (error) {
    if (error.name === "AbortError") {
      throw new ApiError("The server took too long to answer. Please try again.");
    }
    throw new ApiError("Cannot reach the server. Check the network connection and try again.");
  } finally {
    clearTimeout(timer);
  }
  let parsed;
  try {
    parsed = await readBody(response);
  } catch {
    throw new ApiError("The connection was lost while reading the answer.", response.status);
  }
  if (!response.ok) {
    throw new ApiError(describe(response.status, parsed), response.status);
  }
  return parsed;
}

export const get = (path, options) => request("GET", path, undefined, options);
export const post = (path, body, options) => request("POST", path, body, options);
export const put = (path, body, options) => request("PUT", path, body ?? "", options);
export const del = (path, options) => request("DELETE", path, undefined, options);

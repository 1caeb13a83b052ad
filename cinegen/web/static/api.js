// The page talks to the server like any Veo client: the Gemini API dialect under /v1beta.
// The API key lives in this browser's localStorage only and goes out as x-goog-api-key
// (and as ?key= on media URLs, since <video> and <a download> cannot send headers).

export const VERSION = "v1beta";
const KEY_STORAGE = "cinegen.apiKey";

export class ApiError extends Error {
  constructor(httpStatus, status, message) {
    super(message);
    this.httpStatus = httpStatus; // 0 when the server could not be reached
    this.status = status; // Google's status word, e.g. INVALID_ARGUMENT
  }

  get needsKey() {
    return this.httpStatus === 401 || this.httpStatus === 403;
  }
}

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

async function call(method, path, body) {
  const headers = {};
  const key = getKey();
  if (key) headers["x-goog-api-key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "UNAVAILABLE", `Could not reach the server (${err.message}).`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error;
    // The server's own words, verbatim: they are Veo's.
    throw new ApiError(
      response.status,
      (error && error.status) || "",
      (error && error.message) || text || response.statusText,
    );
  }
  return data;
}

/** `models/m/operations/id` → its path under the API version. */
function opPath(name) {
  return `/${VERSION}/${name.split("/").map(encodeURIComponent).join("/")}`;
}

export const api = {
  models: () => call("GET", `/${VERSION}/models`),
  create: (model, body) =>
    call("POST", `/${VERSION}/models/${encodeURIComponent(model)}:predictLongRunning`, body),
  get: (name) => call("GET", opPath(name)),
  list: (pageToken) =>
    call(
      "GET",
      `/${VERSION}/operations?pageSize=24` +
        (pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ""),
    ),
  cancel: (name) => call("POST", `${opPath(name)}:cancel`),
  remove: (name) => call("DELETE", opPath(name)),
  // cinegen's own extension: the webhook deliveries of one operation (static and dynamic).
  webhookDeliveries: (name) =>
    call("GET", `/${VERSION}/operations/${encodeURIComponent(opId(name))}/webhookDeliveries`),
  // cinegen's own extension: this key's usage today (UTC), priced at Veo's list prices.
  usageToday: () => call("GET", `/${VERSION}/cinegen/usage`),
};

/** A video uri the server returned, usable by <video> and <a download> (key as ?key=). */
export function mediaUrl(uri) {
  const key = getKey();
  if (!key) return uri;
  const url = new URL(uri, location.href);
  url.searchParams.set("key", key);
  return url.toString();
}

export function sampleUris(op) {
  const samples = op?.response?.generateVideoResponse?.generatedSamples || [];
  return samples.map((s) => s.video && s.video.uri).filter(Boolean);
}

export function opId(name) {
  return name.split("/").pop();
}

export function opModel(name) {
  const parts = name.split("/");
  const at = parts.indexOf("models");
  return at >= 0 ? parts[at + 1] : "";
}

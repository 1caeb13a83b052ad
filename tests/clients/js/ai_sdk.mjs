// Drives the Vercel AI SDK 7 (`ai` + @ai-sdk/google / @ai-sdk/google-vertex) against cinegen,
// as its docs show: experimental_generateVideo with the provider pointed at cinegen by baseURL.
//   node ai_sdk.mjs <provider: google | vertex> <scenario: loopback-download | default-download>
//                   <baseURL> <outDir>
// google: createGoogleGenerativeAI({ baseURL: <url>/v1beta, apiKey }), the Gemini API dialect.
// vertex: createGoogleVertex({ apiKey, baseURL: <url>/v1/publishers/google }), express mode.
// `loopback-download` passes a `download` function that fetches the loopback URL;
// `default-download` leaves the SDK's own, which refuses loopback and private addresses.
// Prints one `RESULT {json}` line, or `SDK_ERROR {json}` (and exits 3) when the SDK throws.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { experimental_generateVideo as generateVideo } from "ai";
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { createGoogleVertex } from "@ai-sdk/google-vertex";

const [providerName, scenario, baseURL, outDir] = process.argv.slice(2);
const apiKey = "anything";

// What a user passes when the server's video URLs are on loopback or a private network.
async function loopbackDownload({ url, abortSignal }) {
  const response = await fetch(url, { signal: abortSignal });
  if (!response.ok) throw new Error(`download ${url}: HTTP ${response.status}`);
  const data = new Uint8Array(await response.arrayBuffer());
  return { data, mediaType: response.headers.get("content-type") ?? undefined };
}

const model = providerName === "google"
  ? createGoogleGenerativeAI({ baseURL: `${baseURL}/v1beta`, apiKey }).video("veo-3.1-fast-generate-preview")
  : createGoogleVertex({ apiKey, baseURL: `${baseURL}/v1/publishers/google` }).video("veo-3.1-fast-generate-001");

const options = {
  model,
  prompt: "A paper boat drifts across a pond",
  duration: 4,
  poll: { intervalMs: 250 },  // the default 5 s is for real Veo's minutes-long jobs
};
if (scenario === "loopback-download") options.download = loopbackDownload;
else if (scenario !== "default-download") throw new Error(`unknown scenario ${scenario}`);

try {
  const result = await generateVideo(options);
  const file = path.join(outDir, `${providerName}.mp4`);
  writeFileSync(file, result.video.uint8Array);
  console.log("RESULT " + JSON.stringify({
    file,
    count: result.videos.length,
    mediaType: result.video.mediaType,
    providerMetadata: result.providerMetadata,
    warnings: result.warnings,
  }));
} catch (error) {
  console.log("SDK_ERROR " + JSON.stringify({
    name: error.name, message: error.message, url: error.url ?? null,
    cause: error.cause ? String(error.cause) : null,
  }));
  process.exit(3);
}

// Drives @google/genai against cinegen, configured from the environment only.
//   node drive.mjs <package alias: genai-3 | genai-2> <scenario: text | image | extension> <outDir>
// Vertex mode (3.1.0): GOOGLE_GENAI_USE_VERTEXAI=true, GOOGLE_API_KEY, GOOGLE_VERTEX_BASE_URL.
// Gemini API mode (2.32.0): GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL.
// Prints one `RESULT {json}` line per generation.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [pkg, scenario, outDir] = process.argv.slice(2);
const { GoogleGenAI } = await import(pkg);
const here = path.dirname(fileURLToPath(import.meta.url));
const version = JSON.parse(readFileSync(path.join(here, "node_modules", pkg, "package.json"))).version;
const ai = new GoogleGenAI({});

async function generate(request, file) {
  let operation = await ai.models.generateVideos(request);
  const created = operation.name;
  let polls = 0;
  while (!operation.done) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    operation = await ai.operations.getVideosOperation({ operation });
    polls += 1;
  }
  if (operation.error) throw new Error(JSON.stringify(operation.error));
  const generated = operation.response.generatedVideos[0];
  const downloadPath = path.join(outDir, file);
  await ai.files.download({ file: generated, downloadPath });
  console.log("RESULT " + JSON.stringify({
    version, created, name: operation.name, polls, file: downloadPath,
    className: operation.constructor.name,
    video: { uri: generated.video.uri ?? null, hasBytes: Boolean(generated.video.videoBytes) },
  }));
  return operation;
}

const model = "veo-3.1-generate-preview";
if (scenario === "text") {
  await generate({ model, prompt: "A hot air balloon over a desert", config: { durationSeconds: 4 } }, "text.mp4");
} else if (scenario === "image") {
  const imageBytes = readFileSync(path.join(outDir, "input.png")).toString("base64");
  await generate({ model, prompt: "The scene comes alive", image: { imageBytes, mimeType: "image/png" },
                   config: { durationSeconds: 4 } }, "image.mp4");
} else if (scenario === "extension") {
  const first = await generate({ model, prompt: "An origami crane unfolds" }, "base.mp4");
  await generate({ model, prompt: "It flies away", video: first.response.generatedVideos[0].video,
                   config: { numberOfVideos: 1, resolution: "720p" } }, "extended.mp4");
} else {
  throw new Error(`unknown scenario ${scenario}`);
}

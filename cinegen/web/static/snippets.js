// "Copy as curl" and "Copy as Python": code that sends the same request again to this server.
// Images are referred to by the file names they were uploaded with (the code reads them from
// the current directory); the seed the server drew is filled in, so the code reproduces the
// same video(s), not merely a similar request. The API key is read from $GEMINI_API_KEY.

const PY_PARAMS = [
  ["negativePrompt", "negative_prompt"],
  ["aspectRatio", "aspect_ratio"],
  ["resolution", "resolution"],
  ["durationSeconds", "duration_seconds"],
  ["sampleCount", "number_of_videos"],
];

/** The record's parameters with the seed the server used when the form left it random. */
export function reproducible(record, seed) {
  const parameters = { ...record.parameters };
  if (parameters.seed === undefined && seed !== undefined && seed !== null) parameters.seed = seed;
  return { ...record, parameters };
}

function shellQuote(text) {
  return `'${String(text).replace(/'/g, `'\\''`)}'`;
}

/** A JSON string literal is also a valid Python string literal (same escapes). */
function pyString(text) {
  return JSON.stringify(String(text));
}

const B64_MARK = "@@CINEGEN_B64:";
const MARK_RE = /@@CINEGEN_B64:(.*?)@@/;

function imageWire(note) {
  return { bytesBase64Encoded: `${B64_MARK}${note.name}@@`, mimeType: note.mimeType };
}

/** The request body with each image replaced by a marker the shell fills in. */
function wireBody(record) {
  const instance = {};
  if (record.prompt) instance.prompt = record.prompt;
  if (record.image) instance.image = imageWire(record.image);
  if (record.lastFrame) instance.lastFrame = imageWire(record.lastFrame);
  if (record.references && record.references.length) {
    instance.referenceImages = record.references.map((r) => ({
      image: imageWire(r),
      referenceType: "asset",
    }));
  }
  if (record.video) instance.video = { uri: record.video.uri };
  return { instances: [instance], parameters: record.parameters };
}

export function curlSnippet(record, origin) {
  // The body goes through stdin: an image's base64 is too long for one command-line argument.
  const parts = JSON.stringify(wireBody(record), null, 2).split(MARK_RE);
  const body = parts.map((part, i) =>
    i % 2 === 0
      ? `  printf '%s' ${shellQuote(part)}`
      : `  base64 < ${shellQuote(JSON.parse(`"${part}"`))} | tr -d '\\n'`,
  );
  return [
    "# Needs curl and jq. Images are read from the current directory.",
    `BASE_URL=${shellQuote(`${origin}/v1beta`)}`,
    "response=$({",
    ...body,
    `} | curl -s "$BASE_URL/models/${record.model}:predictLongRunning" \\`,
    '  -H "x-goog-api-key: $GEMINI_API_KEY" \\',
    "  -H 'Content-Type: application/json' \\",
    "  --data-binary @-)",
    "operation=$(echo \"$response\" | jq -r '.name // empty')",
    'echo "operation: ${operation:-none}"',
    'while [ -n "$operation" ]; do',
    '  status=$(curl -s -H "x-goog-api-key: $GEMINI_API_KEY" "$BASE_URL/$operation")',
    '  if [ "$(echo "$status" | jq .done)" = "true" ]; then break; fi',
    "  sleep 2",
    "done",
    'if [ -z "$operation" ]; then',
    '  echo "$response" | jq -r .error.message',
    'elif echo "$status" | jq -e .error > /dev/null; then',
    '  echo "$status" | jq -r .error.message',
    "else",
    "  n=0",
    "  for uri in $(echo \"$status\" | jq -r '.response.generateVideoResponse.generatedSamples[].video.uri'); do",
    '    curl -s -L -o "cinegen_$n.mp4" -H "x-goog-api-key: $GEMINI_API_KEY" "$uri"',
    '    echo "saved cinegen_$n.mp4"; n=$((n + 1))',
    "  done",
    "fi",
    "",
  ].join("\n");
}

function pyImage(note) {
  return `types.Image.from_file(location=${pyString(note.name)}, mime_type=${pyString(note.mimeType)})`;
}

export function pythonSnippet(record, origin) {
  const config = [];
  for (const [wire, py] of PY_PARAMS) {
    const value = record.parameters[wire];
    if (value === undefined) continue;
    config.push(`        ${py}=${typeof value === "string" ? pyString(value) : value},`);
  }
  if (record.parameters.seed !== undefined) {
    // The SDK refuses `seed=` outside Vertex mode; the server takes it, so it rides along.
    config.push(
      `        http_options=types.HttpOptions(extra_body={"parameters": {"seed": ${record.parameters.seed}}}),`,
    );
  }
  if (record.lastFrame) config.push(`        last_frame=${pyImage(record.lastFrame)},`);
  if (record.references && record.references.length) {
    config.push("        reference_images=[");
    for (const ref of record.references) {
      config.push(
        `            types.VideoGenerationReferenceImage(image=${pyImage(ref)}, reference_type="asset"),`,
      );
    }
    config.push("        ],");
  }
  const args = [`    model=${pyString(record.model)},`];
  if (record.prompt) args.push(`    prompt=${pyString(record.prompt)},`);
  if (record.image) args.push(`    image=${pyImage(record.image)},`);
  if (record.video) args.push(`    video=types.Video(uri=${pyString(record.video.uri)}),`);
  args.push("    config=types.GenerateVideosConfig(", ...config, "    ),");
  return [
    "# pip install google-genai==2.34.0   (images are read from the current directory)",
    "import os",
    "import time",
    "",
    "from google import genai",
    "from google.genai import types",
    "",
    "client = genai.Client(",
    '    api_key=os.environ.get("GEMINI_API_KEY", "none"),',
    `    http_options=types.HttpOptions(base_url=${pyString(origin)}),`,
    ")",
    "operation = client.models.generate_videos(",
    ...args,
    ")",
    "while not operation.done:",
    "    time.sleep(2)",
    "    operation = client.operations.get(operation)",
    "if operation.error:",
    '    raise SystemExit(operation.error.get("message"))',
    "for n, generated in enumerate(operation.response.generated_videos):",
    "    client.files.download(file=generated.video)",
    '    generated.video.save(f"cinegen_{n}.mp4")',
    '    print(f"saved cinegen_{n}.mp4")',
    "",
  ].join("\n");
}

// The Veo rules, shown before submitting. What a model takes comes from the capability row
// the server publishes (GET /v1beta/models → "cinegen"); the rules between fields are Veo's
// own (8 s for 1080p/4k, interpolation, references and extension; extension at 720p;
// references in 16:9; a last frame needs a first frame). The server stays the judge: whatever
// it refuses anyway is shown with its exact words.

export const ASPECTS = ["16:9", "9:16"];
export const RESOLUTIONS = ["720p", "1080p", "4k"];
export const SAMPLE_COUNTS = [1, 2, 3, 4];
export const SEED_MAX = 4294967295;
export const REQUIRED_DURATION = 8;
export const MAX_REFERENCES = 3;
const HD = ["1080p", "4k"];
const EIGHT_SECOND_MODES = ["interpolation", "references", "extension"];

export const MODE_LABELS = {
  text: "Text to video",
  image: "Image to video",
  interpolation: "First + last frame",
  references: "Reference images",
  extension: "Extension",
};

/** One entry of GET /v1beta/models, as the page uses it. */
export function modelRow(json) {
  const caps = json.cinegen || {};
  const id = json.name.replace(/^models\//, "");
  const durations = caps.durations || [8];
  return {
    id,
    name: json.displayName || id,
    audio: caps.audio || "never",
    durations,
    defaultDuration: Math.max(...durations),
    resolutions: caps.resolutions || ["720p"],
    referenceImages: Math.min(caps.referenceImages || 0, MAX_REFERENCES),
    extension: Boolean(caps.extension),
  };
}

function list(values, unit = "") {
  const items = values.map((v) => `${v}${unit}`);
  if (items.length < 2) return items.join("");
  return `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}

/** A line describing the model's capability row. */
export function describe(model) {
  const parts = [
    `${list(model.durations)} s`,
    model.resolutions.join(", "),
    model.referenceImages ? `up to ${model.referenceImages} reference images` : "no reference images",
    model.extension ? "extends videos" : "no extension",
    { always: "native audio", optional: "audio", never: "silent" }[model.audio] || model.audio,
  ];
  return parts.join(" · ");
}

export function modeOf(inputs) {
  if (inputs.extend) return "extension";
  if (inputs.refs.length) return "references";
  if (inputs.image && inputs.lastFrame) return "interpolation";
  if (inputs.image) return "image";
  return "text";
}

/** Why each input is unavailable (null: available), and the inputs that will be sent. */
export function inputRules(model, s) {
  const why = { image: null, lastFrame: null, refs: null, extend: null, refSlots: [] };
  const name = model.name;
  if (!model.extension) why.extend = `${name} can't extend videos`;
  const extending = Boolean(s.extend) && !why.extend;
  if (extending) {
    why.image = why.lastFrame = why.refs = "An extension takes the video and a prompt only";
  }
  if (!why.refs && model.referenceImages === 0) why.refs = `${name} takes no reference images`;
  const hasRefs = s.refs.some(Boolean);
  if (!why.image && hasRefs && !why.refs) {
    why.image = "A first frame can't be combined with reference images";
  }
  if (!why.refs && s.image && !why.image) {
    why.refs = "Reference images can't be combined with a first frame";
  }
  if (!why.lastFrame && !why.image && !s.image) why.lastFrame = "A last frame needs a first frame";
  if (!why.lastFrame && why.image) why.lastFrame = why.image;
  why.refSlots = s.refs.map((_, i) => {
    if (why.refs) return why.refs;
    if (i >= model.referenceImages) {
      return `${name} takes at most ${model.referenceImages} reference images`;
    }
    return null;
  });
  const effective = {
    image: why.image ? null : s.image,
    lastFrame: why.lastFrame ? null : s.lastFrame,
    refs: s.refs.filter((r, i) => r && !why.refSlots[i]),
    extend: why.extend ? null : s.extend,
  };
  return { why, effective, mode: modeOf(effective) };
}

function option(value, reason = null) {
  return { value, reason };
}

export function aspectOptions(model, mode) {
  return ASPECTS.map((v) => {
    if (mode === "extension") return option(v, "An extension keeps its video's aspect ratio");
    if (mode === "references" && v !== "16:9") return option(v, "Reference images need 16:9");
    return option(v);
  });
}

export function resolutionOptions(model, mode) {
  return RESOLUTIONS.map((v) => {
    if (!model.resolutions.includes(v)) {
      return option(v, `${model.name} makes ${list(model.resolutions)} only`);
    }
    if (mode === "extension" && v !== "720p") return option(v, "An extension is made at 720p");
    return option(v);
  });
}

export function durationOptions(model, mode, resolution, all) {
  return all.map((v) => {
    if (!model.durations.includes(v)) {
      return option(v, `${model.name} makes ${list(model.durations)} s videos`);
    }
    if (v !== REQUIRED_DURATION && EIGHT_SECOND_MODES.includes(mode)) {
      return option(v, `${MODE_LABELS[mode]} needs ${REQUIRED_DURATION} s`);
    }
    if (v !== REQUIRED_DURATION && HD.includes(resolution)) {
      return option(v, `${resolution} needs ${REQUIRED_DURATION} s`);
    }
    return option(v);
  });
}

export function sampleOptions() {
  return SAMPLE_COUNTS.map((v) => option(v));
}

/** The selected value if allowed, else the first allowed one of `prefer`, else any. */
export function settle(options, current, prefer = []) {
  const allowed = options.filter((o) => !o.reason).map((o) => o.value);
  if (allowed.includes(current) || !allowed.length) return current;
  for (const p of prefer) if (allowed.includes(p)) return p;
  return allowed[0];
}

export function seedProblem(text) {
  const t = text.trim();
  if (!t) return null;
  if (!/^\d+$/.test(t) || Number(t) > SEED_MAX) {
    return `The seed must be a whole number from 0 to ${SEED_MAX}`;
  }
  return null;
}

function imageJson(image) {
  return { bytesBase64Encoded: image.base64, mimeType: image.mimeType };
}

function fileNote(image) {
  return image ? { name: image.name, mimeType: image.mimeType } : null;
}

/**
 * The predictLongRunning body for the form, and a record of it without the image bytes (kept
 * in this browser to show the prompt in the history and to write the curl / Python code).
 */
export function buildRequest(model, s, inputs) {
  const { effective, mode } = inputs;
  const instance = {};
  const prompt = s.prompt.trim();
  if (prompt) instance.prompt = prompt;
  if (effective.image) instance.image = imageJson(effective.image);
  if (effective.lastFrame) instance.lastFrame = imageJson(effective.lastFrame);
  if (effective.refs.length) {
    instance.referenceImages = effective.refs.map((r) => ({
      image: imageJson(r),
      referenceType: "asset",
    }));
  }
  if (effective.extend) instance.video = { uri: effective.extend.uri };
  const parameters = {};
  if (mode !== "extension") parameters.aspectRatio = s.aspectRatio;
  if (model.resolutions.length > 1) parameters.resolution = s.resolution;
  parameters.durationSeconds = s.durationSeconds;
  parameters.sampleCount = s.sampleCount;
  if (s.seed.trim()) parameters.seed = Number(s.seed.trim());
  const negative = s.negativePrompt.trim();
  if (negative) parameters.negativePrompt = negative;
  const record = {
    model: model.id,
    mode,
    prompt,
    parameters,
    image: fileNote(effective.image),
    lastFrame: fileNote(effective.lastFrame),
    references: effective.refs.map(fileNote),
    video: effective.extend ? { uri: effective.extend.uri, label: effective.extend.label } : null,
  };
  return { body: { instances: [instance], parameters }, record };
}

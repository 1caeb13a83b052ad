// cinegen studio: the form, the rules shown before submitting, the live progress, the result
// and the history. Talks to the server through the Gemini API dialect only.

import { api, ApiError, getKey, mediaUrl, opId, opModel, sampleUris, setKey } from "./api.js";
import { History } from "./history.js";
import { dropRecord, getRecord, putRecord } from "./records.js";
import * as R from "./rules.js";
import { curlSnippet, pythonSnippet, reproducible } from "./snippets.js";
import { $, copyText, el, icon, onDroppedFile, opState, sleep, STATE_LABELS, toast } from "./ui.js";
import { wireVerify } from "./verify.js";

const POLL_MS = 400;
const FORM_STORAGE = "cinegen.form";
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];
const SLOT_NAMES = ["image", "lastFrame", "ref0", "ref1", "ref2"];

const state = {
  models: [],
  model: null,
  prompt: "",
  negativePrompt: "",
  aspectRatio: "16:9",
  resolution: "720p",
  durationSeconds: 8,
  sampleCount: 1,
  seed: "",
  image: null,
  lastFrame: null,
  refs: [null, null, null],
  extend: null,
};

let tracking = null; // the operation name the stage follows
let allDurations = [4, 5, 6, 7, 8];

// ------------------------------------------------------------------------------ form state

function slotValue(slot) {
  if (slot.startsWith("ref")) return state.refs[Number(slot.slice(3))];
  return state[slot];
}

function setSlot(slot, value) {
  if (slot.startsWith("ref")) state.refs[Number(slot.slice(3))] = value;
  else state[slot] = value;
}

function saveForm() {
  const keep = ["aspectRatio", "resolution", "durationSeconds", "sampleCount"];
  const saved = Object.fromEntries(keep.map((k) => [k, state[k]]));
  saved.model = state.model?.id;
  localStorage.setItem(FORM_STORAGE, JSON.stringify(saved));
}

function restoreForm() {
  try {
    const saved = JSON.parse(localStorage.getItem(FORM_STORAGE) || "{}");
    for (const k of ["aspectRatio", "resolution", "durationSeconds", "sampleCount"]) {
      if (saved[k] !== undefined) state[k] = saved[k];
    }
    return saved.model;
  } catch {
    return null;
  }
}

// --------------------------------------------------------------------------------- controls

function buildSegmented(container, values, format) {
  const name = container.dataset.name;
  container.replaceChildren(
    ...values.map((value) => {
      const id = `${name}-${String(value).replace(/[^a-z0-9]/gi, "")}`;
      const input = el("input", { type: "radio", name, id, value: String(value) });
      input.addEventListener("change", () => {
        const v = typeof value === "number" ? Number(input.value) : input.value;
        state[name] = v;
        update();
      });
      return el("span.seg", {}, input, el("label", { for: id }, format(value)));
    }),
  );
}

function applyOptions(container, options, current) {
  const reasons = [];
  for (const opt of options) {
    const input = container.querySelector(`input[value="${opt.value}"]`);
    if (!input) continue;
    input.disabled = Boolean(opt.reason);
    input.checked = opt.value === current;
    const label = input.nextElementSibling;
    label.title = opt.reason || "";
    if (opt.reason && !reasons.includes(opt.reason)) reasons.push(opt.reason);
  }
  const list = $(`#${container.id}-reasons`);
  list.replaceChildren(...reasons.map((r) => el("li", {}, r)));
}

function buildSlots() {
  for (const slotEl of document.querySelectorAll(".slot")) {
    const slot = slotEl.dataset.slot;
    const label = slotEl.dataset.label;
    const id = `file-${slot}`;
    const input = el("input.sr-only", {
      type: "file",
      id,
      accept: IMAGE_TYPES.join(","),
      "aria-label": `${label}: choose an image`,
    });
    input.addEventListener("change", () => {
      if (input.files && input.files[0]) readImage(slot, input.files[0]);
      input.value = "";
    });
    const drop = el(
      "label.drop",
      { for: id },
      input,
      el("span.drop-empty", {}, icon("plus"), el("span", {}, label)),
      el("img.drop-preview", { alt: "" }),
      el("span.drop-name"),
    );
    onDroppedFile(
      drop,
      (file) => readImage(slot, file),
      () => !input.disabled,
    );
    const clear = el(
      "button.slot-clear.btn.btn-icon",
      {
        type: "button",
        "aria-label": `Remove the ${label.toLowerCase()}`,
        onclick: () => {
          setSlot(slot, null);
          update();
          input.focus();
        },
      },
      icon("close"),
    );
    slotEl.replaceChildren(drop, clear);
  }
}

function readImage(slot, file) {
  const reader = new FileReader();
  reader.onload = () => {
    const dataUrl = String(reader.result);
    setSlot(slot, {
      name: file.name || `${slot}.png`,
      mimeType: file.type || "image/png",
      base64: dataUrl.slice(dataUrl.indexOf(",") + 1),
      dataUrl,
    });
    update();
  };
  reader.readAsDataURL(file);
}

function renderSlots(why) {
  const reasonFor = {
    image: why.image,
    lastFrame: why.lastFrame,
    ref0: why.refSlots[0],
    ref1: why.refSlots[1],
    ref2: why.refSlots[2],
  };
  for (const slot of SLOT_NAMES) {
    const slotEl = document.querySelector(`.slot[data-slot="${slot}"]`);
    const value = slotValue(slot);
    const reason = reasonFor[slot];
    const input = slotEl.querySelector("input");
    input.disabled = Boolean(reason);
    slotEl.classList.toggle("disabled", Boolean(reason));
    slotEl.classList.toggle("filled", Boolean(value));
    slotEl.title = reason ? (value ? `Not sent: ${reason}` : reason) : "";
    const img = slotEl.querySelector(".drop-preview");
    if (value) {
      if (img.getAttribute("src") !== value.dataUrl) img.src = value.dataUrl;
      img.alt = `${slotEl.dataset.label}: ${value.name}`;
      slotEl.querySelector(".drop-name").textContent = value.name;
    } else {
      img.removeAttribute("src");
      slotEl.querySelector(".drop-name").textContent = "";
    }
  }
  $(".refs-head").classList.toggle("disabled", Boolean(why.refs));
  const reasons = [why.image, why.lastFrame, why.refs].filter(
    (r, i, all) => r && all.indexOf(r) === i,
  );
  const filledButUnused = SLOT_NAMES.filter((s) => slotValue(s) && reasonFor[s]);
  const items = reasons.map((r) => el("li", {}, r));
  if (filledButUnused.length) {
    items.push(el("li.warn", {}, "Images in greyed-out slots are not sent."));
  }
  $("#inputs-hint").replaceChildren(...items);
}

function renderExtend(why) {
  const chip = $("#extend-chip");
  chip.hidden = !state.extend;
  if (!state.extend) return;
  $("#extend-label").textContent = why.extend
    ? `${state.extend.label} — not sent: ${why.extend}`
    : state.extend.label;
  chip.classList.toggle("disabled", Boolean(why.extend));
  const thumb = $("#extend-thumb");
  const src = `${mediaUrl(state.extend.uri)}#t=0.5`;
  if (thumb.getAttribute("src") !== src) thumb.src = src;
}

// ---------------------------------------------------------------------------------- update

/** Recompute every rule from the state and reflect it in the form. */
function update() {
  const model = state.model;
  if (!model) return;
  const inputs = R.inputRules(model, state);
  const { mode, why } = inputs;

  const aspects = R.aspectOptions(model, mode);
  state.aspectRatio = R.settle(aspects, state.aspectRatio, ["16:9"]);
  const resolutions = R.resolutionOptions(model, mode);
  state.resolution = R.settle(resolutions, state.resolution, ["720p"]);
  const durations = R.durationOptions(model, mode, state.resolution, allDurations);
  state.durationSeconds = R.settle(durations, state.durationSeconds, [
    R.REQUIRED_DURATION,
    model.defaultDuration,
  ]);
  const samples = R.sampleOptions(model);
  state.sampleCount = R.settle(samples, state.sampleCount, [1]);

  applyOptions($("#aspect"), aspects, state.aspectRatio);
  applyOptions($("#resolution"), resolutions, state.resolution);
  applyOptions($("#duration"), durations, state.durationSeconds);
  applyOptions($("#samples"), samples, state.sampleCount);
  renderSlots(why);
  renderExtend(why);

  $("#mode-badge").textContent = R.MODE_LABELS[mode];
  $("#model-caps").textContent = R.describe(model);

  const problem = generateProblem(mode);
  $("#generate-reason").textContent = problem || "";
  $("#generate").setAttribute("aria-disabled", problem ? "true" : "false");
  $("#prompt-hint").textContent =
    mode === "text" ? "Required for text to video." : "Optional with an image or a video.";
  $("#seed").setAttribute("aria-invalid", R.seedProblem(state.seed) ? "true" : "false");
  $("#seed-hint").textContent =
    R.seedProblem(state.seed) || "0 – 4294967295; the same seed gives the same video.";
  saveForm();
  return inputs;
}

function generateProblem(mode) {
  if (!state.model) return "No model loaded yet";
  if (mode === "text" && !state.prompt.trim()) {
    return "Text to video needs a prompt (or add a first frame).";
  }
  return R.seedProblem(state.seed);
}

// ------------------------------------------------------------------------------- the stage

function showStage(part) {
  for (const id of ["stage-empty", "stage-error", "stage-progress", "stage-results"]) {
    $(`#${id}`).hidden = id !== part;
  }
}

function showProblem(title, statusText, message, needsKey = false) {
  $("#error-title").textContent = title;
  $("#error-status").textContent = statusText;
  $("#error-status").hidden = !statusText;
  $("#error-message").textContent = message;
  $("#error-key").hidden = !needsKey;
  showStage("stage-error");
}

/** A refused call: the server's own message, verbatim, with its HTTP and Google status. */
function showError(err, title = "The server refused the request") {
  if (!(err instanceof ApiError)) {
    showProblem(title, "", err.message);
    return;
  }
  const unreachable = err.httpStatus === 0;
  showProblem(
    unreachable ? "Server unreachable" : title,
    [err.httpStatus || "", err.status].filter(Boolean).join(" "),
    err.message,
    err.needsKey,
  );
}

function setProgress(op, startedAt) {
  const percent = Math.max(0, Math.min(100, Number(op.metadata?.progressPercent || 0)));
  const bar = $("#progress-bar");
  bar.setAttribute("aria-valuenow", String(Math.round(percent)));
  bar.style.setProperty("--p", `${percent}%`);
  $("#progress-percent").textContent = `${Math.round(percent)}%`;
  const st = opState(op);
  $("#progress-state").textContent = STATE_LABELS[st] || st;
  $("#progress-state").className = `state-pill state-${st.toLowerCase()}`;
  $("#progress-elapsed").textContent = `${Math.round((Date.now() - startedAt) / 1000)} s`;
}

async function track(name, record) {
  tracking = name;
  const startedAt = Date.now();
  $("#progress-prompt").textContent = record?.prompt || R.MODE_LABELS[record?.mode] || "";
  setProgress({ metadata: { progressPercent: 0, state: "QUEUED" } }, startedAt);
  showStage("stage-progress");
  while (tracking === name) {
    let op;
    try {
      op = await api.get(name);
    } catch (err) {
      if (tracking === name) showError(err, "Could not follow the operation");
      return;
    }
    if (tracking !== name) return;
    setProgress(op, startedAt);
    if (op.done) {
      finished(op);
      return;
    }
    await sleep(POLL_MS);
  }
}

function finished(op) {
  tracking = null;
  historyView.refresh();
  if (op.error) {
    const cancelled = op.error.code === 1;
    showProblem(
      cancelled ? "Cancelled" : "The generation failed",
      cancelled ? "CANCELLED" : `code ${op.error.code}`,
      op.error.message,
    );
    return;
  }
  showResults(op);
  toast(sampleUris(op).length > 1 ? "Your videos are ready" : "Your video is ready");
}

function showResults(op) {
  tracking = null;
  const uris = sampleUris(op);
  const record = getRecord(op.name);
  const box = $("#stage-results");
  const response = op.response?.generateVideoResponse || {};
  const head = el(
    "div.results-head",
    {},
    el("span.state-pill.state-succeeded", {}, "Done"),
    el("span.results-prompt", {}, record?.prompt || `operation ${opId(op.name)}`),
    el(
      "span.muted",
      {},
      [modelName(opModel(op.name)), op.metadata?.seed !== undefined ? `seed ${op.metadata.seed}` : ""]
        .filter(Boolean)
        .join(" · "),
    ),
  );
  const grid = el(`div.results-grid.n${Math.min(uris.length, 4)}`);
  uris.forEach((uri, index) => {
    const url = mediaUrl(uri);
    const video = el("video", {
      controls: true,
      playsinline: true,
      preload: "auto",
      src: url,
      "aria-label": `Sample ${index + 1} of ${uris.length}`,
    });
    grid.append(
      el(
        "figure.sample",
        {},
        video,
        el(
          "figcaption",
          {},
          el("span.sample-label", {}, `Sample ${index + 1}`),
          el(
            "a.btn.btn-small",
            {
              href: url,
              download: `cinegen-${opId(op.name)}-${index + 1}.mp4`,
              "aria-label": `Download sample ${index + 1}`,
            },
            icon("download"),
            el("span", {}, "Download"),
          ),
          el(
            "button.btn.btn-small",
            {
              type: "button",
              "aria-label": `Extend sample ${index + 1}`,
              onclick: () => startExtend(op, uri, index),
            },
            icon("extend"),
            el("span", {}, "Extend"),
          ),
        ),
      ),
    );
  });
  const notes = [];
  if (response.raiMediaFilteredCount) {
    notes.push(
      el(
        "p.warn",
        {},
        `${response.raiMediaFilteredCount} sample(s) filtered: ${(response.raiMediaFilteredReasons || []).join(" ")}`,
      ),
    );
  }
  box.replaceChildren(head, grid, ...notes);
  showStage("stage-results");
}

// --------------------------------------------------------------------------------- actions

async function submit(event) {
  event?.preventDefault();
  const inputs = update();
  if (!inputs) return;
  const problem = generateProblem(inputs.mode);
  if (problem) {
    toast(problem);
    $("#prompt").focus();
    return;
  }
  const { body, record } = R.buildRequest(state.model, state, inputs);
  const button = $("#generate");
  button.classList.add("busy");
  let created;
  try {
    created = await api.create(state.model.id, body);
  } catch (err) {
    showError(err);
    return;
  } finally {
    button.classList.remove("busy");
  }
  putRecord(created.name, record);
  historyView.refresh();
  track(created.name, record);
}

function modelName(id) {
  return state.models.find((m) => m.id === id)?.name || id;
}

function startExtend(op, uri, index = 0) {
  const record = getRecord(op.name);
  const label = `${record?.prompt || `operation ${opId(op.name)}`}${index ? ` (sample ${index + 1})` : ""}`;
  state.extend = { uri, label, name: op.name };
  if (!state.model.extension) {
    const own = state.models.find((m) => m.id === opModel(op.name) && m.extension);
    const other = own || state.models.find((m) => m.extension);
    if (other) {
      state.model = other;
      $("#model").value = other.id;
      toast(`${other.name} selected: it can extend videos`);
    }
  }
  update();
  $("#composer").scrollIntoView({ behavior: "smooth", block: "start" });
  $("#prompt").focus();
}

const historyView = new History({
  modelName,
  onError: (err) => {
    if (!(err instanceof ApiError && err.needsKey)) toast(err.message);
  },
  play: async (op) => {
    showResults(op);
    $("#stage").scrollIntoView({ behavior: "smooth", block: "nearest" });
    const video = $("#stage-results video");
    video?.focus();
    try {
      await video?.play();
    } catch {
      /* the user presses play */
    }
  },
  extend: (op) => startExtend(op, sampleUris(op)[0]),
  copy: (op, kind) => {
    const record = getRecord(op.name);
    if (!record) return;
    const full = reproducible(record, op.metadata?.seed);
    const text =
      kind === "curl" ? curlSnippet(full, location.origin) : pythonSnippet(full, location.origin);
    copyText(text, kind === "curl" ? "curl command" : "Python code");
  },
  cancel: async (op) => {
    try {
      await api.cancel(op.name);
      toast("Cancelled");
    } catch (err) {
      toast(err.message);
    }
    historyView.refresh();
  },
  remove: async (op) => {
    const record = getRecord(op.name);
    const what = record?.prompt ? `“${record.prompt.slice(0, 60)}”` : `operation ${opId(op.name)}`;
    if (!confirm(`Delete ${what} and its videos?`)) return;
    try {
      await api.remove(op.name);
    } catch (err) {
      toast(err.message);
      return;
    }
    dropRecord(op.name);
    historyView.forget(op.name);
    if (state.extend?.name === op.name) {
      state.extend = null;
      update();
    }
    if (tracking === op.name) tracking = null;
    toast("Deleted");
  },
});

// ---------------------------------------------------------------------------------- the key

function renderKey() {
  const key = getKey();
  $("#key-label").textContent = key ? `Key ••${key.slice(-4)}` : "API key";
}

function openKeyDialog() {
  $("#key-input").value = getKey();
  $("#key-dialog").showModal();
  $("#key-input").focus();
}

function wireKeyDialog() {
  $("#key-button").addEventListener("click", openKeyDialog);
  $("#error-key").addEventListener("click", openKeyDialog);
  $("#key-cancel").addEventListener("click", () => $("#key-dialog").close());
  $("#key-forget").addEventListener("click", () => {
    setKey("");
    $("#key-dialog").close();
    reload();
  });
  $("#key-form").addEventListener("submit", () => {
    setKey($("#key-input").value.trim());
    reload();
  });
}

// ------------------------------------------------------------------------------- start-up

async function loadModels() {
  const status = $("#server-status");
  try {
    const data = await api.models();
    state.models = (data.models || []).map(R.modelRow);
  } catch (err) {
    $("#composer").inert = !state.models.length;
    status.textContent = err.needsKey ? "key needed" : "offline";
    status.className = "server-status bad";
    showError(err);
    return false;
  }
  $("#composer").inert = false;
  status.textContent = `connected · ${state.models.length} models`;
  status.className = "server-status ok";
  const durations = [...new Set(state.models.flatMap((m) => m.durations))].sort((a, b) => a - b);
  if (durations.join() !== allDurations.join()) {
    allDurations = durations;
    buildSegmented($("#duration"), allDurations, (v) => `${v} s`);
  }
  const select = $("#model");
  const current = state.model?.id || restoreForm();
  select.replaceChildren(...state.models.map((m) => el("option", { value: m.id }, m.name)));
  state.model = state.models.find((m) => m.id === current) || state.models[0];
  select.value = state.model.id;
  return true;
}

async function reload() {
  renderKey();
  if (await loadModels()) {
    if ($("#stage-error").hidden === false && !tracking) showStage("stage-empty");
    update();
    historyView.refresh();
  }
}

function wireForm() {
  buildSegmented($("#aspect"), R.ASPECTS, (v) => (v === "16:9" ? "16:9 landscape" : "9:16 portrait"));
  buildSegmented($("#resolution"), R.RESOLUTIONS, (v) => v);
  buildSegmented($("#samples"), R.SAMPLE_COUNTS, (v) => String(v));
  buildSegmented($("#duration"), allDurations, (v) => `${v} s`);
  buildSlots();
  $("#composer").addEventListener("submit", submit);
  $("#prompt").addEventListener("input", (e) => {
    state.prompt = e.target.value;
    update();
  });
  $("#negative").addEventListener("input", (e) => {
    state.negativePrompt = e.target.value;
  });
  $("#seed").addEventListener("input", (e) => {
    state.seed = e.target.value;
    update();
  });
  $("#seed-dice").addEventListener("click", () => {
    state.seed = String(Math.floor(Math.random() * (R.SEED_MAX + 1)));
    $("#seed").value = state.seed;
    update();
  });
  $("#model").addEventListener("change", (e) => {
    state.model = state.models.find((m) => m.id === e.target.value);
    update();
  });
  $("#extend-clear").addEventListener("click", () => {
    state.extend = null;
    update();
    $("#prompt").focus();
  });
  $("#progress-cancel").addEventListener("click", async () => {
    if (!tracking) return;
    try {
      await api.cancel(tracking);
    } catch (err) {
      toast(err.message);
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !document.querySelector("dialog[open]")) {
      e.preventDefault();
      submit();
    }
  });
}

wireForm();
wireKeyDialog();
wireVerify();
reload();

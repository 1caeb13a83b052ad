// "Verify a video": the dropped MP4 goes to cinegen's POST /v1beta/cinegen:verify as a
// multipart `file` field, and the report (C2PA manifest, watermark, tags) is shown here.

import { getKey, VERSION } from "./api.js";
import { $, el, onDroppedFile } from "./ui.js";

const IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/";

export async function verifyFile(file) {
  const form = new FormData();
  form.append("file", file, file.name || "video.mp4");
  const headers = {};
  const key = getKey();
  if (key) headers["x-goog-api-key"] = key;
  const response = await fetch(`/${VERSION}/cinegen:verify`, { method: "POST", headers, body: form });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new Error(error.message || `HTTP ${response.status}`);
  }
  return data;
}

function rows(pairs) {
  return el(
    "dl",
    {},
    pairs.filter(([, value]) => value !== undefined && value !== null && value !== "").flatMap(
      ([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))],
    ),
  );
}

function verdict(text, kind) {
  return el(`span.verify-verdict.${kind}`, {}, text);
}

/** The C2PA block: "C2PA: valid" (or invalid, or none) and what the manifest says. */
export function c2paBlock(c2pa) {
  if (!c2pa || !c2pa.present) {
    return el("section.verify-c2pa", {}, el("h3", {}, "C2PA: none", verdict("no credentials", "none")));
  }
  const head = el(
    "h3",
    {},
    `C2PA: ${c2pa.valid ? "valid" : "invalid"}`,
    verdict(c2pa.trusted ? "trusted signer" : "signer not trusted", c2pa.trusted ? "ok" : "none"),
  );
  const actions = (c2pa.actions || [])
    .map((a) => a.action + (a.digitalSourceType ? ` (${a.digitalSourceType.replace(IPTC, "")})` : ""))
    .join(", ");
  const ingredients = (c2pa.ingredients || [])
    .map((i) => `${i.title} (${i.relationship}${i.generation ? `, seed ${i.generation.seed}` : ""})`)
    .join(", ");
  return el(
    "section.verify-c2pa",
    {},
    head,
    rows([
      ["Errors", (c2pa.validationErrors || []).join(", ")],
      ["Signer", `${c2pa.signer} (${c2pa.issuer})${c2pa.signedHere ? ", this server" : ""}`],
      ["Actions", actions],
      ["Model", c2pa.model],
      ["Engine", c2pa.engine],
      ["Seed", c2pa.seed],
      ["Made by", c2pa.claimGenerator],
      ["Ingredients", ingredients],
    ]),
  );
}

function watermarkBlock(mark) {
  if (!mark) return el("section.verify-watermark", {}, el("h3", {}, "Watermark: not checked"));
  if (!mark.found) return el("section.verify-watermark", {}, el("h3", {}, "Watermark: none found"));
  const origin = mark.madeHere ? "made here" : `made by installation ${mark.installationId}`;
  return el(
    "section.verify-watermark",
    {},
    el("h3", {}, "Watermark: found", verdict(origin, mark.madeHere ? "ok" : "none")),
    rows([
      ["Payload", mark.payload],
      ["Bit confidence", mark.bitConfidence !== undefined ? mark.bitConfidence.toFixed(3) : ""],
      ["Operation", mark.operation ? `${mark.operation} (sample ${mark.sampleIndex})` : ""],
    ]),
  );
}

function tagsBlock(report) {
  const tags = report.tags || {};
  return el(
    "section.verify-tags",
    {},
    el("h3", {}, `Tags: ${report.aiGenerated ? "AI-generated" : "no AI-generated mark"}`),
    rows([["Description", tags.description]]),
  );
}

export function renderReport(box, name, report) {
  box.replaceChildren(
    el("p.muted", {}, `${name}: ${report.sizeBytes.toLocaleString()} bytes`),
    c2paBlock(report.c2pa),
    watermarkBlock(report.watermark),
    tagsBlock(report),
  );
}

async function check(file) {
  const box = $("#verify-result");
  box.hidden = false;
  box.replaceChildren(el("p.muted", {}, `Verifying ${file.name}…`));
  try {
    renderReport(box, file.name, await verifyFile(file));
  } catch (err) {
    box.replaceChildren(el("p.verify-error", { role: "alert" }, `Not verified: ${err.message}`));
  }
}

export function wireVerify() {
  const drop = $("#verify-drop");
  const input = $("#verify-file");
  if (!drop || !input) return;
  input.addEventListener("change", () => {
    if (input.files && input.files[0]) check(input.files[0]);
    input.value = "";
  });
  onDroppedFile(drop, check);
}

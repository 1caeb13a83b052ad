// The history: this key's operations from GET /v1beta/operations, newest first. Cards are
// updated in place (keyed by operation name) so polling never steals the keyboard focus.
// A finished operation's webhook deliveries (cinegen's GET …/webhookDeliveries) show as badges
// on its card, fetched once, and again every few seconds while one is still pending.

import { api, mediaUrl, opId, opModel, sampleUris } from "./api.js";
import { getRecord } from "./records.js";
import { MODE_LABELS } from "./rules.js";
import { $, el, icon, opState, STATE_LABELS, timeAgo } from "./ui.js";

const POLL_MS = 1500;
const WEBHOOK_POLL_MS = 3000;
const MAX_WEBHOOK_BADGES = 3;

/** One delivery's badge: "webhook: delivered (200)", "retrying (attempt N)" or "failed". */
export function webhookBadge(delivery) {
  let text;
  let kind = delivery.state;
  if (delivery.state === "delivered") {
    text = `webhook: delivered (${delivery.last_status ?? "ok"})`;
  } else if (delivery.state === "failed") {
    text = "webhook: failed";
  } else if (delivery.attempt_count > 0 && (delivery.last_status || delivery.last_error)) {
    text = `webhook: retrying (attempt ${delivery.attempt_count})`;
    kind = "retrying";
  } else {
    text = "webhook: sending";
  }
  const why = [
    delivery.last_status ? `last answer HTTP ${delivery.last_status}` : null,
    delivery.last_error || null,
    delivery.next_attempt_time ? `next attempt ${delivery.next_attempt_time}` : null,
  ].filter(Boolean);
  const host = delivery.target_host || "";
  return el(
    `span.webhook-badge.webhook-${kind}`,
    { title: [`${text} to ${host}`, ...why].join("\n"), dataset: { state: kind } },
    text,
    host ? el("span.webhook-host", {}, ` · ${host}`) : null,
  );
}

/** "Today: 3 videos, 24.0 s made, $3.20 on Veo" from GET /v1beta/cinegen/usage. */
export function usageLine(total) {
  const videos = total.samples === 1 ? "1 video" : `${total.samples} videos`;
  const price = total.veoPriceUsd == null ? "" : `, $${total.veoPriceUsd.toFixed(2)} on Veo`;
  return `Today: ${videos}, ${total.seconds.toFixed(1)} s made${price}`;
}

export class History {
  /** actions: {play(op), extend(op), copy(op, kind), remove(op), cancel(op), modelName(id), onError(err)} */
  constructor(actions) {
    this.actions = actions;
    this.list = $("#history-list");
    this.cards = new Map();
    this.nextToken = null;
    this.timer = 0;
    this.hooks = new Map(); // operation name → its deliveries (an array), once fetched
    this.hookFetches = new Set(); // names being fetched now
    this.hookTimer = 0;
    $("#history-refresh").addEventListener("click", () => this.refresh());
    $("#history-more").addEventListener("click", () => this.more());
  }

  async showUsage() {
    const line = $("#usage-today");
    try {
      line.textContent = usageLine((await api.usageToday()).total);
      line.hidden = false;
    } catch {
      line.hidden = true; // an older server, or no key yet: the history says why
    }
  }

  async refresh() {
    clearTimeout(this.timer);
    this.showUsage();
    let page;
    try {
      page = await api.list();
    } catch (err) {
      this.actions.onError(err);
      return;
    }
    const ops = page.operations || [];
    const names = new Set(ops.map((op) => op.name));
    // Back to the first page: older pages are loaded again on demand.
    for (const [name, card] of this.cards) {
      if (!names.has(name)) {
        card.remove();
        this.cards.delete(name);
      }
    }
    ops.forEach((op, index) => this.upsert(op, index));
    this.nextToken = page.nextPageToken || null;
    this.finish(ops);
  }

  async more() {
    if (!this.nextToken) return;
    let page;
    try {
      page = await api.list(this.nextToken);
    } catch (err) {
      this.actions.onError(err);
      return;
    }
    for (const op of page.operations || []) this.upsert(op, this.list.children.length);
    this.nextToken = page.nextPageToken || null;
    this.finish(page.operations || []);
  }

  finish(ops) {
    $("#history-more").hidden = !this.nextToken;
    $("#history-empty").hidden = this.cards.size > 0;
    const n = this.cards.size;
    $("#history-count").textContent = n ? `${n}${this.nextToken ? "+" : ""}` : "";
    if (ops.some((op) => !op.done)) this.timer = setTimeout(() => this.refresh(), POLL_MS);
  }

  forget(name) {
    const card = this.cards.get(name);
    if (card) card.remove();
    this.cards.delete(name);
    this.hooks.delete(name);
    this.finish([]);
  }

  upsert(op, index) {
    let card = this.cards.get(op.name);
    if (!card) {
      card = el("li.card", { dataset: { name: op.name } });
      this.cards.set(op.name, card);
    }
    const key = `${opState(op)}|${Math.round(op.metadata?.progressPercent || 0)}`;
    if (card.dataset.key !== key) {
      const hadFocus = card.contains(document.activeElement);
      const focusedAction = hadFocus ? document.activeElement.dataset.action : null;
      card.replaceChildren(...this.render(op));
      card.dataset.key = key;
      card.dataset.state = opState(op);
      if (focusedAction) card.querySelector(`[data-action="${focusedAction}"]`)?.focus();
    }
    const at = this.list.children[index];
    if (at !== card) this.list.insertBefore(card, at || null);
    if (op.done && !this.hooks.has(op.name)) this.fetchWebhooks(op.name);
    return card;
  }

  /** The operation's deliveries, then its badges; again later while one is pending. */
  async fetchWebhooks(name) {
    if (this.hookFetches.has(name)) return;
    this.hookFetches.add(name);
    try {
      const page = await api.webhookDeliveries(name);
      this.hooks.set(name, page.deliveries || []);
    } catch {
      this.hooks.set(name, []); // an older server, or the operation is gone: no badge
    } finally {
      this.hookFetches.delete(name);
    }
    const card = this.cards.get(name);
    card?.querySelector(".card-webhooks")?.replaceWith(this.webhookBadges(name));
    this.scheduleWebhooks();
  }

  scheduleWebhooks() {
    if (this.hookTimer) return;
    const pending = [...this.hooks].filter(
      ([name, list]) => this.cards.has(name) && list.some((d) => d.state === "pending"),
    );
    if (!pending.length) return;
    this.hookTimer = setTimeout(() => {
      this.hookTimer = 0;
      pending.forEach(([name]) => this.fetchWebhooks(name));
    }, WEBHOOK_POLL_MS);
  }

  webhookBadges(name) {
    const list = (this.hooks.get(name) || []).slice(0, MAX_WEBHOOK_BADGES);
    return el("p.card-webhooks", { hidden: !list.length }, list.map(webhookBadge));
  }

  render(op) {
    const state = opState(op);
    const record = getRecord(op.name);
    const uris = sampleUris(op);
    const model = opModel(op.name);
    const mode = record?.mode || op.metadata?.notes?.mode;
    const promptText = record ? record.prompt || "(no prompt)" : null;
    const percent = Math.round(op.metadata?.progressPercent || 0);
    const label = promptText || `operation ${opId(op.name)}`;

    const thumb = el("div.thumb");
    if (uris.length) {
      thumb.append(
        el("video", {
          src: `${mediaUrl(uris[0])}#t=0.5`,
          muted: true,
          preload: "metadata",
          playsinline: true,
          tabindex: "-1",
          "aria-hidden": "true",
        }),
      );
    } else {
      thumb.append(el("div.thumb-empty", {}, icon("film")));
    }
    const pillText = state === "RUNNING" ? `Running ${percent}%` : STATE_LABELS[state] || state;
    thumb.append(el(`span.state-pill.state-${state.toLowerCase()}`, {}, pillText));
    if (uris.length > 1) thumb.append(el("span.count", {}, `×${uris.length}`));
    if (!op.done) {
      const bar = el("div.thumb-progress");
      bar.style.setProperty("--p", `${percent}%`);
      thumb.append(bar);
    }

    const meta = [this.actions.modelName(model), mode ? MODE_LABELS[mode] || mode : null];
    if (op.metadata?.createTime) meta.push(timeAgo(op.metadata.createTime));
    const body = el(
      "div.card-body",
      {},
      el(
        `p.card-prompt${promptText ? "" : ".unknown"}`,
        { title: promptText || "" },
        promptText || "Created by another client",
      ),
      el("p.card-meta", {}, meta.filter(Boolean).join(" · ")),
      this.webhookBadges(op.name),
      op.error ? el("p.card-error", {}, op.error.message) : null,
      this.buttons(op, record, uris, label),
    );
    return [thumb, body];
  }

  buttons(op, record, uris, label) {
    const a = this.actions;
    const noRecord = "Created by another client: its request is not stored in this browser";
    const button = (action, text, iconName, onclick, opts = {}) =>
      el(
        `button.btn.btn-small${opts.iconOnly ? ".btn-icon" : ""}`,
        {
          type: "button",
          "data-action": action,
          "aria-label": `${opts.aria || text}: ${label}`,
          title: opts.disabled || opts.aria || text,
          disabled: Boolean(opts.disabled),
          onclick,
        },
        icon(iconName),
        opts.iconOnly ? null : el("span", {}, text),
      );
    const main = el("div.card-actions");
    if (uris.length) {
      main.append(
        button("play", "Play", "play", () => a.play(op)),
        button("extend", "Extend", "extend", () => a.extend(op)),
      );
    } else if (!op.done) {
      main.append(button("cancel", "Cancel", "stop", () => a.cancel(op)));
    }
    main.append(button("delete", "Delete", "trash", () => a.remove(op), { iconOnly: true }));
    const copy = el(
      "div.card-copy",
      {},
      el("span.copy-label", { "aria-hidden": "true" }, "Copy as"),
      button("curl", "curl", "copy", () => a.copy(op, "curl"), {
        aria: "Copy as curl",
        disabled: record ? null : noRecord,
      }),
      button("python", "Python", "copy", () => a.copy(op, "python"), {
        aria: "Copy as Python",
        disabled: record ? null : noRecord,
      }),
    );
    const row = el("div.card-rows", {}, main, copy);
    return row;
  }
}

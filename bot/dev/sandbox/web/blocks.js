// Block Kit as DOM: the blocks of messages and modals, their buttons, selects and inputs.
//
// ctx = { surface: "message" | "modal", user(id), channel(id), users(), channels(),
//         action(block, element, value) -> Promise (a click or a choice),
//         inputs: Map (modal: block_id -> {actionId, read()}), values: view.state.values, errors: {block_id: text} }

import { emojiFor, h, markdown, mrkdwn, plain, safeUrl } from "./text.js";

export function textObject(obj, ctx, cls = "") {
  if (!obj) return h("span");
  if (obj.type === "mrkdwn") {
    const el = mrkdwn(obj.text, ctx);
    if (cls) el.classList.add(...cls.split(" "));
    return el;
  }
  return h("span", { class: `plain ${cls}`.trim() }, obj.emoji === false ? String(obj.text ?? "") : plain(obj.text));
}

function image(url, alt, cls) {
  const src = safeUrl(url) || (/^data:image\//.test(url || "") ? url : null);
  const fallback = () => h("span", { class: `${cls} img-fallback`, title: alt || "" }, "🖼️", alt ? ` ${alt}` : "");
  if (!src) return fallback();
  const img = h("img", { class: cls, src, alt: alt || "", loading: "lazy", referrerpolicy: "no-referrer" });
  img.addEventListener("error", () => img.replaceWith(fallback()));
  return img;
}

// ---- interactive elements -----------------------------------------------------------------------

function busy(el, promise) {
  el.classList.add("busy");
  el.disabled = true;
  Promise.resolve(promise).finally(() => {
    el.classList.remove("busy");
    el.disabled = false;
  });
}

function button(element, block, ctx) {
  const style = element.style === "primary" || element.style === "danger" ? element.style : "";
  const el = h(
    "button",
    {
      type: "button",
      class: `btn ${style}`.trim(),
      dataset: { actionId: element.action_id || "" },
      title: element.accessibility_label || null,
    },
    plain(element.text?.text ?? "")
  );
  el.addEventListener("click", () => {
    const url = safeUrl(element.url);
    if (url) window.open(url, "_blank", "noopener");
    busy(el, ctx.action?.(block, element));
  });
  return el;
}

function options(element) {
  const all = [...(element.options || [])];
  for (const group of element.option_groups || []) all.push(...(group.options || []));
  return all;
}

function optionLabel(option) {
  return option?.text?.text ?? option?.value ?? "";
}

function choicesFor(element, ctx) {
  switch (element.type) {
    case "users_select":
    case "multi_users_select":
      return (ctx.users?.() || []).map((u) => ({ value: u.id, label: u.name }));
    case "conversations_select":
    case "multi_conversations_select":
    case "channels_select":
    case "multi_channels_select":
      return (ctx.channels?.() || []).map((c) => ({ value: c.id, label: c.label }));
    default:
      return options(element).map((o) => ({ value: o.value, label: optionLabel(o) }));
  }
}

function initialSelected(element, typed) {
  if (typed) {
    return (
      typed.selected_option?.value ??
      typed.selected_user ??
      typed.selected_conversation ??
      typed.selected_channel ??
      (typed.selected_options || typed.selected_users || typed.selected_conversations || typed.selected_channels || [])
        .map((o) => (typeof o === "string" ? o : o.value))
    );
  }
  if (element.initial_option) return element.initial_option.value;
  if (element.initial_options) return element.initial_options.map((o) => o.value);
  return element.initial_user ?? element.initial_conversation ?? element.initial_channel ??
    element.initial_users ?? element.initial_conversations ?? element.initial_channels ?? null;
}

function select(element, block, ctx, typed) {
  const multi = element.type.startsWith("multi_");
  const el = h("select", { class: "select", multiple: multi || null, "aria-label": element.placeholder?.text || "Select" });
  if (!multi) el.append(h("option", { value: "" }, element.placeholder?.text || "Select an option"));
  const chosen = initialSelected(element, typed);
  for (const choice of choicesFor(element, ctx)) {
    const selected = Array.isArray(chosen) ? chosen.includes(choice.value) : chosen === choice.value;
    el.append(h("option", { value: choice.value, selected: selected || null }, plain(choice.label)));
  }
  const read = () => (multi ? [...el.selectedOptions].map((o) => o.value) : el.value || null);
  if (ctx.surface !== "modal" || block.type !== "input") {
    el.addEventListener("change", () => {
      const value = read();
      if (value !== null && value !== "") busy(el, ctx.action?.(block, element, value));
    });
  }
  return { el, read };
}

function overflow(element, block, ctx) {
  const menu = h("div", { class: "overflow-menu", hidden: true });
  const toggle = h("button", { type: "button", class: "btn overflow", "aria-label": "More actions" }, "⋮");
  for (const option of options(element)) {
    menu.append(
      h(
        "button",
        {
          type: "button",
          class: "overflow-item",
          onclick: () => {
            menu.hidden = true;
            busy(toggle, ctx.action?.(block, element, option.value));
          },
        },
        plain(optionLabel(option))
      )
    );
  }
  toggle.addEventListener("click", () => (menu.hidden = !menu.hidden));
  return h("span", { class: "overflow-wrap" }, toggle, menu);
}

function choiceList(element, block, ctx, typed) {
  const multi = element.type === "checkboxes";
  const name = `${block.block_id}-${element.action_id}`;
  const chosen = initialSelected(element, typed);
  const wrap = h("div", { class: "choices" });
  const inputs = [];
  for (const option of options(element)) {
    const checked = Array.isArray(chosen) ? chosen.includes(option.value) : chosen === option.value;
    const input = h("input", { type: multi ? "checkbox" : "radio", name, value: option.value, checked: checked || null });
    inputs.push(input);
    if (ctx.surface !== "modal" || block.type !== "input") {
      input.addEventListener("change", () => {
        const value = multi ? inputs.filter((i) => i.checked).map((i) => i.value) : input.value;
        ctx.action?.(block, element, value);
      });
    }
    const label = h("label", { class: "choice" }, input, " ", plain(optionLabel(option)));
    if (option.description) label.append(h("div", { class: "choice-desc" }, plain(option.description.text)));
    wrap.append(label);
  }
  const read = () => (multi ? inputs.filter((i) => i.checked).map((i) => i.value) : inputs.find((i) => i.checked)?.value ?? null);
  return { el: wrap, read };
}

function textInput(element, typed) {
  const initial = typed ? typed.value ?? "" : element.initial_value ?? "";
  const attrs = {
    class: "text-input",
    placeholder: element.placeholder?.text || null,
    maxlength: element.max_length || null,
  };
  let el;
  if (element.type === "plain_text_input" && element.multiline) {
    el = h("textarea", { ...attrs, rows: 5 });
    el.value = initial;
  } else {
    const kind = { number_input: "number", email_text_input: "email", url_text_input: "url" }[element.type] || "text";
    el = h("input", { ...attrs, type: kind });
    el.value = initial;
  }
  return { el, read: () => el.value };
}

function picker(element, typed) {
  const kind = { datepicker: "date", timepicker: "time", datetimepicker: "datetime-local" }[element.type];
  const el = h("input", { class: "text-input", type: kind });
  if (element.type === "datepicker") el.value = typed?.selected_date ?? element.initial_date ?? "";
  if (element.type === "timepicker") el.value = typed?.selected_time ?? element.initial_time ?? "";
  if (element.type === "datetimepicker") {
    const epoch = typed?.selected_date_time ?? element.initial_date_time;
    if (epoch) el.value = new Date(epoch * 1000).toISOString().slice(0, 16);
  }
  const read = () => {
    if (!el.value) return null;
    if (element.type === "datetimepicker") return Math.floor(new Date(el.value).getTime() / 1000);
    return el.value;
  };
  return { el, read };
}

/** An element; returns {el, read?} where read() gives the raw value a person entered (for modals). */
export function element(el, block, ctx, typed) {
  switch (el.type) {
    case "button":
      return { el: button(el, block, ctx) };
    case "image":
      return { el: image(el.image_url, el.alt_text, "accessory-image") };
    case "overflow":
      return { el: overflow(el, block, ctx) };
    case "static_select":
    case "external_select":
    case "multi_static_select":
    case "multi_external_select":
    case "users_select":
    case "multi_users_select":
    case "conversations_select":
    case "multi_conversations_select":
    case "channels_select":
    case "multi_channels_select":
      return select(el, block, ctx, typed);
    case "radio_buttons":
    case "checkboxes":
      return choiceList(el, block, ctx, typed);
    case "plain_text_input":
    case "number_input":
    case "email_text_input":
    case "url_text_input":
      return textInput(el, typed);
    case "rich_text_input": {
      const text = typed?.rich_text_value ? richPlain(typed.rich_text_value) : el.initial_value ? richPlain(el.initial_value) : "";
      const area = h("textarea", { class: "text-input", rows: 4 });
      area.value = text;
      return { el: area, read: () => area.value };
    }
    case "datepicker":
    case "timepicker":
    case "datetimepicker":
      return picker(el, typed);
    default:
      return { el: h("span", { class: "unsupported" }, `[${el.type}]`) };
  }
}

// ---- rich text ----------------------------------------------------------------------------------

function richPlain(value) {
  const parts = [];
  const walk = (node) => {
    if (!node || typeof node !== "object") return;
    if (node.type === "text") parts.push(node.text || "");
    for (const child of node.elements || []) walk(child);
  };
  walk(value);
  return parts.join("");
}

function styled(node, style) {
  let out = node;
  if (!style) return out;
  if (style.code) out = h("code", {}, out);
  if (style.bold) out = h("b", {}, out);
  if (style.italic) out = h("i", {}, out);
  if (style.strike) out = h("s", {}, out);
  return out;
}

function richInline(item, ctx) {
  switch (item.type) {
    case "text":
      return styled(document.createTextNode(item.text ?? ""), item.style);
    case "link": {
      const href = safeUrl(item.url);
      const node = href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, item.text || item.url) : document.createTextNode(item.text || item.url || "");
      return styled(node, item.style);
    }
    case "user":
      return h("span", { class: "mention mention-user" }, `@${ctx.user?.(item.user_id) || item.user_id}`);
    case "usergroup":
      return h("span", { class: "mention mention-group" }, `@${ctx.group?.(item.usergroup_id) || item.usergroup_id}`);
    case "channel":
      return h("span", { class: "mention mention-channel" }, `#${ctx.channel?.(item.channel_id) || item.channel_id}`);
    case "broadcast":
      return h("span", { class: "mention mention-broadcast" }, `@${item.range}`);
    case "emoji":
      return document.createTextNode(emojiFor(item.name, item.unicode));
    case "date":
      return h("span", { class: "date" }, item.fallback || new Date(item.timestamp * 1000).toLocaleString());
    case "color":
      return document.createTextNode(item.value || "");
    default:
      return document.createTextNode(item.text || "");
  }
}

function richSection(section, ctx, tag = "div", cls = "rt-section") {
  const el = h(tag, { class: cls });
  for (const item of section.elements || []) el.append(richInline(item, ctx));
  return el;
}

function richText(block, ctx) {
  const root = h("div", { class: "rich-text" });
  for (const part of block.elements || []) {
    if (part.type === "rich_text_section") root.append(richSection(part, ctx));
    else if (part.type === "rich_text_preformatted") root.append(richSection(part, ctx, "pre", "rt-pre"));
    else if (part.type === "rich_text_quote") root.append(richSection(part, ctx, "blockquote", "rt-quote"));
    else if (part.type === "rich_text_list") {
      const list = h(part.style === "ordered" ? "ol" : "ul", { class: `rt-list indent-${part.indent || 0}` });
      if (part.offset) list.setAttribute("start", String(part.offset + 1));
      for (const item of part.elements || []) list.append(richSection(item, ctx, "li", ""));
      root.append(list);
    }
  }
  return root;
}

// ---- blocks -------------------------------------------------------------------------------------

function section(block, ctx) {
  const main = h("div", { class: "section-main" });
  if (block.text) main.append(textObject(block.text, ctx, "section-text"));
  if (block.fields?.length) {
    main.append(h("div", { class: "section-fields" }, block.fields.map((f) => textObject(f, ctx, "field"))));
  }
  const el = h("div", { class: "block block-section" }, main);
  if (block.accessory) {
    const acc = element(block.accessory, block, ctx, ctx.values?.[block.block_id]?.[block.accessory.action_id]);
    el.append(h("div", { class: "section-accessory" }, acc.el));
  }
  return el;
}

function context(block, ctx) {
  return h(
    "div",
    { class: "block block-context" },
    (block.elements || []).map((item) =>
      item.type === "image" ? image(item.image_url, item.alt_text, "context-image") : textObject(item, ctx, "context-text")
    )
  );
}

function actions(block, ctx) {
  return h(
    "div",
    { class: "block block-actions" },
    (block.elements || []).map((item) => element(item, block, ctx, ctx.values?.[block.block_id]?.[item.action_id]).el)
  );
}

function input(block, ctx) {
  const elementDef = block.element || {};
  const typed = ctx.values?.[block.block_id]?.[elementDef.action_id];
  const made = element(elementDef, block, ctx, typed);
  const id = `input-${block.block_id}`;
  if (made.el.matches?.("input, textarea, select")) made.el.id = id;
  const label = h(
    "label",
    { class: "input-label", for: id },
    plain(block.label?.text ?? ""),
    block.optional ? h("span", { class: "optional" }, " (optional)") : null
  );
  const error = ctx.errors?.[block.block_id];
  const el = h(
    "div",
    { class: `block block-input${error ? " has-error" : ""}`, dataset: { blockId: block.block_id } },
    label,
    made.el,
    block.hint ? h("div", { class: "input-hint" }, plain(block.hint.text)) : null,
    h("div", { class: "input-error", role: "alert" }, error || "")
  );
  if (ctx.inputs && made.read) ctx.inputs.set(block.block_id, { actionId: elementDef.action_id, read: made.read });
  return el;
}

export function block(b, ctx) {
  switch (b.type) {
    case "section":
      return section(b, ctx);
    case "header":
      return h("div", { class: "block block-header" }, plain(b.text?.text ?? ""));
    case "context":
      return context(b, ctx);
    case "divider":
      return h("hr", { class: "block block-divider" });
    case "actions":
      return actions(b, ctx);
    case "markdown": {
      const el = markdown(b.text);
      el.classList.add("block", "block-markdown");
      return el;
    }
    case "rich_text": {
      const el = richText(b, ctx);
      el.classList.add("block");
      return el;
    }
    case "image":
      return h(
        "figure",
        { class: "block block-image" },
        b.title ? h("figcaption", {}, plain(b.title.text)) : null,
        image(b.image_url, b.alt_text, "block-img")
      );
    case "input":
      return input(b, ctx);
    case "video":
      return h("div", { class: "block block-unsupported" }, "🎬 ", b.title?.text || "video");
    default:
      return h("div", { class: "block block-unsupported" }, `[${b.type} block]`);
  }
}

/** Render a list of blocks into a container. */
export function blocks(list, ctx) {
  return h("div", { class: "blocks" }, (list || []).map((b) => block(b, ctx)));
}

/** Show `errors` ({block_id: text}) next to the inputs of a rendered modal, clearing the others. */
export function showErrors(container, errors) {
  for (const el of container.querySelectorAll(".block-input")) {
    const text = errors?.[el.dataset.blockId] || "";
    el.classList.toggle("has-error", Boolean(text));
    el.querySelector(".input-error").textContent = text;
  }
}

// Slack text as DOM nodes: mrkdwn, Markdown (markdown blocks and streamed text), emoji shortcodes.
// Nothing here ever assigns HTML: text becomes text nodes, so message text can't inject markup.

const EMOJI = {
  "+1": "👍", thumbsup: "👍", "-1": "👎", thumbsdown: "👎", white_check_mark: "✅", heavy_check_mark: "✔️",
  x: "❌", warning: "⚠️", raising_hand: "🙋", hourglass_flowing_sand: "⏳", hourglass: "⌛",
  heavy_minus_sign: "➖", no_entry: "⛔", no_entry_sign: "🚫", email: "📧", envelope: "✉️", incoming_envelope: "📨",
  robot_face: "🤖", eyes: "👀", tada: "🎉", wave: "👋", sunny: "☀️", cloud: "☁️", rain_cloud: "🌧️",
  umbrella: "☔", snowflake: "❄️", memo: "📝", pencil: "📝", pencil2: "✏️", speech_balloon: "💬", bulb: "💡",
  question: "❓", grey_question: "❔", exclamation: "❗", lock: "🔒", mag: "🔍", rocket: "🚀", sparkles: "✨",
  hammer_and_wrench: "🛠️", gear: "⚙️", bell: "🔔", inbox_tray: "📥", outbox_tray: "📤", arrow_right: "➡️",
  leftwards_arrow_with_hook: "↩️", calendar: "📅", date: "📅", link: "🔗", page_facing_up: "📄",
  thinking_face: "🤔", slightly_smiling_face: "🙂", smile: "😄", heart: "❤️", fire: "🔥", point_right: "👉",
  large_green_circle: "🟢", red_circle: "🔴", large_yellow_circle: "🟡", large_blue_circle: "🔵", clock3: "🕒",
  stopwatch: "⏱️", mailbox: "📫", busts_in_silhouette: "👥", bust_in_silhouette: "👤", information_source: "ℹ️",
  arrows_counterclockwise: "🔄", repeat: "🔁", mag_right: "🔎", clipboard: "📋", pushpin: "📌", star: "⭐",
  ok_hand: "👌", pray: "🙏", muscle: "💪", zap: "⚡", books: "📚", book: "📖", computer: "💻", package: "📦",
  shield: "🛡️", key: "🔑", ballot_box_with_check: "☑️", heavy_multiplication_x: "✖️", writing_hand: "✍️",
  spiral_note_pad: "🗒️", hand: "✋", raised_hand: "✋", mailbox_with_mail: "📬", "e-mail": "📧", alarm_clock: "⏰",
  bangbang: "‼️", no_good: "🙅", rotating_light: "🚨", mega: "📣", loudspeaker: "📢", thought_balloon: "💭",
  left_speech_bubble: "🗨️", label: "🏷️", file_folder: "📁", open_file_folder: "📂", hammer: "🔨", wrench: "🔧",
  toolbox: "🧰", chart_with_upwards_trend: "📈", bar_chart: "📊", moneybag: "💰", credit_card: "💳",
  spiral_calendar_pad: "🗓️", arrow_up: "⬆️", arrow_down: "⬇️", arrow_left: "⬅️", new: "🆕", stop_sign: "🛑",
  octagonal_sign: "🛑", construction: "🚧", globe_with_meridians: "🌐", earth_americas: "🌎", partly_sunny: "⛅",
  thunder_cloud_and_rain: "⛈️", rainbow: "🌈", droplet: "💧", ocean: "🌊", white_circle: "⚪", black_circle: "⚫",
  speaking_head_in_silhouette: "🗣️", person_raising_hand: "🙋", handshake: "🤝", clap: "👏", raised_hands: "🙌",
  hourglass_done: "⌛", timer_clock: "⏲️", door: "🚪", heavy_plus_sign: "➕", arrows_clockwise: "🔃",
  sos: "🆘", white_check: "✅", large_orange_circle: "🟠", large_purple_circle: "🟣", crossed_fingers: "🤞", bust: "👤",
};

const ENTITIES = { lt: "<", gt: ">", amp: "&" };

/** Undo Slack's three escapes (&lt; &gt; &amp;); nothing else is an entity in Slack text. */
export function decode(text) {
  return text.replace(/&(lt|gt|amp);/g, (_, name) => ENTITIES[name]);
}

/** Replace :shortcodes: the page knows with their emoji. */
export function emojify(text) {
  return text.replace(/:([a-z0-9_+'-]+):/g, (whole, name) => EMOJI[name] || whole);
}

export function emojiFor(name, unicode) {
  if (unicode) {
    try {
      return String.fromCodePoint(...unicode.split("-").map((hex) => parseInt(hex, 16)));
    } catch {
      /* fall through to the name */
    }
  }
  return EMOJI[name] || `:${name}:`;
}

/** Create an element; `attrs` may hold class, dataset, event handlers (onX) and plain attributes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SAFE_URL = /^(https?:|mailto:)/i;

export function safeUrl(url) {
  const trimmed = (url || "").trim();
  return SAFE_URL.test(trimmed) ? trimmed : null;
}

function link(url, label) {
  const href = safeUrl(url);
  if (!href) return document.createTextNode(label || url);
  return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label || url);
}

function mention(text, kind = "user") {
  return h("span", { class: `mention mention-${kind}` }, text);
}

// ---- mrkdwn -------------------------------------------------------------------------------------

const MRKDWN_INLINE = [
  { kind: "code", re: /`([^`\n]+)`/ },
  { kind: "angle", re: /<([^<>\n]+)>/ },
  { kind: "bold", re: /(^|[^\w*])\*(?!\s)([^*\n]*?[^\s*])\*(?![\w*])/ },
  { kind: "italic", re: /(^|[^\w_])_(?!\s)([^_\n]*?[^\s_])_(?![\w_])/ },
  { kind: "strike", re: /(^|[^\w~])~(?!\s)([^~\n]*?[^\s~])~(?![\w~])/ },
];

function plainText(text) {
  return document.createTextNode(emojify(decode(text)));
}

function angle(token, ctx) {
  const [target, ...rest] = token.split("|");
  const label = rest.length ? decode(rest.join("|")) : "";
  if (target.startsWith("@")) {
    const user = ctx.user?.(target.slice(1));
    return mention(`@${user || label || target.slice(1)}`);
  }
  if (target.startsWith("#")) {
    const channel = ctx.channel?.(target.slice(1));
    return mention(`#${channel || label || target.slice(1)}`, "channel");
  }
  if (target.startsWith("!subteam^")) {
    return mention(label || `@${target.slice(9)}`, "group");
  }
  if (target.startsWith("!date^")) {
    const [, epoch] = target.split("^");
    const fallback = label || new Date(Number(epoch) * 1000).toLocaleString();
    return h("span", { class: "date", title: new Date(Number(epoch) * 1000).toString() }, fallback);
  }
  if (target.startsWith("!")) {
    return mention(`@${target.slice(1)}`, "broadcast");
  }
  return link(decode(target), label);
}

function mrkdwnInline(text, parent, ctx, depth = 0) {
  let rest = text;
  while (rest) {
    let best = null;
    for (const pattern of MRKDWN_INLINE) {
      if (depth > 3 && pattern.kind !== "code" && pattern.kind !== "angle") continue;
      const match = pattern.re.exec(rest);
      if (!match) continue;
      const prefix = pattern.kind === "code" || pattern.kind === "angle" ? 0 : match[1].length;
      const start = match.index + prefix;
      if (!best || start < best.start) best = { pattern, match, start };
    }
    if (!best) {
      parent.append(plainText(rest));
      return;
    }
    const { pattern, match, start } = best;
    if (start > 0) parent.append(plainText(rest.slice(0, start)));
    if (pattern.kind === "code") {
      parent.append(h("code", {}, decode(match[1])));
    } else if (pattern.kind === "angle") {
      parent.append(angle(match[1], ctx));
    } else {
      const tag = { bold: "b", italic: "i", strike: "s" }[pattern.kind];
      const inner = h(tag);
      mrkdwnInline(match[2], inner, ctx, depth + 1);
      parent.append(inner);
    }
    rest = rest.slice(match.index + match[0].length);
  }
}

function mrkdwnLines(text, parent, ctx) {
  const lines = text.split("\n");
  let quote = null;
  let plain = [];
  const flushPlain = () => {
    if (!plain.length) return;
    const span = h("span");
    mrkdwnInline(plain.join("\n"), span, ctx);
    parent.append(span);
    plain = [];
  };
  lines.forEach((line) => {
    const quoted = /^(&gt;|>)\s?(.*)$/.exec(line);
    if (quoted) {
      flushPlain();
      if (!quote) {
        quote = h("blockquote");
        parent.append(quote);
      } else {
        quote.append("\n");
      }
      mrkdwnInline(quoted[2], quote, ctx);
    } else {
      quote = null;
      plain.push(line);
    }
  });
  flushPlain();
}

/** Slack mrkdwn as a DOM fragment (bold, italic, strike, code, code blocks, quotes, links, mentions, dates). */
export function mrkdwn(text, ctx = {}) {
  const root = h("div", { class: "mrkdwn" });
  const fence = /```([\s\S]*?)```/g;
  let at = 0;
  let match;
  const source = String(text ?? "");
  while ((match = fence.exec(source))) {
    if (match.index > at) mrkdwnLines(source.slice(at, match.index).replace(/\n$/, ""), root, ctx);
    root.append(h("pre", {}, decode(match[1].replace(/^\n/, ""))));
    at = match.index + match[0].length;
    if (source[at] === "\n") at += 1;
  }
  if (at < source.length) mrkdwnLines(source.slice(at), root, ctx);
  return root;
}

/** plain_text objects (emoji shortcodes only). */
export function plain(text) {
  return document.createTextNode(emojify(String(text ?? "")));
}

// ---- Markdown (the `markdown` block and streamed replies) ----------------------------------------

const MD_INLINE = [
  { kind: "code", re: /`([^`\n]+)`/ },
  { kind: "link", re: /\[([^\]\n]+)\]\(([^)\s]+)\)/ },
  { kind: "bold", re: /(\*\*|__)(?=\S)([\s\S]*?\S)\1/ },
  { kind: "strike", re: /~~(?=\S)([\s\S]*?\S)~~/ },
  { kind: "italic", re: /(^|[^\w*])\*(?!\s)([^*\n]*?[^\s*])\*(?![\w*])|(^|[^\w_])_(?!\s)([^_\n]*?[^\s_])_(?![\w_])/ },
  { kind: "url", re: /https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"]/ },
];

function mdInline(text, parent, depth = 0) {
  let rest = text;
  while (rest) {
    let best = null;
    for (const pattern of MD_INLINE) {
      if (depth > 3 && pattern.kind !== "code") continue;
      const match = pattern.re.exec(rest);
      if (!match) continue;
      let start = match.index;
      if (pattern.kind === "italic") start += (match[1] ?? match[3] ?? "").length;
      if (!best || start < best.start) best = { pattern, match, start };
    }
    if (!best) {
      parent.append(document.createTextNode(emojify(rest)));
      return;
    }
    const { pattern, match, start } = best;
    if (start > 0) parent.append(document.createTextNode(emojify(rest.slice(0, start))));
    let node;
    if (pattern.kind === "code") node = h("code", {}, match[1]);
    else if (pattern.kind === "link") node = link(match[2], match[1]);
    else if (pattern.kind === "url") node = link(match[0], match[0]);
    else {
      const tag = { bold: "b", italic: "i", strike: "s" }[pattern.kind];
      node = h(tag);
      const inner = pattern.kind === "italic" ? match[2] ?? match[4] : pattern.kind === "bold" ? match[2] : match[1];
      mdInline(inner, node, depth + 1);
    }
    parent.append(node);
    rest = rest.slice(match.index + match[0].length);
  }
}

/** One line of Markdown (code, links, emphasis) as a span. */
export function inlineMarkdown(text) {
  const span = h("span");
  mdInline(String(text ?? ""), span);
  return span;
}

/** Markdown as a DOM fragment: headings, lists, quotes, fenced code, emphasis, links. */
export function markdown(text) {
  const root = h("div", { class: "markdown" });
  const lines = String(text ?? "").split("\n");
  let i = 0;
  let paragraph = [];
  let list = null;
  const flush = () => {
    if (paragraph.length) {
      const p = h("p");
      mdInline(paragraph.join("\n"), p);
      root.append(p);
      paragraph = [];
    }
  };
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*```/.test(line)) {
      flush();
      list = null;
      const code = [];
      i += 1;
      while (i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i++]);
      root.append(h("pre", {}, code.join("\n")));
      i += 1;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*?)\s*#*$/.exec(line);
    const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
    const numbered = /^\s*(\d+)[.)]\s+(.*)$/.exec(line);
    const quote = /^>\s?(.*)$/.exec(line);
    if (heading) {
      flush();
      list = null;
      const el = h("div", { class: `md-h md-h${heading[1].length}` });
      mdInline(heading[2], el);
      root.append(el);
    } else if (bullet || numbered) {
      flush();
      const tag = bullet ? "ul" : "ol";
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = h(tag);
        if (numbered && numbered[1] !== "1") list.setAttribute("start", numbered[1]);
        root.append(list);
      }
      const item = h("li");
      mdInline(bullet ? bullet[1] : numbered[2], item);
      list.append(item);
    } else if (quote) {
      flush();
      list = null;
      const el = h("blockquote");
      mdInline(quote[1], el);
      root.append(el);
    } else if (!line.trim()) {
      flush();
      list = null;
    } else {
      list = null;
      paragraph.push(line);
    }
    i += 1;
  }
  flush();
  return root;
}

// The sandbox's Slack-like page: channels, threads, a composer, modals, acting as one of several people.
// State comes from /control/stream (a snapshot, then every change); actions go through the control API,
// so the app receives signed events and interactions exactly as in the tests.

import { blocks, showErrors } from "./blocks.js";
import { decorateEmoji } from "./emoji.js";
import { ASSISTANT_THREAD, COMMAND_HINT, homeView, parseCommand, promptChips } from "./surfaces.js";
import { emojiFor, h, inlineMarkdown, markdown, mrkdwn } from "./text.js";

const WORKING_REACTION = "hourglass_flowing_sand";
const PALETTE = ["#e8912d", "#2bac76", "#1d9bd1", "#e01e5a", "#9f69b4", "#36c5f0", "#ecb22e"];
const params = new URLSearchParams(location.search);

const state = {
  ready: false,
  connected: false,
  me: params.get("as") || localStorage.getItem("sandbox.me") || "U0ALICE",
  channel: params.get("channel") || localStorage.getItem("sandbox.channel") || "C0GENERAL",
  thread: null, // {channel, ts}
  team: { name: "Sandbox" },
  botUserId: "U0BOT",
  users: new Map(),
  channels: new Map(),
  groups: new Map(),
  messages: new Map(), // channel -> Map(ts -> message)
  ephemerals: new Map(), // "channel|user" -> Map(ts -> message)
  views: new Map(), // user -> modal stack (top last)
  statuses: new Map(), // "channel|thread_ts" -> status
  labels: {},
  graphs: { enabled: false, options: [], channels: {} },
  seen: new Map(), // "user|channel" -> newest ts seen
  dismissed: new Set(),
  streamed: new Set(),
  homes: new Map(), // user -> their Home tab as last published
  assistant: new Map(), // "channel|thread_ts" -> {title, prompts} of an assistant thread
  tab: "messages", // in the app's DM: "home" or "messages"
  started: false, // the first snapshot of this page load was applied
};
window.sandboxPage = state;

// ---- helpers --------------------------------------------------------------------------------------

const $ = (selector) => document.querySelector(selector);

function person(id) {
  return state.users.get(id);
}

function shortName(id) {
  const user = person(id);
  return user ? user.profile?.display_name || user.name : id;
}

function fullName(id) {
  const user = person(id);
  if (!user) return id || "someone";
  return user.is_bot ? user.profile?.display_name || user.name : user.real_name || user.name;
}

function people() {
  return [...state.users.values()].filter((u) => !u.is_bot && !u.deleted);
}

function channelLabel(channel) {
  if (!channel) return "";
  if (channel.is_im) return shortName(state.botUserId);
  return channel.name;
}

function canSee(channel, user = state.me) {
  if (!channel) return false;
  if (channel.is_im) return channel.user === user;
  return (channel.members || []).includes(user);
}

function dmFor(user) {
  return [...state.channels.values()].find((c) => c.is_im && c.user === user);
}

function tsDate(ts) {
  return new Date(parseFloat(ts) * 1000);
}

function timeOf(ts) {
  return tsDate(ts).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
}

function shortTimeOf(ts) {
  return timeOf(ts).replace(/\s?[AP]M$/i, "");
}

function dayOf(ts) {
  const date = tsDate(ts);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86400000);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return date.toLocaleDateString([], { weekday: "long", month: "long", day: "numeric" });
}

function colorFor(id) {
  let hash = 0;
  for (const ch of id || "") hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

function avatar(id, size = "") {
  const user = person(id);
  if (!user || user.is_bot) return h("div", { class: `avatar bot ${size}`.trim(), "aria-hidden": "true" }, "🤖");
  const initial = (user.real_name || user.name || "?").slice(0, 1).toUpperCase();
  return h("div", { class: `avatar ${size}`.trim(), style: `background:${colorFor(id)}`, "aria-hidden": "true" }, initial);
}

const textCtx = {
  user: (id) => shortName(id),
  channel: (id) => channelLabel(state.channels.get(id)),
  group: (id) => state.groups.get(id)?.handle,
};

function toast(text, kind = "error") {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  decorateEmoji(el);
  $("#toasts").append(el);
  setTimeout(() => el.classList.add("leaving"), 4200);
  setTimeout(() => el.remove(), 4700);
}

async function api(route, body, method = "POST") {
  let response;
  try {
    response = await fetch(`/control/${route}`, {
      method,
      headers: { "Content-Type": "application/json" },
      body: method === "POST" ? JSON.stringify(body || {}) : undefined,
    });
  } catch (error) {
    toast(`The sandbox is not answering (${error.message}).`);
    return { ok: false, error: "unreachable" };
  }
  const data = await response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
  if (response.status >= 400 && data.error !== "required_fields_missing") {
    toast(`Slack said: ${data.error}${data.detail ? ` (${data.detail})` : ""}`);
  }
  return data;
}

function reportInteraction(data) {
  if (!data || data.ok || data.error === "required_fields_missing") return;
  if (data.status) toast(`The app answered HTTP ${data.status} to that interaction.`);
  else if (data.error && data.error !== "unreachable") toast(`The app could not be reached (${data.error}).`);
}

async function closeStale(user, count) {
  for (let i = 0; i < count; i += 1) {
    const response = await fetch("/control/cancel", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user }) }).catch(() => null);
    if (!response?.ok) return;
  }
}

// ---- the live feed ----------------------------------------------------------------------------------

function upsert(map, key, ts, message) {
  if (!map.has(key)) map.set(key, new Map());
  map.get(key).set(ts, message);
}

function noteStreaming(message) {
  if (message.is_streaming) state.streamed.add(message.ts);
}

function loadSnapshot(data) {
  state.team = data.team || state.team;
  state.botUserId = data.bot_user_id || state.botUserId;
  state.users = new Map(data.users.map((u) => [u.id, u]));
  state.groups = new Map((data.usergroups || []).map((g) => [g.id, g]));
  state.channels = new Map(data.channels.map((c) => [c.id, c]));
  state.messages = new Map();
  for (const [channel, list] of Object.entries(data.messages || {})) {
    for (const message of list) {
      upsert(state.messages, channel, message.ts, message);
      noteStreaming(message);
    }
  }
  state.ephemerals = new Map();
  for (const item of data.ephemerals || []) upsert(state.ephemerals, `${item.channel}|${item.user}`, item.message.ts, item.message);
  state.views = new Map(Object.entries(data.views || {}));
  state.statuses = new Map((data.statuses || []).map((s) => [`${s.channel}|${s.thread_ts}`, s.status]));
  state.labels = data.labels || {};
  state.graphs = data.graphs || { enabled: false, options: [], channels: {} };
  state.homes = new Map(Object.entries(data.homes || {}));
  state.assistant = new Map((data.assistant || []).map((a) => [`${a.channel}|${a.thread_ts}`, a]));
  if (!state.started) {
    // A modal belongs to the page it was opened in: reloading (or reopening) the page closes the ones left open,
    // as Slack does when its client goes away, instead of bringing a stale one back.
    state.started = true;
    for (const [user, stack] of state.views) if (stack?.length) closeStale(user, stack.length);
    state.views = new Map();
  }
  for (const channel of state.channels.values()) {
    for (const user of state.users.keys()) {
      const key = `${user}|${channel.id}`;
      if (!state.seen.has(key)) state.seen.set(key, newestTs(channel.id));
    }
  }
  if (!person(state.me) || person(state.me).is_bot) state.me = people()[0]?.id || state.me;
  if (!canSee(state.channels.get(state.channel))) state.channel = firstChannelFor(state.me);
  state.ready = true;
}

function apply(event) {
  switch (event.type) {
    case "snapshot":
      loadSnapshot(event);
      break;
    case "message":
      upsert(state.messages, event.channel, event.message.ts, event.message);
      noteStreaming(event.message);
      break;
    case "message_deleted":
      state.messages.get(event.channel)?.delete(event.ts);
      break;
    case "ephemeral":
      upsert(state.ephemerals, `${event.channel}|${event.user}`, event.message.ts, event.message);
      break;
    case "ephemeral_deleted":
      state.ephemerals.get(`${event.channel}|${event.user}`)?.delete(event.ts);
      break;
    case "views":
      state.views.set(event.user, event.views);
      break;
    case "status":
      if (event.status) state.statuses.set(`${event.channel}|${event.thread_ts}`, event.status);
      else state.statuses.delete(`${event.channel}|${event.thread_ts}`);
      break;
    case "graph":
      state.graphs.channels[event.channel] = event.graph;
      break;
    case "home":
      state.homes.set(event.user, event.view);
      break;
    case "assistant":
      state.assistant.set(`${event.channel}|${event.thread_ts}`, event);
      break;
    case "labels":
      state.labels = event.labels || {};
      break;
    case "reset":
      reconnect();
      return;
    default:
      return;
  }
  scheduleRender();
}

let source = null;

function connect() {
  source = new EventSource("/control/stream");
  source.onopen = () => {
    state.connected = true;
    scheduleRender();
  };
  source.onmessage = (event) => apply(JSON.parse(event.data));
  source.onerror = () => {
    state.connected = false;
    scheduleRender();
  };
}

function reconnect() {
  source?.close();
  state.seen.clear();
  connect();
}

// ---- reading the state --------------------------------------------------------------------------------

function channelMessages(channel) {
  return [...(state.messages.get(channel)?.values() || [])];
}

function newestTs(channel) {
  let newest = "0";
  for (const message of channelMessages(channel)) if (parseFloat(message.ts) > parseFloat(newest)) newest = message.ts;
  return newest;
}

function isReply(message) {
  return message.thread_ts && message.thread_ts !== message.ts;
}

function myEphemerals(channel) {
  return [...(state.ephemerals.get(`${channel}|${state.me}`)?.values() || [])].filter((m) => !state.dismissed.has(m.ts));
}

function byTs(a, b) {
  return parseFloat(a.ts) - parseFloat(b.ts);
}

function topLevel(channel) {
  const own = channelMessages(channel).filter((m) => !isReply(m) || m.subtype === "thread_broadcast");
  const shown = myEphemerals(channel).filter((m) => !m.thread_ts);
  return [...own, ...shown].sort(byTs);
}

function threadOf(channel, root) {
  const own = channelMessages(channel).filter((m) => m.ts === root || m.thread_ts === root);
  const shown = myEphemerals(channel).filter((m) => m.thread_ts === root);
  return [...own, ...shown].sort(byTs);
}

function isWorkingOn(message) {
  return (message.reactions || []).some((r) => r.name === WORKING_REACTION && r.users.includes(state.botUserId));
}

function workingText(channel, root) {
  const messages = root ? threadOf(channel, root) : channelMessages(channel);
  let status = null;
  for (const [key, value] of state.statuses) {
    const [chan, ts] = key.split("|");
    if (chan === channel && (!root || ts === root)) status = value;
  }
  const bot = shortName(state.botUserId);
  if (status) return `${bot} ${status}`;
  if (messages.some(isWorkingOn)) return `${bot} is working…`;
  return "";
}

function firstChannelFor(user) {
  const visible = [...state.channels.values()].filter((c) => !c.is_im && canSee(c, user));
  const general = visible.find((c) => c.is_general || c.name === "general");
  return (general || visible[0] || dmFor(user))?.id;
}

function unread(channel) {
  const seen = parseFloat(state.seen.get(`${state.me}|${channel}`) || "0");
  return channelMessages(channel).filter((m) => parseFloat(m.ts) > seen && m.user !== state.me).length;
}

// ---- actions --------------------------------------------------------------------------------------

function setMe(user) {
  state.me = user;
  localStorage.setItem("sandbox.me", user);
  const current = state.channels.get(state.channel);
  if (current?.is_im) state.channel = dmFor(user)?.id || firstChannelFor(user);
  else if (!canSee(current, user)) state.channel = firstChannelFor(user);
  if (state.thread && !canSee(state.channels.get(state.thread.channel), user)) state.thread = null;
  localStorage.setItem("sandbox.channel", state.channel);
  // Someone else looking at the app's Home for the first time: the app hears of it, and publishes theirs.
  if (state.tab === "home" && state.channels.get(state.channel)?.is_im && !state.homes.has(user)) showTab("home");
  scheduleRender({ scroll: true });
}

function openChannel(channel, tab = "messages") {
  if (tab !== state.tab || channel !== state.channel) showTab(tab);
  state.channel = channel;
  localStorage.setItem("sandbox.channel", channel);
  scheduleRender({ scroll: true });
}

function openThread(channel, ts) {
  state.thread = { channel, ts };
  scheduleRender({ scroll: true });
}

function showTab(tab) {
  state.tab = tab;
  // Opening the Home tab is what makes Slack send app_home_opened; the app answers with views.publish.
  if (tab === "home") api("home_opened", { user: state.me, tab: "home" });
}

async function openAssistant() {
  const data = await api("assistant_thread", { user: state.me, context_channel: state.channels.get(state.channel)?.is_im ? undefined : state.channel });
  if (data.ok) openThread(data.channel, data.thread_ts);
}

async function pickPrompt(thread, prompt) {
  const data = await api("messages", { user: state.me, channel: thread.channel, text: encodeOutgoing(prompt.message), thread_ts: thread.ts });
  if (data.ok) scheduleRender({ scroll: true });
}

async function runCommand(textarea, channel, parsed) {
  const data = await api("command", { user: state.me, channel, command: parsed.command, text: parsed.text });
  if (data.ok === false && data.status === undefined) return;
  reportInteraction(data);
  textarea.value = "";
  grow(textarea);
  scheduleRender({ scroll: true });
}

async function homeClick(block, element, value) {
  const data = await api("click_home", {
    user: state.me,
    action_id: element.action_id,
    block_id: block.block_id,
    value: element.type === "button" ? element.value ?? null : value,
  });
  reportInteraction(data);
}

function closeThread() {
  state.thread = null;
  scheduleRender();
}

function encodeOutgoing(text) {
  let out = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  out = out.replace(/(^|[\s(])@([A-Za-z0-9_-]+)/g, (whole, before, name) => {
    const lower = name.toLowerCase();
    if (["here", "channel", "everyone"].includes(lower)) return `${before}<!${lower}>`;
    const user = [...state.users.values()].find(
      (u) => u.name.toLowerCase() === lower || (u.profile?.display_name || "").toLowerCase() === lower
    );
    return user ? `${before}<@${user.id}>` : whole;
  });
  out = out.replace(/(^|[\s(])#([A-Za-z0-9_-]+)/g, (whole, before, name) => {
    const channel = [...state.channels.values()].find((c) => !c.is_im && c.name === name.toLowerCase());
    return channel ? `${before}<#${channel.id}|${channel.name}>` : whole;
  });
  return out;
}

async function send(textarea, channel, threadTs) {
  const raw = textarea.value.trim();
  if (!raw) return;
  const command = parseCommand(raw);
  if (command) {
    await runCommand(textarea, channel, command);
    return;
  }
  const text = encodeOutgoing(raw);
  const data = await api("messages", { user: state.me, channel, text, thread_ts: threadTs || undefined });
  if (!data.ok) return;
  textarea.value = "";
  grow(textarea);
  const target = state.channels.get(channel);
  if (!threadTs && (target?.is_im || text.includes(`<@${state.botUserId}>`))) openThread(data.channel, data.ts);
}

async function click(channel, message, block, element, value) {
  const data = await api("click", {
    user: state.me,
    channel,
    ts: message.ts,
    action_id: element.action_id,
    block_id: block.block_id,
    value: element.type === "button" ? element.value ?? null : value,
  });
  reportInteraction(data);
}

async function react(channel, message, name, mine) {
  await api("react", { user: state.me, channel, ts: message.ts, name, remove: mine });
}

async function chooseGraph(channel, graph) {
  const data = await api("graphs", { channel, graph });
  if (data.ok) {
    const option = state.graphs.options.find((o) => o.id === data.current);
    const where = channelLabel(state.channels.get(channel));
    toast(`New conversations in ${state.channels.get(channel)?.is_im ? "this DM" : `#${where}`} use ${option?.label || data.current}; existing threads keep theirs.`, "info");
  }
}

// ---- rendering: messages ---------------------------------------------------------------------------------

function reactionsRow(channel, message) {
  if (!message.reactions?.length || message.is_ephemeral) return null;
  return h(
    "div",
    { class: "reactions" },
    message.reactions.map((r) => {
      const mine = r.users.includes(state.me);
      const who = r.users.map((u) => shortName(u)).join(", ");
      return h(
        "button",
        {
          type: "button",
          class: `reaction${mine ? " mine" : ""}${r.name === WORKING_REACTION ? " working" : ""}`,
          title: `${who} reacted with :${r.name}:`,
          onclick: () => react(channel, message, r.name, mine),
        },
        h("span", { class: "reaction-emoji" }, emojiFor(r.name)),
        h("span", { class: "reaction-count" }, String(r.count ?? r.users.length))
      );
    })
  );
}

function threadSummary(channel, message) {
  if (!message.reply_count) return null;
  const faces = (message.reply_users || []).slice(0, 3).map((u) => avatar(u, "tiny"));
  const count = message.reply_count === 1 ? "1 reply" : `${message.reply_count} replies`;
  return h(
    "button",
    { type: "button", class: "thread-summary", onclick: () => openThread(channel, message.ts) },
    h("span", { class: "faces" }, faces),
    h("span", { class: "thread-count" }, count),
    message.latest_reply ? h("span", { class: "thread-last" }, `Last reply ${dayOf(message.latest_reply).toLowerCase()} at ${timeOf(message.latest_reply)}`) : null
  );
}

function attachmentsView(message) {
  if (!message.attachments?.length) return null;
  return h(
    "div",
    { class: "attachments" },
    message.attachments.map((a) =>
      h(
        "div",
        { class: "attachment", style: a.color ? `border-left-color:${/^#?[0-9a-f]{3,8}$/i.test(a.color) ? (a.color.startsWith("#") ? a.color : `#${a.color}`) : a.color === "good" ? "#2eb886" : a.color === "danger" ? "#e01e5a" : a.color === "warning" ? "#daa038" : "#dddddd"}` : null },
        a.title ? h("div", { class: "attachment-title" }, a.title) : null,
        a.text ? mrkdwn(a.text, textCtx) : null,
        a.blocks ? blocks(a.blocks, { surface: "message", ...textCtx }) : null,
        (a.fields || []).length ? h("div", { class: "section-fields" }, a.fields.map((f) => h("div", { class: "field" }, h("b", {}, f.title || ""), h("div", {}, f.value || "")))) : null
      )
    )
  );
}

function messageContent(channel, message) {
  if (message.subtype === "tombstone") return h("div", { class: "tombstone" }, "This message was deleted.");
  const ctx = {
    surface: "message",
    ...textCtx,
    users: () => people().map((u) => ({ id: u.id, name: fullName(u.id) })),
    channels: () => [...state.channels.values()].filter((c) => !c.is_im).map((c) => ({ id: c.id, label: `#${c.name}` })),
    action: (block, element, value) => click(channel, message, block, element, value),
  };
  const parts = [];
  const streamed = state.streamed.has(message.ts) || message.is_streaming;
  if (streamed) {
    if (message.text) parts.push(markdown(message.text));
    if (message.blocks?.length) parts.push(blocks(message.blocks, ctx));
  } else if (message.blocks?.length) {
    parts.push(blocks(message.blocks, ctx));
  } else if (message.text) {
    parts.push(mrkdwn(message.text, textCtx));
  }
  if (message.is_streaming) {
    // The caret follows the last word written, inside its paragraph or list item.
    const caret = h("span", { class: "stream-caret", "aria-label": "still writing" });
    const last = parts.length ? [...parts[parts.length - 1].querySelectorAll?.("p, li, pre, blockquote, h1, h2, h3, h4") || []].pop() : null;
    if (last) last.append(caret);
    else parts.push(caret);
  }
  const attachments = attachmentsView(message);
  if (attachments) parts.push(attachments);
  return h("div", { class: "msg-content" }, parts);
}

function messageView(channel, message, { compact, inThread }) {
  const author = message.user || (message.bot_id ? state.botUserId : null);
  const isBot = Boolean(message.bot_id) || person(author)?.is_bot;
  const head = h(
    "div",
    { class: "msg-head" },
    h("span", { class: "msg-author" }, fullName(author)),
    isBot ? h("span", { class: "app-badge" }, "APP") : null,
    h("span", { class: "msg-time", title: tsDate(message.ts).toLocaleString() }, timeOf(message.ts))
  );
  const body = h(
    "div",
    { class: "msg-body" },
    message.is_ephemeral ? h("div", { class: "ephemeral-note" }, "👁 Only visible to you") : null,
    compact ? null : head,
    messageContent(channel, message),
    message.edited && message.subtype !== "tombstone" ? h("span", { class: "edited" }, "(edited)") : null,
    reactionsRow(channel, message),
    inThread ? null : threadSummary(channel, message),
    message.is_ephemeral
      ? h("button", { type: "button", class: "dismiss", onclick: () => { state.dismissed.add(message.ts); scheduleRender(); } }, "Dismiss message")
      : null
  );
  const tools =
    inThread || message.is_ephemeral
      ? null
      : h(
          "div",
          { class: "msg-tools" },
          h("button", { type: "button", class: "tool", title: "Reply in thread", "aria-label": "Reply in thread", onclick: () => openThread(channel, message.ts) }, "💬")
        );
  return h(
    "div",
    {
      class: `msg${compact ? " compact" : ""}${message.is_ephemeral ? " ephemeral" : ""}${isWorkingOn(message) ? " is-working" : ""}${message.is_streaming ? " streaming" : ""}`,
      dataset: { ts: message.ts, channel, user: author || "", kind: isBot ? "bot" : "person" },
    },
    h("div", { class: "msg-gutter" }, compact ? h("span", { class: "msg-time-hover" }, shortTimeOf(message.ts)) : avatar(author)),
    body,
    tools
  );
}

function reconcile(container, items) {
  container._cache ||= new Map();
  const next = new Map();
  const nodes = items.map((item) => {
    const cached = container._cache.get(item.key);
    const el = cached && cached.sig === item.sig ? cached.el : item.make();
    next.set(item.key, { sig: item.sig, el });
    return el;
  });
  container._cache = next;
  const current = [...container.children];
  if (current.length === nodes.length && current.every((el, i) => el === nodes[i])) return;
  container.replaceChildren(...nodes);
}

function messageItems(channel, messages, inThread, headless = false) {
  const items = [];
  let previous = null;
  let day = null;
  messages.forEach((message, index) => {
    const messageDay = dayOf(message.ts);
    if (messageDay !== day && !(inThread && index === 0)) {
      day = messageDay;
      items.push({ key: `day:${messageDay}`, sig: messageDay, make: () => h("div", { class: "day-divider" }, h("span", {}, messageDay)) });
      previous = null;
    }
    day = messageDay;
    const author = message.user || message.bot_id;
    const compact =
      previous &&
      !message.is_ephemeral &&
      !previous.is_ephemeral &&
      (previous.user || previous.bot_id) === author &&
      !previous.reply_count &&
      !(inThread && index === 1) &&
      parseFloat(message.ts) - parseFloat(previous.ts) < 300;
    const sig = JSON.stringify([message, compact, state.me, state.streamed.has(message.ts)]);
    items.push({ key: message.ts, sig, make: () => messageView(channel, message, { compact, inThread }) });
    if (inThread && !headless && index === 0 && messages.length > 1) {
      const n = messages.length - 1;
      items.push({ key: "replies-divider", sig: String(n), make: () => h("div", { class: "replies-divider" }, h("span", {}, n === 1 ? "1 reply" : `${n} replies`)) });
    }
    previous = message;
  });
  return items;
}

function keepScrolled(scroller, force, update) {
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  update();
  if (force || atBottom) scroller.scrollTop = scroller.scrollHeight;
}

// ---- rendering: the frame ------------------------------------------------------------------------------

function renderTopbar() {
  $("#team-name").textContent = state.team.name || "Sandbox";
  const select = $("#acting-user");
  const options = people().map((u) => h("option", { value: u.id, selected: u.id === state.me || null }, `${u.real_name} (@${u.name})`));
  if (select.options.length !== options.length || [...select.options].some((o, i) => o.value !== options[i].value)) select.replaceChildren(...options);
  select.value = state.me;
  $("#acting-avatar").replaceChildren(avatar(state.me, "small"));
  const model = state.labels.model;
  const label = $("#model-label");
  label.hidden = !model;
  label.textContent = model ? `Model: ${model}` : "";
  label.classList.toggle("offline", /offline/i.test(model || ""));
  $("#connection").hidden = state.connected || !state.ready;
}

function sidebarItem(channel, { icon, label, badge }) {
  const active = channel.id === state.channel;
  const count = active ? 0 : unread(channel.id);
  return h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        class: `side-item${active ? " active" : ""}${count ? " unread" : ""}`,
        dataset: { channel: channel.id },
        onclick: () => openChannel(channel.id),
      },
      icon,
      h("span", { class: "side-label" }, label),
      badge,
      count && channel.is_im ? h("span", { class: "side-count" }, String(count)) : null
    )
  );
}

function renderSidebar() {
  const channels = [...state.channels.values()].filter((c) => !c.is_im && canSee(c)).sort((a, b) => a.name.localeCompare(b.name));
  $("#channel-list").replaceChildren(...channels.map((c) => sidebarItem(c, { icon: h("span", { class: "side-icon" }, "#"), label: c.name })));
  const dm = dmFor(state.me);
  $("#app-list").replaceChildren(
    ...(dm ? [sidebarItem(dm, { icon: avatar(state.botUserId, "side"), label: shortName(state.botUserId), badge: h("span", { class: "app-badge side" }, "APP") })] : [])
  );
  const hidden = [...state.channels.values()].filter((c) => !c.is_im && !canSee(c));
  $("#not-member").textContent = hidden.length ? `Not a member of ${hidden.map((c) => `#${c.name}`).join(", ")}` : "";
}

function graphOption(id) {
  return state.graphs.options.find((o) => o.id === id);
}

function renderHeader(channel) {
  const title = $("#channel-title");
  if (channel.is_im) {
    title.replaceChildren(avatar(state.botUserId, "small"), h("span", {}, shortName(state.botUserId)), h("span", { class: "app-badge" }, "APP"));
  } else {
    title.replaceChildren(h("span", { class: "hash" }, "#"), h("span", {}, channel.name));
  }
  const members = (channel.members || []).length;
  const current = state.graphs.channels?.[channel.id];
  const option = graphOption(current);
  $("#channel-meta").textContent = channel.is_im
    ? "Direct messages · no mention needed"
    : `${members} members`;
  const tabs = $("#app-tabs");
  tabs.hidden = !channel.is_im;
  for (const button of tabs.querySelectorAll("[role=tab]")) {
    const selected = channel.is_im && button.dataset.tab === state.tab;
    button.setAttribute("aria-selected", String(selected));
    button.classList.toggle("active", selected);
  }
  const picker = $("#graph-picker");
  picker.hidden = !state.graphs.enabled || (channel.is_im && state.tab === "home");
  if (state.graphs.enabled) {
    const select = $("#graph-select");
    const options = state.graphs.options.map((o) => h("option", { value: o.id, title: o.description }, o.label));
    select.replaceChildren(...options);
    select.value = current || "";
    select.title = option?.description || "";
  }
}

function intro(channel) {
  const option = graphOption(state.graphs.channels?.[channel.id]);
  const prefix = channel.is_im ? "" : `@${shortName(state.botUserId)} `;
  const examples = option?.examples || [];
  const chips = examples.map((example) =>
    h(
      "button",
      {
        type: "button",
        class: "chip",
        onclick: () => {
          const box = $("#composer textarea");
          box.value = prefix + example;
          grow(box);
          box.focus();
        },
      },
      prefix + example
    )
  );
  return h(
    "div",
    { class: "intro" },
    h("div", { class: "intro-title" }, channel.is_im ? `This is your conversation with ${shortName(state.botUserId)}` : `This is the very beginning of #${channel.name}`),
    h(
      "div",
      { class: "intro-text" },
      option
        ? ["New conversations here run ", h("span", { class: "intro-graph" }, option.label), option.description ? [": ", inlineMarkdown(option.description), ". "] : ". "]
        : "",
      channel.is_im ? "Write a message to start." : "Mention the agent to start a conversation; it answers in a thread."
    ),
    chips.length ? h("div", { class: "chips" }, h("span", { class: "chips-label" }, "Try:"), chips) : null
  );
}

function renderWorking(el, text) {
  el.hidden = !text;
  if (text) el.replaceChildren(h("span", { class: "dots" }, h("i"), h("i"), h("i")), h("span", { class: "working-text" }, text));
}

function renderHome() {
  const view = state.homes.get(state.me) || null;
  const ctx = {
    ...textCtx,
    users: () => people().map((u) => ({ id: u.id, name: fullName(u.id) })),
    channels: () => [...state.channels.values()].filter((c) => !c.is_im).map((c) => ({ id: c.id, label: `#${c.name}` })),
    action: homeClick,
  };
  const key = `home:${state.me}`;
  reconcile($("#home"), [{ key, sig: JSON.stringify([state.me, view]), make: () => homeView(view, ctx) }]);
}

function renderChannel(force) {
  const channel = state.channels.get(state.channel);
  if (!channel) return;
  renderHeader(channel);
  const onHome = Boolean(channel.is_im) && state.tab === "home";
  document.body.dataset.tab = onHome ? "home" : "messages";
  $("#home").hidden = !onHome;
  $("#messages").hidden = onHome;
  $("#composer").hidden = onHome;
  if (onHome) {
    $("#channel-working").hidden = true;
    renderHome();
    return;
  }
  const messages = topLevel(channel.id);
  const scroller = $("#messages");
  keepScrolled(scroller, force, () => {
    const list = $("#message-list");
    const items = messageItems(channel.id, messages, false);
    const optionKey = JSON.stringify([state.graphs.channels?.[channel.id], state.graphs.options.length, channel.id]);
    items.unshift({ key: `intro:${channel.id}`, sig: optionKey, make: () => intro(channel) });
    reconcile(list, items);
  });
  renderWorking($("#channel-working"), workingText(channel.id, null));
  const box = $("#composer textarea");
  box.placeholder = channel.is_im ? `Message ${shortName(state.botUserId)}` : `Message #${channel.name}`;
  $("#composer-hint").textContent = box.value.startsWith("/")
    ? COMMAND_HINT
    : channel.is_im
      ? "Enter to send · Shift+Enter for a new line · /agent for commands"
      : `Mention @${shortName(state.botUserId)} to talk to the agent · /agent for commands · Enter to send`;
  state.seen.set(`${state.me}|${channel.id}`, newestTs(channel.id));
}

function renderThread(force) {
  const pane = $("#thread");
  const thread = state.thread;
  const root = thread && state.messages.get(thread.channel)?.get(thread.ts);
  if (!thread || !root) {
    pane.hidden = true;
    document.body.classList.remove("with-thread");
    return;
  }
  pane.hidden = false;
  document.body.classList.add("with-thread");
  pane.dataset.channel = thread.channel;
  pane.dataset.ts = thread.ts;
  const channel = state.channels.get(thread.channel);
  const assistant = root.subtype === ASSISTANT_THREAD;
  const info = state.assistant.get(`${thread.channel}|${thread.ts}`) || {};
  pane.dataset.assistant = assistant ? "1" : "";
  pane.classList.toggle("assistant", assistant);
  $("#thread-title").textContent = assistant ? info.title || "New chat" : "Thread";
  $("#thread-where").textContent = assistant
    ? `${shortName(state.botUserId)} · assistant`
    : channel?.is_im ? shortName(state.botUserId) : `#${channel?.name}`;
  // An assistant thread's root is Slack's own bookkeeping: the pane shows the conversation only.
  const shown = threadOf(thread.channel, thread.ts).filter((m) => !(assistant && m.ts === thread.ts));
  const scroller = $("#thread-scroll");
  keepScrolled(scroller, force, () => reconcile($("#thread-list"), messageItems(thread.channel, shown, true, assistant)));
  const prompts = $("#thread-prompts");
  const asked = shown.some((m) => m.user === state.me);
  const offered = assistant && !asked ? info.prompts || [] : [];
  prompts.hidden = !offered.length;
  reconcile(prompts, offered.length ? [{ key: "prompts", sig: JSON.stringify([thread, offered]), make: () => promptChips(offered, (p) => pickPrompt(thread, p)) }] : []);
  $("#thread-composer textarea").placeholder = assistant ? `Ask ${shortName(state.botUserId)}…` : "Reply…";
  renderWorking($("#thread-working"), workingText(thread.channel, thread.ts));
  state.seen.set(`${state.me}|${thread.channel}`, newestTs(thread.channel));
}

// ---- rendering: modals ---------------------------------------------------------------------------------------

const modal = { user: null, id: null, hash: null, el: null, inputs: null, localErrors: null, body: null };

function closeModalView() {
  modal.el?.remove();
  Object.assign(modal, { user: null, id: null, hash: null, el: null, inputs: null, localErrors: null, body: null });
}

async function submitModal(view, button) {
  const values = {};
  for (const [blockId, input] of modal.inputs) values[blockId] = { [input.actionId]: input.read() };
  button.disabled = true;
  button.classList.add("busy");
  const data = await api("submit", { user: state.me, view_id: view.id, values });
  button.disabled = false;
  button.classList.remove("busy");
  if (data.error === "required_fields_missing" || data.response_action === "errors") {
    modal.localErrors = data.errors || {};
    if (modal.id === view.id) showErrors(modal.body, modal.localErrors);
    return;
  }
  reportInteraction(data);
}

function renderModal() {
  const stack = state.views.get(state.me) || [];
  const view = stack[stack.length - 1];
  if (!view || view.type !== "modal") {
    closeModalView();
    return;
  }
  if (modal.user === state.me && modal.id === view.id && modal.hash === view.hash) {
    showErrors(modal.body, { ...(modal.localErrors || {}), ...(view.errors || {}) });
    return;
  }
  closeModalView();
  const inputs = new Map();
  const ctx = {
    surface: "modal",
    ...textCtx,
    inputs,
    values: view.state?.values || {},
    errors: view.errors || {},
    users: () => people().map((u) => ({ id: u.id, name: fullName(u.id) })),
    channels: () => [...state.channels.values()].filter((c) => !c.is_im).map((c) => ({ id: c.id, label: `#${c.name}` })),
    action: async (block, element, value) => {
      const data = await api("click", {
        user: state.me,
        view_id: view.id,
        action_id: element.action_id,
        block_id: block.block_id,
        value: element.type === "button" ? element.value ?? null : value,
      });
      reportInteraction(data);
    },
  };
  const body = h("div", { class: "modal-body" }, blocks(view.blocks, ctx));
  const cancel = () => api("cancel", { user: state.me });
  const submit = view.submit ? h("button", { type: "submit", class: "btn primary large" }, view.submit.text) : null;
  const form = h(
    "form",
    {
      class: "modal",
      role: "dialog",
      "aria-modal": "true",
      "aria-labelledby": "modal-title",
      dataset: { viewId: view.id },
      onsubmit: (event) => {
        event.preventDefault();
        if (submit) submitModal(view, submit);
      },
    },
    h(
      "div",
      { class: "modal-header" },
      h("div", { class: "modal-app" }, avatar(state.botUserId, "small")),
      h("h2", { id: "modal-title" }, view.title?.text || ""),
      h("button", { type: "button", class: "modal-x", "aria-label": "Close", onclick: cancel }, "×")
    ),
    body,
    h(
      "div",
      { class: "modal-footer" },
      h("button", { type: "button", class: "btn large", onclick: cancel }, view.close?.text || (submit ? "Cancel" : "Close")),
      submit
    )
  );
  const backdrop = h("div", { class: "modal-backdrop" }, form);
  $("#modal-root").append(backdrop);
  Object.assign(modal, { user: state.me, id: view.id, hash: view.hash, el: backdrop, inputs, localErrors: null, body });
  const first = body.querySelector("textarea, input, select");
  if (first) {
    first.focus();
    if (first.setSelectionRange && typeof first.value === "string") first.setSelectionRange(first.value.length, first.value.length);
  }
}

// ---- render loop ---------------------------------------------------------------------------------------------

let pending = false;
let forceScroll = false;

function scheduleRender(options = {}) {
  if (options.scroll) forceScroll = true;
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const force = forceScroll;
    forceScroll = false;
    render(force);
  });
}

function render(force) {
  if (!state.ready) return;
  renderTopbar();
  renderChannel(force);
  renderThread(force);
  renderSidebar();
  renderModal();
  decorateEmoji(document.body);
  document.body.dataset.ready = "1";
  document.body.dataset.me = state.me;
  document.body.dataset.channel = state.channel;
}

// ---- composer ----------------------------------------------------------------------------------------------

function grow(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
}

function wireComposer(form, target) {
  const textarea = form.querySelector("textarea");
  textarea.addEventListener("input", () => {
    grow(textarea);
    form.classList.toggle("has-text", Boolean(textarea.value.trim()));
    form.classList.toggle("is-command", textarea.value.startsWith("/"));
    if (form.id === "composer") scheduleRender();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { channel, thread } = target();
    await send(textarea, channel, thread);
    form.classList.toggle("has-text", Boolean(textarea.value.trim()));
  });
}

function init() {
  $("#acting-user").addEventListener("change", (event) => setMe(event.target.value));
  $("#graph-select").addEventListener("change", (event) => chooseGraph(state.channel, event.target.value));
  $("#thread-close").addEventListener("click", closeThread);
  $("#assistant-open").addEventListener("click", openAssistant);
  for (const button of document.querySelectorAll("#app-tabs [role=tab]")) {
    button.addEventListener("click", () => {
      showTab(button.dataset.tab);
      scheduleRender({ scroll: true });
    });
  }
  wireComposer($("#composer"), () => ({ channel: state.channel, thread: null }));
  wireComposer($("#thread-composer"), () => ({ channel: state.thread?.channel, thread: state.thread?.ts }));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && modal.el) api("cancel", { user: state.me });
  });
  connect();
}

init();

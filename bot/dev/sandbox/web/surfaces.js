// The app's own surfaces beside channels: its Home tab (views.publish), the assistant pane's suggested prompts,
// and slash commands typed in a composer. Pure rendering and parsing; app.js owns the state and the API calls.

import { blocks } from "./blocks.js";
import { h } from "./text.js";

/** The subtype of an assistant thread's root message. */
export const ASSISTANT_THREAD = "assistant_app_thread";

/** The Home tab as the app last published it for this person (`view` null: not yet published). */
export function homeView(view, ctx) {
  if (!view) {
    return h("div", { class: "home-empty" }, h("div", { class: "intro-title" }, "Home"), h("div", { class: "intro-text" }, "Waiting for the app to publish this tab…"));
  }
  return h("div", { class: "home-view", dataset: { viewId: view.id } }, blocks(view.blocks, { surface: "home", ...ctx }));
}

/** Chips for an assistant thread's suggested prompts; `pick(prompt)` sends one. */
export function promptChips(prompts, pick) {
  const chips = prompts.map((prompt) =>
    h("button", { type: "button", class: "chip prompt", title: prompt.message, onclick: () => pick(prompt) }, prompt.title || prompt.message)
  );
  return h("div", { class: "chips" }, h("span", { class: "chips-label" }, "Try asking:"), chips);
}

/** `/agent pending` -> {command: "/agent", text: "pending"}; null when the text is no slash command. */
export function parseCommand(text) {
  const match = /^\/([a-z0-9_-]+)(?:\s+([\s\S]*))?$/i.exec(text.trim());
  return match ? { command: `/${match[1].toLowerCase()}`, text: (match[2] || "").trim() } : null;
}

/** What the composer's hint says while a slash command is typed. */
export const COMMAND_HINT = "Slash command: /agent help · /agent pending · /agent cancel · Enter to run";

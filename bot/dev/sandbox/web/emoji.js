// Emoji drawn as small SVG pictures, shipped with the page: no emoji font, no network.
// `decorateEmoji(root)` wraps each emoji the page knows in a <span class="emoji"> whose text stays the emoji
// (so copying, searching and tests see the same text) but is transparent, with the picture as its background.

const Y = "#ffcc4d"; // yellow
const O = "#f4900c"; // orange
const R = "#dd2e44"; // red
const G = "#77b255"; // green
const B = "#3b88c3"; // blue
const D = "#31373d"; // dark
const L = "#ccd6dd"; // light grey
const W = "#ffffff";

const svg = (body) => `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 36 36">${body}</svg>`;
const circle = (fill) => `<circle cx="18" cy="18" r="16" fill="${fill}"/>`;
const tile = (fill) => `<rect x="2" y="2" width="32" height="32" rx="6" fill="${fill}"/>`;
const glyph = (text, fill = W, size = 22, y = 26) =>
  `<text x="18" y="${y}" font-family="DejaVu Sans,Arial,sans-serif" font-weight="bold" font-size="${size}" text-anchor="middle" fill="${fill}">${text}</text>`;
const check = (stroke, width = 5) => `<path d="M9 19l6 6 12-14" fill="none" stroke="${stroke}" stroke-width="${width}" stroke-linecap="round" stroke-linejoin="round"/>`;
const cross = (stroke, width = 5) => `<path d="M10 10l16 16M26 10L10 26" stroke="${stroke}" stroke-width="${width}" stroke-linecap="round"/>`;
const hand = `<path d="M11 30c-3-3-5-8-5-12 0-2 3-2 4 0l2 4V7c0-2 3-2 3 0v9-12c0-2 3-2 3 0v12-10c0-2 3-2 3 0v11-7c0-2 3-2 3 0v13c0 5-2 8-5 10z" fill="${Y}" stroke="#c1694f" stroke-width="1.2" stroke-linejoin="round"/>`;
const cloud = (fill = L) => `<path d="M9 25a6 6 0 0 1 1-12 8 8 0 0 1 15-2 7 7 0 0 1 2 14z" fill="${fill}"/>`;
const envelope = `<rect x="3" y="8" width="30" height="21" rx="2" fill="${L}"/><path d="M3 10l15 11 15-11" fill="none" stroke="#99aab5" stroke-width="2"/>`;
const arrows = `${tile(B)}<path d="M11 16a8 8 0 0 1 14-4M25 20a8 8 0 0 1-14 4" fill="none" stroke="${W}" stroke-width="3" stroke-linecap="round"/><path d="M26 7v6h-6zM10 29v-6h6z" fill="${W}"/>`;
const clock = `${circle(L)}<circle cx="18" cy="18" r="13" fill="${W}"/><path d="M18 9v9h7" fill="none" stroke="${D}" stroke-width="2.5" stroke-linecap="round"/>`;
const hourglass = (sand) =>
  `<rect x="7" y="3" width="22" height="4" rx="1" fill="#a0041e"/><rect x="7" y="29" width="22" height="4" rx="1" fill="#a0041e"/><path d="M10 7h16c0 6-6 8-6 11s6 5 6 11H10c0-6 6-8 6-11s-6-5-6-11z" fill="#e1e8ed" stroke="#99aab5"/>${sand}`;
const thumb = `<path d="M6 16h6v16H6zM13 16l6-11c3 0 4 2 3 5l-1 5h8c2 0 3 2 3 3l-2 11c0 2-2 3-3 3H13z" fill="${Y}" stroke="#c1694f" stroke-width="1.2" stroke-linejoin="round"/>`;

const PICTURES = {
  "🤖": `<rect x="5" y="10" width="26" height="20" rx="5" fill="#99aab5"/><rect x="8" y="13" width="20" height="11" rx="3" fill="${D}"/><circle cx="13" cy="18.5" r="2.5" fill="#55acee"/><circle cx="23" cy="18.5" r="2.5" fill="#55acee"/><path d="M18 10V5" stroke="#66757f" stroke-width="2"/><circle cx="18" cy="4" r="2.5" fill="${R}"/><rect x="13" y="26" width="10" height="2" rx="1" fill="${D}"/>`,
  "⏳": hourglass(`<path d="M13 9h10l-5 6zM18 22l6 6H12z" fill="${O}"/>`),
  "⌛": hourglass(`<path d="M18 21l6 7H12z" fill="${O}"/>`),
  "👁": `<path d="M2 18c6-9 26-9 32 0-6 9-26 9-32 0z" fill="${W}" stroke="${D}" stroke-width="2"/><circle cx="18" cy="18" r="6" fill="#4b7a2b"/><circle cx="18" cy="18" r="3" fill="${D}"/>`,
  "👀": `<ellipse cx="11" cy="18" rx="7" ry="10" fill="${W}" stroke="${D}" stroke-width="1.5"/><ellipse cx="25" cy="18" rx="7" ry="10" fill="${W}" stroke="${D}" stroke-width="1.5"/><circle cx="13" cy="20" r="3.5" fill="${D}"/><circle cx="27" cy="20" r="3.5" fill="${D}"/>`,
  "💬": `<path d="M4 7h28v18H14l-7 6v-6H4z" fill="${W}" stroke="${B}" stroke-width="2.5" stroke-linejoin="round"/>`,
  "💭": `<ellipse cx="19" cy="14" rx="14" ry="10" fill="${W}" stroke="#99aab5" stroke-width="2"/><circle cx="9" cy="28" r="3" fill="${W}" stroke="#99aab5" stroke-width="1.5"/><circle cx="5" cy="33" r="1.8" fill="${W}" stroke="#99aab5"/>`,
  "⚠": `<path d="M18 3L34 32H2z" fill="${Y}" stroke="${O}" stroke-width="2" stroke-linejoin="round"/><rect x="16.3" y="12" width="3.4" height="11" rx="1.5" fill="${D}"/><circle cx="18" cy="27.5" r="2" fill="${D}"/>`,
  "✅": `${tile(G)}${check(W)}`,
  "✔": check(D, 6),
  "☑": `<rect x="4" y="4" width="28" height="28" rx="3" fill="${W}" stroke="${D}" stroke-width="2"/>${check(B)}`,
  "❌": cross(R, 6),
  "✖": cross(D, 6),
  "🙋": hand,
  "✋": hand,
  "👋": hand,
  "🆘": `${tile(R)}${glyph("SOS", W, 12, 23)}`,
  "🛡": `<path d="M18 3l13 5c0 13-5 21-13 25C10 29 5 21 5 8z" fill="${B}"/><path d="M18 7l9 3c0 10-4 16-9 19z" fill="#55acee"/>`,
  "✂": `<circle cx="9" cy="27" r="4.5" fill="none" stroke="${R}" stroke-width="2.5"/><circle cx="27" cy="27" r="4.5" fill="none" stroke="${R}" stroke-width="2.5"/><path d="M12 24L26 4M24 24L10 4" stroke="#99aab5" stroke-width="2.5" stroke-linecap="round"/>`,
  "🔁": arrows,
  "🔄": arrows,
  "🔃": arrows,
  "✏": `<path d="M5 31l2-8L25 5l6 6-18 18z" fill="${Y}" stroke="#c1694f" stroke-width="1.2"/><path d="M25 5l6 6 2-2-6-6z" fill="#ea596e"/><path d="M5 31l2-8 6 6z" fill="${D}"/>`,
  "📝": `<rect x="5" y="3" width="22" height="30" rx="2" fill="${W}" stroke="#99aab5" stroke-width="1.5"/><path d="M9 10h14M9 15h14M9 20h9" stroke="#99aab5" stroke-width="1.5"/><path d="M17 30l1-5 12-12 4 4-12 12z" fill="${Y}" stroke="#c1694f"/>`,
  "📄": `<path d="M7 3h15l7 7v23H7z" fill="${W}" stroke="#99aab5" stroke-width="1.5"/><path d="M22 3v7h7" fill="${L}" stroke="#99aab5" stroke-width="1.5"/><path d="M11 15h14M11 20h14M11 25h10" stroke="#99aab5" stroke-width="1.5"/>`,
  "📋": `<rect x="6" y="5" width="24" height="28" rx="2" fill="#c1694f"/><rect x="9" y="8" width="18" height="22" fill="${W}"/><rect x="13" y="3" width="10" height="5" rx="1.5" fill="#99aab5"/><path d="M12 15h12M12 20h12M12 25h8" stroke="#99aab5" stroke-width="1.5"/>`,
  "⛔": `${circle(R)}<rect x="8" y="15" width="20" height="6" rx="1" fill="${W}"/>`,
  "🚫": `<circle cx="18" cy="18" r="14" fill="none" stroke="${R}" stroke-width="4"/><path d="M8 8l20 20" stroke="${R}" stroke-width="4"/>`,
  "🛑": `<path d="M12 3h12l9 9v12l-9 9H12l-9-9V12z" fill="${R}"/>${glyph("STOP", W, 9, 21.5)}`,
  "📬": `<path d="M8 12a6 6 0 0 1 12 0v16H4V12a4 4 0 0 1 4-4z" fill="${B}"/><path d="M8 8h18a6 6 0 0 1 6 6v14H20V14a6 6 0 0 0-6-6z" fill="#55acee"/><rect x="10" y="3" width="12" height="8" fill="${W}" stroke="#99aab5"/><path d="M18 28v6" stroke="#c1694f" stroke-width="3"/>`,
  "📫": `<path d="M8 8h18a6 6 0 0 1 6 6v14H4V14a6 6 0 0 1 4-6z" fill="${B}"/><path d="M26 4v8" stroke="${R}" stroke-width="2"/><path d="M26 4h5v3h-5z" fill="${R}"/><path d="M18 28v6" stroke="#c1694f" stroke-width="3"/>`,
  "📧": `${envelope}<text x="18" y="27" font-family="DejaVu Sans,sans-serif" font-size="11" font-weight="bold" text-anchor="middle" fill="${R}">@</text>`,
  "✉": envelope,
  "📨": `${envelope}<path d="M1 5h8M0 9h6" stroke="${B}" stroke-width="2"/>`,
  "📥": `<path d="M4 20h8l2 4h8l2-4h8v12H4z" fill="${B}"/><path d="M18 3v14m-6-5l6 6 6-6" fill="none" stroke="${G}" stroke-width="3"/>`,
  "📤": `<path d="M4 20h8l2 4h8l2-4h8v12H4z" fill="${B}"/><path d="M18 18V4m-6 5l6-6 6 6" fill="none" stroke="${G}" stroke-width="3"/>`,
  "↩": `${tile(B)}<path d="M26 10v6a4 4 0 0 1-4 4H11" fill="none" stroke="${W}" stroke-width="3.5"/><path d="M13 14l-6 6 6 6z" fill="${W}"/>`,
  "➡": `${tile(B)}<path d="M8 18h15" stroke="${W}" stroke-width="4"/><path d="M21 10l9 8-9 8z" fill="${W}"/>`,
  "⬅": `${tile(B)}<path d="M13 18h15" stroke="${W}" stroke-width="4"/><path d="M15 10l-9 8 9 8z" fill="${W}"/>`,
  "⬆": `${tile(B)}<path d="M18 13v15" stroke="${W}" stroke-width="4"/><path d="M10 15l8-9 8 9z" fill="${W}"/>`,
  "⬇": `${tile(B)}<path d="M18 8v15" stroke="${W}" stroke-width="4"/><path d="M10 21l8 9 8-9z" fill="${W}"/>`,
  "➖": `<rect x="5" y="15" width="26" height="6" rx="2" fill="${D}"/>`,
  "➕": `<path d="M18 5v26M5 18h26" stroke="${D}" stroke-width="6" stroke-linecap="round"/>`,
  "❓": glyph("?", R, 32, 30),
  "❔": glyph("?", "#99aab5", 32, 30),
  "❗": `<rect x="15" y="3" width="6" height="21" rx="3" fill="${R}"/><circle cx="18" cy="30" r="3.5" fill="${R}"/>`,
  "‼": `<rect x="8" y="3" width="6" height="21" rx="3" fill="${R}"/><circle cx="11" cy="30" r="3.5" fill="${R}"/><rect x="22" y="3" width="6" height="21" rx="3" fill="${R}"/><circle cx="25" cy="30" r="3.5" fill="${R}"/>`,
  "⏰": `<circle cx="8" cy="7" r="5" fill="${R}"/><circle cx="28" cy="7" r="5" fill="${R}"/><circle cx="18" cy="20" r="14" fill="${R}"/><circle cx="18" cy="20" r="11" fill="${W}"/><path d="M18 12v8h6" fill="none" stroke="${D}" stroke-width="2.5" stroke-linecap="round"/>`,
  "🕒": clock,
  "⏱": clock,
  "📊": `<rect x="3" y="3" width="30" height="30" rx="3" fill="${W}" stroke="#99aab5" stroke-width="1.5"/><rect x="8" y="18" width="5" height="11" fill="${R}"/><rect x="15.5" y="9" width="5" height="20" fill="${B}"/><rect x="23" y="14" width="5" height="15" fill="${G}"/>`,
  "📈": `<rect x="3" y="3" width="30" height="30" rx="3" fill="${W}" stroke="#99aab5" stroke-width="1.5"/><path d="M7 27l8-8 5 4 10-12" fill="none" stroke="${R}" stroke-width="3" stroke-linejoin="round"/>`,
  "🟢": circle("#78b159"),
  "🔴": circle(R),
  "🟡": circle("#fdcb58"),
  "🔵": circle("#55acee"),
  "🟠": circle(O),
  "🟣": circle("#aa8ed6"),
  "⚪": `<circle cx="18" cy="18" r="15" fill="${W}" stroke="#99aab5" stroke-width="2"/>`,
  "⚫": circle(D),
  "🎉": `<path d="M4 33l7-21 14 14z" fill="${O}"/><path d="M11 12l14 14" stroke="${Y}" stroke-width="2"/><circle cx="24" cy="8" r="2" fill="${R}"/><circle cx="30" cy="15" r="2" fill="${B}"/><circle cx="19" cy="5" r="1.6" fill="${G}"/><path d="M27 4l2 3M32 21l-3 1M22 13l4-6" stroke="#aa8ed6" stroke-width="2" stroke-linecap="round"/>`,
  "👍": thumb,
  "👎": `<g transform="rotate(180 18 18)">${thumb}</g>`,
  "✨": `<path d="M14 4l3 9 9 3-9 3-3 9-3-9-9-3 9-3z" fill="${Y}"/><path d="M28 20l1.5 4.5L34 26l-4.5 1.5L28 32l-1.5-4.5L22 26l4.5-1.5z" fill="${Y}"/><path d="M28 2l1 3 3 1-3 1-1 3-1-3-3-1 3-1z" fill="${Y}"/>`,
  "☀": `<circle cx="18" cy="18" r="8" fill="${Y}"/><path d="M18 2v6M18 28v6M2 18h6M28 18h6M6.7 6.7l4.2 4.2M25.1 25.1l4.2 4.2M6.7 29.3l4.2-4.2M25.1 10.9l4.2-4.2" stroke="${O}" stroke-width="2.5" stroke-linecap="round"/>`,
  "☁": cloud(),
  "🌧": `${cloud()}<path d="M12 28l-2 5M19 28l-2 5M26 28l-2 5" stroke="#5dadec" stroke-width="2.5" stroke-linecap="round"/>`,
  "⛅": `<circle cx="13" cy="12" r="8" fill="${Y}"/>${cloud()}`,
  "💡": `<path d="M18 3a11 11 0 0 1 6 20v3H12v-3A11 11 0 0 1 18 3z" fill="${Y}"/><rect x="12" y="27" width="12" height="4" rx="1" fill="#99aab5"/><rect x="14" y="31" width="8" height="3" rx="1" fill="#66757f"/>`,
  "⚙": `<circle cx="18" cy="18" r="11" fill="none" stroke="#66757f" stroke-width="7" stroke-dasharray="5.8 3"/><circle cx="18" cy="18" r="9" fill="#66757f"/><circle cx="18" cy="18" r="4" fill="${W}"/>`,
  "🔒": `<path d="M11 16v-5a7 7 0 0 1 14 0v5" fill="none" stroke="#99aab5" stroke-width="3.5"/><rect x="7" y="16" width="22" height="17" rx="3" fill="${Y}"/><circle cx="18" cy="24" r="2.5" fill="${D}"/>`,
  "🔑": `<circle cx="11" cy="18" r="7" fill="none" stroke="${Y}" stroke-width="4"/><path d="M18 18h15M28 18v6M32 18v4" stroke="${Y}" stroke-width="4"/>`,
  "🔔": `<path d="M18 4a9 9 0 0 1 9 9v8l4 5H5l4-5v-8a9 9 0 0 1 9-9z" fill="${Y}"/><circle cx="18" cy="30" r="3.5" fill="${O}"/>`,
  "🔗": `<rect x="3" y="13" width="17" height="10" rx="5" fill="none" stroke="#8899a6" stroke-width="3.5"/><rect x="16" y="13" width="17" height="10" rx="5" fill="none" stroke="#8899a6" stroke-width="3.5"/>`,
  "📅": `<rect x="4" y="6" width="28" height="26" rx="3" fill="${W}" stroke="#99aab5" stroke-width="1.5"/><path d="M4 9a3 3 0 0 1 3-3h22a3 3 0 0 1 3 3v5H4z" fill="${R}"/>${glyph("17", D, 12, 28)}`,
  "🗓": `<rect x="4" y="6" width="28" height="26" rx="3" fill="${W}" stroke="#99aab5" stroke-width="1.5"/><path d="M4 9a3 3 0 0 1 3-3h22a3 3 0 0 1 3 3v5H4z" fill="${R}"/>${glyph("17", D, 12, 28)}`,
  "⭐": `<path d="M18 3l4.5 9.5 10.5 1.5-7.6 7.3 1.8 10.4L18 26.8l-9.2 4.9 1.8-10.4L3 14l10.5-1.5z" fill="${Y}"/>`,
  "❤": `<path d="M18 32C4 22 2 15 5 9c3-5 10-5 13 1 3-6 10-6 13-1 3 6 1 13-13 23z" fill="${R}"/>`,
  "🔥": `<path d="M18 34c-8 0-12-6-10-13 1-4 4-6 4-10 4 2 5 6 5 8 2-3 2-8 0-15 8 4 13 12 12 19-1 7-5 11-11 11z" fill="${O}"/><path d="M18 34c-4 0-6-3-5-6 1-2 3-3 3-6 4 2 7 5 7 8s-2 4-5 4z" fill="${Y}"/>`,
  "🚀": `<path d="M22 4c6-2 10-2 10-2s0 4-2 10L18 24l-6-6z" fill="${L}"/><circle cx="23" cy="13" r="3" fill="${B}"/><path d="M12 18l-7 1 5-7 7-1zM18 24l-1 7 7-5 1-7z" fill="${R}"/><path d="M11 25c-3 1-5 5-6 6 1-1 5-3 6-6z" fill="${O}" stroke="${O}" stroke-width="3"/>`,
  "👤": `<circle cx="18" cy="12" r="7" fill="#66757f"/><path d="M4 34c0-9 6-13 14-13s14 4 14 13z" fill="#66757f"/>`,
  "👥": `<circle cx="13" cy="12" r="6" fill="#66757f"/><path d="M1 32c0-8 5-11 12-11s12 3 12 11z" fill="#66757f"/><circle cx="24" cy="10" r="6" fill="#99aab5"/><path d="M24 19c7 0 11 3 11 11h-8c0-5-2-8-6-10z" fill="#99aab5"/>`,
  "🔍": `<circle cx="14" cy="14" r="9" fill="#bbddf5" stroke="#66757f" stroke-width="3.5"/><path d="M21 21l11 11" stroke="#66757f" stroke-width="5" stroke-linecap="round"/>`,
  "🔎": `<circle cx="22" cy="14" r="9" fill="#bbddf5" stroke="#66757f" stroke-width="3.5"/><path d="M15 21L4 32" stroke="#66757f" stroke-width="5" stroke-linecap="round"/>`,
  "🤔": `${circle(Y)}<circle cx="12" cy="14" r="2.2" fill="#664500"/><circle cx="24" cy="12" r="2.2" fill="#664500"/><path d="M13 24h10" stroke="#664500" stroke-width="2.5" stroke-linecap="round"/><path d="M8 32c2-4 6-5 9-4" fill="none" stroke="#c1694f" stroke-width="3" stroke-linecap="round"/>`,
  "🙂": `${circle(Y)}<circle cx="12" cy="14" r="2.2" fill="#664500"/><circle cx="24" cy="14" r="2.2" fill="#664500"/><path d="M11 22c4 4 10 4 14 0" fill="none" stroke="#664500" stroke-width="2.5" stroke-linecap="round"/>`,
  "😄": `${circle(Y)}<path d="M9 14q3-3 6 0M21 14q3-3 6 0" fill="none" stroke="#664500" stroke-width="2.2" stroke-linecap="round"/><path d="M9 20h18c0 6-4 9-9 9s-9-3-9-9z" fill="#664500"/>`,
  "📦": `<path d="M4 11l14-6 14 6v16l-14 6-14-6z" fill="#c1694f"/><path d="M4 11l14 6 14-6M18 17v16" fill="none" stroke="#a0522d" stroke-width="1.5"/>`,
  "🌐": `<circle cx="18" cy="18" r="15" fill="#55acee"/><path d="M3 18h30M18 3c-8 8-8 22 0 30M18 3c8 8 8 22 0 30M6 10h24M6 26h24" fill="none" stroke="${W}" stroke-width="1.5"/>`,
  "🚨": `<path d="M8 28V18a10 10 0 0 1 20 0v10z" fill="${R}"/><rect x="5" y="28" width="26" height="5" rx="1" fill="#66757f"/><path d="M18 2v4M5 8l3 3M31 8l-3 3" stroke="${O}" stroke-width="2.5" stroke-linecap="round"/>`,
  "🛠": `<path d="M6 30L22 14" stroke="#99aab5" stroke-width="4" stroke-linecap="round"/><path d="M20 6a7 7 0 0 0 10 10l-4-1-5-5z" fill="#66757f"/><path d="M30 30L12 12" stroke="#c1694f" stroke-width="4" stroke-linecap="round"/><rect x="4" y="5" width="10" height="6" rx="1" transform="rotate(45 9 8)" fill="#66757f"/>`,
  "🔧": `<path d="M8 30L24 14" stroke="#99aab5" stroke-width="5" stroke-linecap="round"/><path d="M22 4a8 8 0 0 0 10 10l-5-1-4-4z" fill="#99aab5"/>`,
  "🖼": `<rect x="3" y="5" width="30" height="26" rx="2" fill="#c1694f"/><rect x="7" y="9" width="22" height="18" fill="#88c9f9"/><path d="M7 27l8-9 5 5 3-3 6 7z" fill="${G}"/><circle cx="24" cy="14" r="2.5" fill="${Y}"/>`,
  "🎬": `<rect x="3" y="14" width="30" height="18" rx="2" fill="${D}"/><path d="M3 8l29-5 1 7-29 5z" fill="${D}"/><path d="M8 7l5 6M16 5.6l5 6M24 4.2l5 6" stroke="${W}" stroke-width="2.5"/>`,
  "🔨": `<path d="M10 30L24 12" stroke="#c1694f" stroke-width="4" stroke-linecap="round"/><rect x="16" y="4" width="16" height="8" rx="1" transform="rotate(38 24 8)" fill="#66757f"/>`,
};

const PATTERN = new RegExp(`(?:${Object.keys(PICTURES).sort((a, b) => b.length - a.length).join("|")})\uFE0F?`, "gu");
const URLS = new Map(Object.entries(PICTURES).map(([char, body]) => [char, `url("data:image/svg+xml,${encodeURIComponent(svg(body))}")`]));
const SKIP = new Set(["TEXTAREA", "SCRIPT", "STYLE", "OPTION", "SELECT", "TITLE", "INPUT"]);

/** The emoji the page can draw (for tests and the docs). */
export const DRAWN = Object.keys(PICTURES);

function pictureOf(text) {
  return URLS.get(text.replace(/\uFE0F/g, ""));
}

/** Wrap every emoji the page knows under `root` in a span showing its picture; idempotent. */
export function decorateEmoji(root) {
  if (!root) return;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      const parent = node.parentElement;
      if (!parent || SKIP.has(parent.tagName) || parent.classList.contains("emoji")) return NodeFilter.FILTER_REJECT;
      PATTERN.lastIndex = 0;
      return PATTERN.test(node.data) ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT;
    },
  });
  const found = [];
  while (walker.nextNode()) found.push(walker.currentNode);
  for (const node of found) {
    const parts = [];
    let at = 0;
    PATTERN.lastIndex = 0;
    for (const match of node.data.matchAll(PATTERN)) {
      if (match.index > at) parts.push(document.createTextNode(node.data.slice(at, match.index)));
      const span = document.createElement("span");
      span.className = "emoji";
      span.style.backgroundImage = pictureOf(match[0]);
      span.textContent = match[0];
      parts.push(span);
      at = match.index + match[0].length;
    }
    if (at < node.data.length) parts.push(document.createTextNode(node.data.slice(at)));
    node.replaceWith(...parts);
  }
}

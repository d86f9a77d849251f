// The chat page and OBS overlay of one room: history, then live events over
// Server-Sent Events. Every piece of chat becomes DOM nodes built here (text
// nodes, links checked to be http(s), images for emotes): never HTML.
"use strict";
(function () {
  const body = document.body;
  const room = body.dataset.room;
  const q = new URLSearchParams(location.search);
  const overlay = q.get("overlay") === "1";
  const fadeMs = parseDuration(q.get("fade")) || 0;
  const platforms = q.get("platforms") ? new Set(q.get("platforms").split(",").map(s => s.trim().toLowerCase()).filter(Boolean)) : null;
  const hideBots = q.get("hide_bots") === "1";
  const hideCommands = q.get("hide_commands") === "1";
  const showBadges = q.get("badges") !== "0";
  const showNotices = q.get("notices") !== "0";
  // Reactions under the messages: on the chat page unless ?reactions=0, on
  // the overlay only with ?reactions=1.
  const showReactions = overlay ? q.get("reactions") === "1" : q.get("reactions") !== "0";
  const max = Math.min(Math.max(parseInt(q.get("max"), 10) || 50, 1), 500);
  // The room's moderation hold, unless this page asks for another (?hold=0).
  const askedHold = q.has("hold") ? parseDuration(q.get("hold")) : null;
  const hold = Math.min(askedHold !== null ? askedHold : (Number(body.dataset.hold) || 0), 600000);

  if (overlay) body.classList.add("overlay");
  if (q.get("theme") === "light") body.classList.add("light");
  if (q.get("animate") === "0") body.classList.add("still");
  const size = parseFloat(q.get("size"));
  if (size >= 0.5 && size <= 4) document.documentElement.style.setProperty("--scale", String(size));
  // A font installed where the page runs, by name only: letters, digits,
  // spaces and dashes, so that it can never be more than a name.
  const font = (q.get("font") || "").trim();
  if (/^[A-Za-z0-9 _-]{1,64}$/.test(font)) body.style.fontFamily = '"' + font + '", system-ui, sans-serif';

  const log = document.getElementById("log");
  const dot = document.getElementById("dot");
  const byId = new Map();       // event id -> row shown
  const authors = new Map();    // event id -> author name (for replies)
  const reactions = new Map();  // event id -> emoji -> platform -> Set of who reacted
  let held = [];                // events waiting out the hold, in stream order: {ev, due}
  let holdTimer = null;

  function parseDuration(s) {
    if (s === null || s === undefined) return null;
    const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(String(s).trim());
    if (!m) return null;
    return parseFloat(m[1]) * ({ ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] || "s"]);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function safeUrl(u) {
    try {
      const url = new URL(u);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (_) { return null; }
  }

  function link(href, label) {
    const a = el("a", null, label);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    return a;
  }

  function emoteImg(name, url, zeroWidth) {
    const img = el("img", zeroWidth ? "emote zw" : "emote");
    img.src = url; img.alt = name; img.title = name;
    return img;
  }

  // Text with emotes and bare links, as DOM nodes. A zero-width emote (7TV,
  // BTTV) goes over the emote before it, as those platforms draw it.
  function words(text, emotes, into) {
    let lastEmote = null;    // the emote (or stack) a zero-width one may join
    let gap = null;          // the whitespace since it
    for (const p of text.split(/(\s+)/)) {
      if (!p) continue;
      if (/^\s+$/.test(p)) {
        gap = document.createTextNode(p);
        into.appendChild(gap);
        continue;
      }
      const emote = emotes.get(p);
      if (emote && emote.zeroWidth && lastEmote) {
        if (gap) { gap.remove(); gap = null; }
        if (!lastEmote.classList.contains("stack")) {
          const stack = el("span", "stack");
          lastEmote.replaceWith(stack);
          stack.appendChild(lastEmote);
          lastEmote = stack;
        }
        lastEmote.appendChild(emoteImg(p, emote.url, true));
        continue;
      }
      gap = null;
      if (emote) {
        lastEmote = emoteImg(p, emote.url, false);
        into.appendChild(lastEmote);
        continue;
      }
      lastEmote = null;
      const url = /^https?:\/\/\S+$/.test(p) ? safeUrl(p) : null;
      into.appendChild(url ? link(url, p) : document.createTextNode(p));
    }
  }

  // The common markup (bold, italic, code, links, backslash escapes) as DOM nodes.
  function markup(src, emotes, into) {
    let buf = "";
    const flush = () => { if (buf) { words(buf, emotes, into); buf = ""; } };
    for (let i = 0; i < src.length; ) {
      const c = src[i];
      if (c === "\\" && i + 1 < src.length && "\\*_`[]~".includes(src[i + 1])) { buf += src[i + 1]; i += 2; continue; }
      if (c === "`") {
        const end = src.indexOf("`", i + 1);
        if (end > i) { flush(); into.appendChild(el("code", null, src.slice(i + 1, end))); i = end + 1; continue; }
      }
      if (src.startsWith("**", i)) {
        const end = src.indexOf("**", i + 2);
        if (end > i + 2) { flush(); const b = el("strong"); markup(src.slice(i + 2, end), emotes, b); into.appendChild(b); i = end + 2; continue; }
      }
      if ((c === "*" || c === "_") && !/\w/.test(src[i - 1] || "")) {
        const end = src.indexOf(c, i + 1);
        if (end > i + 1 && !/\w/.test(src[end + 1] || "")) { flush(); const e = el("em"); markup(src.slice(i + 1, end), emotes, e); into.appendChild(e); i = end + 1; continue; }
      }
      if (c === "[") {
        const m = /^\[([^\]]*)\]\((\S+?)\)/.exec(src.slice(i));
        const href = m && safeUrl(m[2]);
        if (href) { flush(); into.appendChild(link(href, m[1] || href)); i += m[0].length; continue; }
      }
      buf += c; i += 1;
    }
    flush();
  }

  function emoteMap(ev) {
    const m = new Map();
    for (const e of ev.emotes || []) {
      const url = safeUrl(e.url);
      if (url && e.name) m.set(e.name, { url, zeroWidth: e.zero_width === true });
    }
    return m;
  }

  // Badges as small built-in icons (nothing fetched): a coloured tile with a
  // white glyph drawn on a 16×16 grid.
  const SVG = "http://www.w3.org/2000/svg";
  const BADGES = {
    broadcaster: ["#e91916", "M3 5.5h6.5v5H3z M10 7.2l3-1.7v5l-3-1.7z"],
    moderator: ["#00ad03", "M12.8 2.2l1 1-6 6.1-1-1z M4.6 8.1l3.3 3.3-.9.9-3.3-3.3z M4.3 10.8l.9.9-2 2-.9-.9z"],
    vip: ["#e005b9", "M8 3l4.8 4.1L8 13 3.2 7.1z"],
    subscriber: ["#8205b4", "M8 2.5l1.7 3.5 3.8.5-2.8 2.6.7 3.8L8 11.1l-3.4 1.8.7-3.8-2.8-2.6 3.8-.5z"],
    founder: ["#c98a00", "M3 11.2h10v1.6H3z M3 10.2 2.5 5l3 2.6L8 3.8l2.5 3.8 3-2.6-.5 5.2z"],
    staff: ["#1f69ff", "M10.6 2.6a3.2 3.2 0 0 0-2.9 4.2L2.6 11.9l1.5 1.5 5.1-5.1a3.2 3.2 0 0 0 4.2-2.9l-1.9 1-1.6-.6-.6-1.6z"],
    bot: ["#4a5568", "M4 5.5h8v6.5H4z M7.5 2.8h1v2.7h-1z M5.6 7.4v1.6h1.6V7.4z M8.8 7.4v1.6h1.6V7.4z M6 10.3h4v.8H6z"],
  };

  function badge(name) {
    const def = BADGES[name];
    if (!def) return null;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", name);
    svg.dataset.badge = name;
    const title = document.createElementNS(SVG, "title");
    title.textContent = name;
    const tile = document.createElementNS(SVG, "rect");
    tile.setAttribute("width", "16"); tile.setAttribute("height", "16"); tile.setAttribute("rx", "3");
    tile.setAttribute("fill", def[0]);
    const glyph = document.createElementNS(SVG, "path");
    glyph.setAttribute("d", def[1]);
    glyph.setAttribute("fill", "#fff");
    glyph.setAttribute("fill-rule", "evenodd");
    svg.append(title, tile, glyph);
    return svg;
  }

  function plain(ev) { return (ev.text || "").replace(/\\(.)/g, "$1"); }

  // Name colours are chosen for one background: move each toward what stays
  // readable on this page's (dark, or light with theme=light).
  function readable(hex) {
    const n = parseInt(hex.slice(1), 16);
    let r = n >> 16, g = (n >> 8) & 255, b = n & 255;
    const lum = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    if (body.classList.contains("light")) {
      if (lum <= 0.5) return hex;
      const k = Math.max(0.35, 1 - (lum - 0.5) * 1.4);
      return "rgb(" + Math.round(r * k) + "," + Math.round(g * k) + "," + Math.round(b * k) + ")";
    }
    if (lum >= 0.45) return hex;
    const mix = Math.min(0.75, 0.45 - lum + 0.3);
    r = Math.round(r + (255 - r) * mix); g = Math.round(g + (255 - g) * mix); b = Math.round(b + (255 - b) * mix);
    return "rgb(" + r + "," + g + "," + b + ")";
  }

  function nameColor(ev) {
    const c = ev.author && ev.author.color;
    if (c && /^#[0-9a-fA-F]{6}$/.test(c)) return readable(c);
    const palette = ["#ff7a7a", "#7ad3ff", "#ffd27a", "#9dff7a", "#d49bff", "#ff9bd2", "#7affd7", "#ffb37a"];
    let h = 0;
    for (const ch of (ev.author && (ev.author.id || ev.author.name)) || "") h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return readable(palette[h % palette.length]);
  }

  function visible(ev) {
    if (ev.kind === "notice" && !showNotices) return false;
    if (platforms && !platforms.has(ev.source.bridge.toLowerCase())) return false;
    if (hideBots && ev.author && ev.author.bot) return false;
    if (hideCommands && plain(ev).trim().startsWith("!")) return false;
    return true;
  }

  function stickToBottom() { log.scrollTop = log.scrollHeight; }

  // A message waits out the hold (counted from its own time, as the relays
  // count it); those behind it wait for it, so the order stays the stream's.
  function add(ev) {
    if (byId.has(ev.id) || held.some(h => h.ev.id === ev.id) || !visible(ev)) return;
    const due = Date.parse(ev.ts) + hold;
    if (hold > 0 && (held.length > 0 || due > Date.now())) {
      held.push({ ev, due: isNaN(due) ? Date.now() + hold : due });
      release();
    } else {
      show(ev);
    }
  }

  function release() {
    clearTimeout(holdTimer);
    holdTimer = null;
    while (held.length > 0 && held[0].due <= Date.now()) show(held.shift().ev);
    if (held.length > 0) holdTimer = setTimeout(release, held[0].due - Date.now());
  }

  // A notice (a sub, a raid, an announcement): what it is, by type. A Shared
  // Chat notice is what it was in the channel it was sent in.
  const NOTICE_GROUPS = {
    announcement: "announcement", raid: "raid", unraid: "raid", viewermilestone: "milestone",
    bitsbadgetier: "bits", onetapgiftredeemed: "bits", charitydonation: "bits",
  };
  const ANNOUNCE_COLORS = new Set(["primary", "blue", "green", "orange", "purple"]);
  function noticeType(n) {
    const p = n.params || {};
    return String(n.type === "sharedchatnotice" && p["source-msg-id"] ? p["source-msg-id"] : n.type || "");
  }
  function noticeGroup(type) {
    if (NOTICE_GROUPS[type]) return NOTICE_GROUPS[type];
    return /sub|gift|upgrade|payforward/.test(type) ? "sub" : "other";
  }
  function noticeHead(ev, row) {
    const n = ev.notice || {};
    const type = noticeType(n);
    const group = noticeGroup(type);
    row.classList.add("event", "k-" + group);
    let line = n.system_text || type;
    if (group === "announcement") {
      const c = String((n.params || {}).color || "primary").toLowerCase();
      row.classList.add("c-" + (ANNOUNCE_COLORS.has(c) ? c : "primary"));
      line = "Announcement";
    }
    const head = el("span", "event-line");
    head.append(source(ev), el("span", "", line));
    row.appendChild(head);
  }

  function source(ev) {
    const bridge = ev.source.bridge;
    return el("span", "src b-" + bridge.replace(/[^a-z0-9_-]/gi, ""), bridge);
  }

  function show(ev) {
    const name = (ev.author && ev.author.name) || "someone";
    authors.set(ev.id, name);
    const row = el("div", "msg");
    row.dataset.id = ev.id;
    row.dataset.author = (ev.author && ev.author.id) || "";
    if (ev.kind === "notice") noticeHead(ev, row);
    if (ev.author && ev.author.first_message === true) {
      row.classList.add("first");
      row.appendChild(el("span", "first-tag", "First message"));
    }
    if (ev.reply_to) {
      const to = authors.get(ev.reply_to);
      row.appendChild(el("span", "reply", to ? "↪ replying to " + to : "↪ reply"));
    }
    const t = new Date(ev.ts);
    if (!overlay && !isNaN(t)) row.appendChild(el("span", "time", t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    // A notice names its platform in its first line.
    if (ev.kind !== "notice") row.appendChild(source(ev));
    if (showBadges && ev.author && Array.isArray(ev.author.badges)) {
      const icons = ev.author.badges.map(badge).filter(Boolean);
      if (icons.length > 0) {
        const span = el("span", "badges");
        span.append(...icons);
        row.appendChild(span);
      }
    }
    // A notice without words of the user's is its line alone.
    const said = ev.kind !== "notice" || (ev.text || "") !== "";
    const n = el("span", "name", name);
    n.style.color = nameColor(ev);
    if (said) row.appendChild(n);
    const text = el("span", "text");
    markup(ev.text || "", emoteMap(ev), text);
    for (const a of ev.attachments || []) {
      const u = safeUrl(a.url);
      if (u) { text.appendChild(document.createTextNode(" ")); text.appendChild(link(u, a.name || u)); }
    }
    if (said) row.appendChild(text);
    byId.set(ev.id, row);
    log.appendChild(row);
    drawReactions(ev.id);
    while (byId.size > max) { const first = log.querySelector(".msg"); if (!first) break; drop(first); }
    if (fadeMs > 0) setTimeout(() => { row.classList.add("gone"); setTimeout(() => drop(row), 1000); }, fadeMs);
    stickToBottom();
  }

  function drop(row) {
    if (!row.isConnected) return;
    byId.delete(row.dataset.id);
    row.remove();
  }

  function edit(ev) {
    const waiting = held.find(h => h.ev.id === ev.target);
    if (waiting) {
      waiting.ev = Object.assign({}, waiting.ev, { text: ev.text, emotes: ev.emotes });
      return;
    }
    const row = byId.get(ev.target);
    if (!row) return;
    const text = row.querySelector(".text");
    text.replaceChildren();
    markup(ev.text || "", emoteMap(ev), text);
    if (!row.querySelector(".edited")) row.appendChild(el("span", "edited", "(edited)"));
  }

  // A message deleted while it waits is never shown.
  function remove(ev) {
    const before = held.length;
    held = held.filter(h => h.ev.id !== ev.target);
    if (held.length !== before) release();
    const row = byId.get(ev.target);
    if (row) drop(row);
  }

  // Who reacted with what: counted per platform, as each platform's people did.
  function react(ev) {
    if (!showReactions || !ev.reaction || !ev.target) return;
    const emoji = String(ev.reaction.emoji || "");
    if (!emoji) return;
    if (!reactions.has(ev.target)) reactions.set(ev.target, new Map());
    const byEmoji = reactions.get(ev.target);
    // Every emoji's, on that platform (a moderator removed them all).
    if (emoji === "*" && ev.reaction.op === "remove" && !ev.author) {
      for (const byPlatform of byEmoji.values()) byPlatform.delete(ev.source.bridge);
      drawReactions(ev.target);
      return;
    }
    if (!byEmoji.has(emoji)) byEmoji.set(emoji, new Map());
    const byPlatform = byEmoji.get(emoji);
    const platform = ev.source.bridge;
    if (!byPlatform.has(platform)) byPlatform.set(platform, new Set());
    const who = byPlatform.get(platform);
    const user = ev.author ? ev.author.id : null;
    if (ev.reaction.op === "add") { if (user) who.add(user); }
    else if (user) who.delete(user);
    else who.clear();   // everyone's, a moderator cleared it
    drawReactions(ev.target);
  }

  function drawReactions(id) {
    const row = byId.get(id);
    const byEmoji = reactions.get(id);
    if (!row || !byEmoji) return;
    let box = row.querySelector(".reactions");
    if (!box) { box = el("div", "reactions"); row.appendChild(box); }
    box.replaceChildren();
    for (const [emoji, byPlatform] of byEmoji) {
      const counts = [...byPlatform].filter(([, who]) => who.size > 0);
      const total = counts.reduce((n, [, who]) => n + who.size, 0);
      if (total === 0) continue;
      const chip = el("span", "reaction");
      chip.dataset.emoji = emoji;
      chip.appendChild(el("span", "emoji", emoji));
      chip.appendChild(el("span", "count", String(total)));
      chip.appendChild(el("span", "per", counts.map(([p, who]) => p + " " + who.size).join(" · ")));
      box.appendChild(chip);
    }
    box.hidden = box.childElementCount === 0;
  }

  function parse(e) { try { return JSON.parse(e.data); } catch (_) { return null; } }

  // EventSource reconnects by itself and sends Last-Event-ID: the server resumes
  // right after the last event we saw, with no gap and no duplicate.
  const es = new EventSource("/rooms/" + encodeURIComponent(room) + "/events?last=" + max);
  es.onopen = () => { dot.classList.add("on"); dot.title = "live"; };
  es.onerror = () => { dot.classList.remove("on"); dot.title = "reconnecting"; };
  es.addEventListener("message", e => { const ev = parse(e); if (ev) add(ev); });
  es.addEventListener("notice", e => { const ev = parse(e); if (ev) add(ev); });
  es.addEventListener("edit", e => { const ev = parse(e); if (ev) edit(ev); });
  es.addEventListener("delete", e => { const ev = parse(e); if (ev) remove(ev); });
  es.addEventListener("reaction", e => { const ev = parse(e); if (ev) react(ev); });
  es.addEventListener("gap", () => { if (!overlay) log.appendChild(el("div", "notice", "Older messages are no longer available.")); });

  // The message box: the chat page only, when the server accepts messages.
  // The token lives in this tab's sessionStorage, never in the URL or a cookie.
  if (!overlay && body.dataset.send === "1") compose();

  function compose() {
    const TOKEN = "jetbridge.token", NAME = "jetbridge.name";
    const box = document.getElementById("compose");
    const tokenForm = document.getElementById("token-form");
    const sendForm = document.getElementById("send-form");
    const tokenInput = document.getElementById("token");
    const author = document.getElementById("author");
    const text = document.getElementById("text");
    const error = document.getElementById("send-error");
    box.hidden = false;
    author.value = localStorage.getItem(NAME) || "";

    function showError(msg) { error.textContent = msg; error.hidden = !msg; }
    function state() {
      const has = !!sessionStorage.getItem(TOKEN);
      tokenForm.hidden = has;
      sendForm.hidden = !has;
      (has ? text : tokenInput).focus();
    }
    tokenForm.addEventListener("submit", e => {
      e.preventDefault();
      const t = tokenInput.value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN, t);
      tokenInput.value = "";
      showError("");
      state();
    });
    document.getElementById("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN);
      showError("");
      state();
    });
    sendForm.addEventListener("submit", async e => {
      e.preventDefault();
      const words = text.value;
      if (!words.trim()) return;
      localStorage.setItem(NAME, author.value.trim());
      const payload = { text: words };
      if (author.value.trim()) payload.author = author.value.trim();
      let resp;
      try {
        resp = await fetch("/rooms/" + encodeURIComponent(room) + "/messages", {
          method: "POST",
          headers: { "Authorization": "Bearer " + sessionStorage.getItem(TOKEN), "Content-Type": "application/json" },
          body: JSON.stringify(payload),
          credentials: "omit",
        });
      } catch (_) {
        showError("Not sent: the server cannot be reached.");
        return;
      }
      if (resp.status === 201) { text.value = ""; showError(""); return; }
      let why = "";
      try { why = (await resp.json()).error || ""; } catch (_) { /* not JSON */ }
      showError("Not sent (" + resp.status + "): " + (why || resp.statusText || "refused"));
      if (resp.status === 401) { sessionStorage.removeItem(TOKEN); state(); }
    });
    state();
  }
})();

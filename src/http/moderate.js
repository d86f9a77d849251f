// The moderator's console of one room: the room live (Server-Sent Events),
// each message with "delete everywhere", "timeout" and "ban" of its author,
// and the audit trail (the room's moderation events). Every piece of chat is
// rendered as text nodes, never HTML. The token lives in this tab's
// sessionStorage, never in a URL, a cookie or the page.
"use strict";
(function () {
  const room = document.body.dataset.room;
  const TOKEN = "jetbridge.mod_token", NAME = "jetbridge.moderator";
  const messages = document.getElementById("messages");
  const audit = document.getElementById("audit");
  const notice = document.getElementById("notice");
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("token");
  const moderator = document.getElementById("moderator");
  const tokenWhy = document.getElementById("token-why");
  const forget = document.getElementById("forget");
  const dot = document.getElementById("dot");
  const rows = new Map(); // event id -> row
  const TIMEOUTS = [["1m", "1 minute"], ["10m", "10 minutes"], ["1h", "1 hour"], ["1d", "1 day"], ["7d", "1 week"]];

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function say(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function signedIn() {
    const has = !!sessionStorage.getItem(TOKEN);
    tokenForm.hidden = has;
    forget.hidden = !has;
    if (!has) tokenInput.focus();
    return has;
  }

  tokenForm.addEventListener("submit", e => {
    e.preventDefault();
    const t = tokenInput.value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN, t);
    localStorage.setItem(NAME, moderator.value.trim());
    tokenInput.value = "";
    tokenWhy.textContent = "The moderator token, to act on this room:";
    say("");
    signedIn();
  });
  forget.addEventListener("click", () => { sessionStorage.removeItem(TOKEN); signedIn(); });
  moderator.value = localStorage.getItem(NAME) || "";

  async function act(body, button) {
    if (!signedIn()) return;
    button.disabled = true;
    body.moderator = localStorage.getItem(NAME) || undefined;
    try {
      const resp = await fetch("/rooms/" + encodeURIComponent(room) + "/moderation", {
        method: "POST",
        headers: { "Authorization": "Bearer " + sessionStorage.getItem(TOKEN), "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (resp.status === 401) {
        sessionStorage.removeItem(TOKEN);
        tokenWhy.textContent = "That token was refused. The moderator token, to act on this room:";
        signedIn();
        return;
      }
      if (!resp.ok) {
        const why = await resp.json().catch(() => ({}));
        say((why && why.error) || ("refused: " + resp.status));
        return;
      }
      say("");
    } catch (_) {
      say("jetbridge could not be reached");
    } finally {
      button.disabled = false;
    }
  }

  function userOf(ev) {
    const a = ev.author || {};
    return { bridge: ev.source.bridge, id: a.id, name: a.name };
  }

  function messageRow(ev) {
    const li = el("li");
    li.dataset.id = ev.id;
    const time = new Date(ev.ts);
    li.append(el("span", "meta", time.toLocaleTimeString() + " " + ev.source.bridge));
    li.append(el("span", "who", (ev.author && ev.author.name) || "?"));
    li.append(el("span", "text", ev.text || (ev.notice && ev.notice.system_text) || ""));
    const actions = el("div", "actions");
    const del = el("button", "danger", "Delete everywhere");
    del.addEventListener("click", () => act({ action: "delete", target: ev.id }, del));
    actions.append(del);
    if (ev.author && ev.author.id && ev.source.bridge !== "web") {
      const pick = el("select");
      pick.setAttribute("aria-label", "Timeout length");
      for (const [v, label] of TIMEOUTS) {
        const o = el("option", null, label);
        o.value = v;
        pick.append(o);
      }
      const timeout = el("button", null, "Timeout");
      timeout.addEventListener("click", () => act({ action: "timeout", user: userOf(ev), duration: pick.value }, timeout));
      const ban = el("button", "danger", "Ban");
      ban.addEventListener("click", () => {
        if (confirm("Ban " + ((ev.author && ev.author.name) || "this user") + " on " + ev.source.bridge + "?")) {
          act({ action: "ban", user: userOf(ev) }, ban);
        }
      });
      actions.append(pick, timeout, ban);
    }
    li.append(actions);
    return li;
  }

  function auditRow(ev) {
    const m = ev.moderation || {};
    const li = el("li");
    li.dataset.id = ev.id;
    const who = m.actor ? m.actor.name : ({ platform: "a moderator on " + ev.source.bridge, mirror: "jetbridge (a copy was deleted on " + ev.source.bridge + ")", console: "the console" }[m.origin] || m.origin);
    let what = m.action;
    if (m.user) what += " " + m.user.name;
    if (m.duration_s) what += " for " + m.duration_s + "s";
    if (m.target) {
      // The message as the console shows it, when it is on the page.
      const row = rows.get(m.target);
      what += row ? " “" + row.querySelector(".text").textContent + "” of " + row.querySelector(".who").textContent : " " + m.target;
    }
    li.append(el("span", "meta", new Date(ev.ts).toLocaleTimeString()));
    li.append(el("span", "who", who));
    li.append(el("span", null, what));
    if (m.reason) li.append(el("div", "meta", "reason: " + m.reason));
    for (const r of m.results || []) {
      const line = el("div", r.ok ? "ok" : "fail", (r.ok ? "✓ " : "✗ ") + r.bridge + " " + r.channel + (r.error ? ": " + r.error : ""));
      li.append(line);
    }
    return li;
  }

  function handle(ev) {
    if (ev.kind === "message" || ev.kind === "notice") {
      if (rows.has(ev.id)) return;
      const row = messageRow(ev);
      rows.set(ev.id, row);
      messages.prepend(row);
      while (messages.children.length > 300) {
        const last = messages.lastElementChild;
        rows.delete(last.dataset.id);
        last.remove();
      }
    } else if (ev.kind === "edit") {
      const row = ev.target && rows.get(ev.target);
      if (row) row.querySelector(".text").textContent = ev.text;
    } else if (ev.kind === "delete") {
      const row = ev.target && rows.get(ev.target);
      if (row) {
        row.classList.add("deleted");
        for (const b of row.querySelectorAll("button.danger")) b.disabled = true;
      }
    } else if (ev.kind === "moderation") {
      audit.prepend(auditRow(ev));
    }
  }

  const source = new EventSource("/rooms/" + encodeURIComponent(room) + "/events?last=200");
  for (const kind of ["message", "notice", "edit", "delete", "moderation"]) {
    source.addEventListener(kind, e => {
      try { handle(JSON.parse(e.data)); } catch (_) { /* not an event: skipped */ }
    });
  }
  source.onopen = () => { dot.className = "on"; dot.title = "connected"; };
  source.onerror = () => { dot.className = ""; dot.title = "reconnecting"; };
  signedIn();
})();

// Shared by every page: log in (OAuth2 password flow), keep the token for this tab, call the API.
"use strict";
const Cordon = {
  token() { return sessionStorage.getItem("cordon.token"); },
  user() { return JSON.parse(sessionStorage.getItem("cordon.user") || "null"); },
  async login(username, password) {
    const body = new URLSearchParams({ username, password });
    const r = await fetch("/api/v1/auth/token", { method: "POST", body });
    const data = await r.json();
    if (!r.ok) throw new Error(data.detail || r.statusText);
    sessionStorage.setItem("cordon.token", data.access_token);
    sessionStorage.setItem("cordon.user", JSON.stringify({ username: data.username, role: data.role }));
    return data;
  },
  logout() { sessionStorage.clear(); location.reload(); },
  async api(path, options = {}) {
    const headers = Object.assign({ Authorization: "Bearer " + this.token() }, options.headers || {});
    const r = await fetch(path, Object.assign({}, options, { headers }));
    if (r.status === 401) { sessionStorage.clear(); showLogin("Your session ended; log in again."); }
    if (!r.ok) {
      let detail = r.statusText;
      try { const d = await r.json(); detail = typeof d.detail === "string" ? d.detail : JSON.stringify(d.detail); } catch (e) {}
      throw new Error(detail);
    }
    return r;
  },
  async json(path, options) { return (await this.api(path, options)).json(); },
  // Server-Sent Events over fetch, so the token travels in a header, never in a URL.
  async stream(path, onEvent, signal) {
    const r = await this.api(path, { signal, headers: { Accept: "text/event-stream" } });
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (data) onEvent(event, data);
      }
    }
  },
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

function showLogin(message) {
  document.getElementById("login").hidden = false;
  document.getElementById("main").hidden = true;
  document.getElementById("login-error").textContent = message || "";
}

function startPage(onReady) {
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await Cordon.login(form.username.value, form.password.value);
      form.password.value = "";
      enter();
    } catch (err) { showLogin(err.message); }
  });
  function enter() {
    const user = Cordon.user();
    document.getElementById("login").hidden = true;
    document.getElementById("main").hidden = false;
    document.getElementById("who").textContent = user.username + " (" + user.role + ")";
    onReady(user);
  }
  if (Cordon.token()) enter(); else showLogin("");
}

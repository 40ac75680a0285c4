// Seed 003's four workflows from the browser: log in with a pseudonym, then
// echo, routed (to a pseudonym), group (join/leave/publish) and streamed
// (ticks the server pushes). Every message both ways is a JSON object.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = scheme + "//" + location.host + "/workflows";
  let ws = null;
  let me = null;
  let ticks = 0;
  const loggedIn = ["echo-text", "echo-send", "routed-to", "routed-text", "routed-send", "group-name",
    "group-join", "group-leave", "group-text", "group-publish", "stream-subscribe", "stream-unsubscribe"];

  function setStatus(text, cls) {
    $("status").textContent = text;
    $("status").className = "status " + (cls || "");
  }

  function log(id, who, text, cls) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    if (who !== null) {
      const w = document.createElement("span");
      w.className = "who";
      w.textContent = who;
      li.appendChild(w);
    }
    li.appendChild(document.createTextNode(text));
    const list = $(id);
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function send(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    $("error").textContent = "";
    ws.send(JSON.stringify(obj));
    return true;
  }

  function showPeople(people) {
    const ul = $("people");
    const dl = $("people-list");
    ul.replaceChildren();
    dl.replaceChildren();
    for (const name of [...people].sort((a, b) => a.localeCompare(b))) {
      const li = document.createElement("li");
      li.textContent = name;
      if (name === me) li.className = "self";
      ul.appendChild(li);
      if (name !== me) {
        const opt = document.createElement("option");
        opt.value = name;
        dl.appendChild(opt);
      }
    }
  }

  function onTick(msg) {
    ticks += 1;
    $("tick-count").textContent = String(ticks);
    $("tick-last").textContent = "#" + msg.n;
    const bar = $("tick-bar");
    const span = document.createElement("span");
    span.style.height = (20 + (msg.n % 10) * 8) + "%";
    bar.appendChild(span);
    while (bar.children.length > 120) bar.removeChild(bar.firstChild);
  }

  function onMessage(ev) {
    let msg;
    try { msg = JSON.parse(String(ev.data)); } catch (e) { return; }
    switch (msg.type) {
      case "welcome":
        me = msg.name;
        $("welcome").hidden = false;
        $("welcome").textContent = "Server reply: " + msg.text;
        $("login-form").hidden = true;
        for (const id of loggedIn) $(id).disabled = false;
        $("stream-unsubscribe").disabled = true;
        showPeople(msg.people);
        break;
      case "people": showPeople(msg.people); break;
      case "echo": log("echo-log", "echo:", msg.text); break;
      case "routed": log("routed-log", msg.from + " →", msg.text); break;
      case "routed-sent": log("routed-log", "me → " + msg.to + ":", msg.text); break;
      case "group-joined": $("group-members").textContent = "member of " + msg.group + " (" + msg.members + ")";
        log("group-log", null, "joined " + msg.group + ": " + msg.members + " member(s)", "note"); break;
      case "group-left": $("group-members").textContent = "";
        log("group-log", null, "left " + msg.group, "note"); break;
      case "group": log("group-log", msg.from + " @" + msg.group + ":", msg.text); break;
      case "published": log("group-log", null, "published to " + msg.group + ": " + msg.receivers + " receiver(s)", "note"); break;
      case "subscribed": $("stream-subscribe").disabled = true; $("stream-unsubscribe").disabled = false; break;
      case "unsubscribed": $("stream-subscribe").disabled = false; $("stream-unsubscribe").disabled = true; break;
      case "tick": onTick(msg); break;
      case "error": $("error").textContent = msg.text; break;
    }
  }

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("pseudo").value.trim();
    if (!name) return;
    const login = () => send({ type: "login", name: name });
    if (ws && ws.readyState === WebSocket.OPEN) { login(); return; }
    setStatus("connecting…");
    ws = new WebSocket(url);
    ws.onopen = () => { setStatus("connected", "open"); login(); };
    ws.onmessage = onMessage;
    ws.onclose = () => {
      setStatus("disconnected", "closed");
      for (const id of loggedIn) $(id).disabled = true;
      $("login-form").hidden = false;
      $("welcome").hidden = true;
      me = null;
      ws = null;
    };
  });

  $("echo-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (send({ type: "echo", text: $("echo-text").value })) $("echo-text").value = "";
  });
  $("routed-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const to = $("routed-to").value.trim();
    const text = $("routed-text").value;
    if (!to) { $("error").textContent = "say to whom"; return; }
    if (send({ type: "routed", to: to, text: text })) $("routed-text").value = "";
  });
  $("group-join").addEventListener("click", () => send({ type: "join", group: $("group-name").value.trim() }));
  $("group-leave").addEventListener("click", () => send({ type: "leave", group: $("group-name").value.trim() }));
  $("publish-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (send({ type: "publish", group: $("group-name").value.trim(), text: $("group-text").value })) $("group-text").value = "";
  });
  $("stream-subscribe").addEventListener("click", () => send({ type: "subscribe" }));
  $("stream-unsubscribe").addEventListener("click", () => send({ type: "unsubscribe" }));
})();

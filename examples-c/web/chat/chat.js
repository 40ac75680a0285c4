// The chat page: one WebSocket to the server that served this page.
// What the server sends is JSON when it starts with '{' (joined, presence,
// chat, stats, error); anything else is plain text from a plain client.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = scheme + "//" + location.host + "/chat";
  let ws = null;
  let myName = null;

  function setStatus(text, cls) {
    $("status").textContent = text;
    $("status").className = "status " + (cls || "");
  }

  function addLine(from, text, cls) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    if (from !== null) {
      const who = document.createElement("span");
      who.className = "from";
      who.textContent = from;
      li.appendChild(who);
    }
    li.appendChild(document.createTextNode(text));
    const list = $("messages");
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function showPeople(people) {
    const ul = $("people");
    ul.replaceChildren();
    for (const name of [...people].sort((a, b) => a.localeCompare(b))) {
      const li = document.createElement("li");
      li.textContent = name;
      if (name === myName) li.className = "self";
      ul.appendChild(li);
    }
    $("people-count").textContent = String(people.length);
  }

  function showStats(s) {
    for (const key of ["connections", "messages_in", "messages_out", "bytes_in", "bytes_out", "http_requests", "subscriptions"]) {
      const td = $("stat-" + key);
      if (!td || s[key] === undefined) continue;
      const text = String(s[key]);
      td.classList.toggle("moved", td.textContent !== text && td.textContent !== "–");
      td.textContent = text;
    }
  }

  function onMessage(ev) {
    const text = String(ev.data);
    let msg = null;
    if (text.trimStart().startsWith("{")) {
      try { msg = JSON.parse(text); } catch (e) { msg = null; }
    }
    if (!msg || typeof msg.type !== "string") {
      addLine(null, text, "system");
      return;
    }
    switch (msg.type) {
      case "joined":
        myName = msg.name;
        $("me").hidden = false;
        $("me").textContent = "You are " + msg.name + ".";
        $("join-form").hidden = true;
        $("message").disabled = false;
        $("send").disabled = false;
        $("message").placeholder = "Say something to everyone";
        $("message").focus();
        showPeople(msg.people);
        addLine(null, "You joined as " + msg.name + ".", "system");
        break;
      case "presence":
        showPeople(msg.people);
        addLine(null, msg.name + (msg.event === "join" ? " joined." : " left."), "system");
        break;
      case "chat":
        addLine(msg.from, msg.text, msg.from === myName ? "mine" : "");
        break;
      case "stats":
        showStats(msg);
        break;
      case "error":
        $("error").textContent = msg.text;
        break;
    }
  }

  function connect() {
    setStatus("connecting…");
    ws = new WebSocket(url);
    ws.onopen = () => {
      // ws.extensions: what the server agreed to (permessage-deflate here).
      setStatus(ws.extensions.includes("permessage-deflate") ? "connected (compressed)" : "connected", "open");
      $("join").disabled = false;
      if (myName) ws.send(JSON.stringify({ type: "join", name: myName })); // after a reconnect
    };
    ws.onmessage = onMessage;
    ws.onclose = () => {
      setStatus("disconnected: retrying", "closed");
      $("message").disabled = true;
      $("send").disabled = true;
      $("join").disabled = true;
      setTimeout(connect, 2000);
    };
  }

  $("join-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("name").value.trim();
    if (!name || !ws || ws.readyState !== WebSocket.OPEN) return;
    $("error").textContent = "";
    ws.send(JSON.stringify({ type: "join", name: name }));
  });

  $("say-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("message").value;
    if (!text || !ws || ws.readyState !== WebSocket.OPEN) return;
    $("error").textContent = "";
    ws.send(JSON.stringify({ type: "say", text: text }));
    $("message").value = "";
  });

  $("join").disabled = true;
  connect();
})();

// Envelope: the shared helpers every page loads first. No dependencies, no build.
"use strict";

(function () {
  function cookie(name) {
    const prefix = name + "=";
    for (const part of document.cookie.split(";")) {
      const item = part.trim();
      if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
    }
    return "";
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // JSON over /api/ with the session cookie; unsafe methods carry the CSRF token.
  async function request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRFToken"] = cookie("csrftoken");
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, "NETWORK", "Could not reach the server. Check your connection.");
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      const code = error.code || "HTTP_" + response.status;
      let message = error.message || "Something went wrong (" + response.status + ").";
      if (code === "VALIDATION_ERROR") message = humanValidation(message);
      throw new ApiError(response.status, code, message);
    }
    return data;
  }

  // The API names the field for scripts ("password: This password is too
  // short."); people read the label they typed into instead.
  const FIELD_LABELS = {
    username: "Username",
    password: "Password",
    displayName: "Display name",
    name: "Game name",
    ceremonyId: "Ceremony",
    picksLockAt: "Picks lock time",
    accessCode: "Access code",
    nominationId: "Nominee",
    status: "Status",
    pin: "PIN",
  };

  function fieldLabel(path) {
    const field = path.split(".").pop();
    if (FIELD_LABELS[field]) return FIELD_LABELS[field];
    // someField / some_field -> "Some field"
    const words = field.replace(/_/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function humanValidation(message) {
    return message
      .split("; ")
      .map((part) => {
        const match = /^([A-Za-z_][\w.]*): (.*)$/s.exec(part);
        return match ? fieldLabel(match[1]) + ": " + match[2] : part;
      })
      .join(" ");
  }

  function initialData() {
    const node = document.getElementById("initial-data");
    return node ? JSON.parse(node.textContent) : {};
  }

  // Elements are built with textContent only: names never pass through HTML.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // A stable hue per player, so a player's reactions always have the same colour.
  function hue(userId) {
    let h = 2166136261;
    const s = String(userId);
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return Math.abs(h) % 360;
  }

  function signInUrl() {
    // Slashes stay readable, as in Django's own login redirect.
    const path = location.pathname + location.search;
    return "/?next=" + encodeURIComponent(path).replace(/%2F/g, "/");
  }

  // The statuses' labels and which of them take picks come from the server
  // (games.models, through templates/base.html), so the chip a page renders
  // and the one the socket updates say the same words.
  const statuses = (() => {
    const node = document.getElementById("game-statuses");
    return node ? JSON.parse(node.textContent) : { labels: {}, pickable: [] };
  })();

  function picksOpen(status) {
    return statuses.pickable.includes(status);
  }

  function setStatusChip(node, status) {
    if (!node) return;
    node.textContent = statuses.labels[status] || status;
    node.className = "status status-" + String(status).toLowerCase();
  }

  // The socket's state, worded as a connection (not as the game's status,
  // which has its own chip beside it).
  function setConnection(node, state) {
    if (!node) return;
    if (state === "live") node.dataset.wasConnected = "1";
    const again = node.dataset.wasConnected === "1";
    const labels = {
      live: "Connected",
      connecting: again ? "Reconnecting…" : "Connecting…",
      offline: "Offline",
    };
    node.setAttribute("data-connection", state);
    node.textContent = labels[state] || state;
    node.title = state === "live" ? "Connected: the board updates live" : "Connection: " + node.textContent;
  }

  // A sideways strip (the category pills) that is wider than the screen says
  // so: `data-more` on its scroller ("left", "right") shows a fade and an
  // arrow button at each edge with more. Returns the check, for the caller
  // to run after it changes the strip's content.
  function scrollHint(scroller) {
    const strip = scroller && scroller.querySelector("[data-pills]");
    if (!strip) return () => {};
    const update = () => {
      const more = [];
      if (strip.scrollLeft > 1) more.push("left");
      if (strip.scrollLeft + strip.clientWidth < strip.scrollWidth - 1) more.push("right");
      const value = more.join(" ");
      if (scroller.getAttribute("data-more") !== value) scroller.setAttribute("data-more", value);
    };
    strip.addEventListener("scroll", update, { passive: true });
    new ResizeObserver(update).observe(strip);
    for (const button of scroller.querySelectorAll("[data-pills-more]")) {
      button.addEventListener("click", () => {
        const direction = button.getAttribute("data-pills-more") === "left" ? -1 : 1;
        strip.scrollBy({ left: direction * strip.clientWidth * 0.8 });
      });
    }
    return update;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-signout]");
    if (!button) return;
    button.disabled = true;
    try {
      await request("POST", "/api/auth/logout");
    } catch (err) {
      // Signed out already (or the session expired): the home page shows sign-in either way.
    }
    location.assign("/");
  });

  window.envelope = {
    ApiError,
    request,
    initialData,
    el,
    hue,
    signInUrl,
    picksOpen,
    setStatusChip,
    setConnection,
    humanValidation,
    scrollHint,
  };
})();

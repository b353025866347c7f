// Envelope pick wizard (/games/{id}/picks): one category at a time, saves on
// tap (optimistic, reverted on error), read-only once the game is locked.
"use strict";

(function () {
  const env = window.envelope;
  const data = env.initialData();
  const game = data.game;
  let categories = data.categories;
  const picks = new Map(Object.entries(data.picks).map(([c, n]) => [Number(c), n]));
  let status = game.status;
  let index = Math.max(0, categories.findIndex((c) => !picks.has(c.id)));
  let advanceTimer = null;
  const WARN_MS = 30 * 60 * 1000;

  const $ = (selector) => document.querySelector(selector);
  const nodes = {
    pills: $("[data-pills]"),
    name: $("[data-category-name]"),
    points: $("[data-category-points]"),
    nominees: $("[data-nominees]"),
    prev: $("[data-prev]"),
    next: $("[data-next]"),
    position: $("[data-position]"),
    count: $("[data-picked-count]"),
    countdown: $("[data-countdown]"),
    saveState: $("[data-save-state]"),
    lockedNote: $("[data-locked-note]"),
  };
  const pillsHint = env.scrollHint($("[data-pills-scroller]"));

  function lockPassed() {
    return game.picksLockAt !== null && Date.parse(game.picksLockAt) <= Date.now();
  }

  function readOnly() {
    return !env.picksOpen(status) || lockPassed();
  }

  function setSaveState(state, text) {
    nodes.saveState.className = "save-state " + state;
    nodes.saveState.textContent = text;
  }

  function renderPills() {
    nodes.pills.textContent = "";
    categories.forEach((category, i) => {
      const pick = picks.get(category.id);
      const pill = env.el("button", "pill");
      pill.type = "button";
      pill.setAttribute("data-category-pill", String(category.id));
      if (i === index) pill.setAttribute("aria-current", "step");
      let mark = "";
      if (category.winnerId !== null && pick !== undefined) {
        mark = pick === category.winnerId ? "✓ " : "✗ ";
        pill.classList.add(pick === category.winnerId ? "right" : "wrong");
      } else if (pick !== undefined) {
        mark = "✓ ";
        pill.classList.add("done");
      }
      pill.textContent = mark + category.name;
      pill.addEventListener("click", () => show(i));
      nodes.pills.append(pill);
    });
    const current = nodes.pills.children[index];
    // Scroll the pill strip only (scrollIntoView could jump the whole page).
    if (current) {
      nodes.pills.scrollLeft =
        current.offsetLeft - nodes.pills.clientWidth / 2 + current.offsetWidth / 2;
    }
    pillsHint();
  }

  function renderCategory() {
    const category = categories[index];
    if (!category) return;
    nodes.name.textContent = category.name;
    nodes.points.textContent = category.points === 1 ? "1 point" : category.points + " points";
    nodes.position.textContent = index + 1 + " / " + categories.length;
    nodes.prev.disabled = index === 0;
    nodes.next.disabled = index === categories.length - 1;
    const locked = readOnly();
    const mine = picks.get(category.id);
    nodes.nominees.textContent = "";
    for (const nomination of category.nominations) {
      const card = env.el("button", "nominee");
      card.type = "button";
      card.setAttribute("data-nomination-id", String(nomination.id));
      card.setAttribute("aria-pressed", String(mine === nomination.id));
      card.disabled = locked;
      if (nomination.imageUrl && /^https?:\/\//.test(nomination.imageUrl)) {
        const image = env.el("img", "nominee-image");
        image.alt = "";
        image.loading = "lazy";
        image.src = nomination.imageUrl;
        card.append(image);
      }
      card.append(env.el("span", "nominee-title", nomination.title));
      if (nomination.subtitle) card.append(env.el("span", "nominee-subtitle", nomination.subtitle));
      if (category.winnerId === nomination.id) {
        card.classList.add("winner");
        card.append(env.el("span", "badge badge-gold", "Winner"));
      }
      if (mine === nomination.id) {
        card.classList.add("picked");
        if (category.winnerId !== null) {
          const right = mine === category.winnerId;
          card.classList.add(right ? "right" : "wrong");
          card.append(env.el("span", "badge", right ? "✓ You called it" : "✗ Your pick"));
        } else {
          card.append(env.el("span", "badge", "Your pick"));
        }
      }
      card.addEventListener("click", () => choose(category, nomination.id));
      nodes.nominees.append(card);
    }
  }

  function renderCount() {
    const done = categories.filter((c) => picks.has(c.id)).length;
    nodes.count.textContent = done + " of " + categories.length + " picked";
    nodes.count.classList.toggle("complete", done === categories.length);
  }

  function render() {
    nodes.lockedNote.hidden = !readOnly();
    renderPills();
    renderCategory();
    renderCount();
  }

  function show(i) {
    clearTimeout(advanceTimer);
    index = Math.min(Math.max(i, 0), categories.length - 1);
    render();
  }

  async function choose(category, nominationId) {
    if (readOnly()) return;
    const previous = picks.get(category.id);
    if (previous === nominationId) return;
    const wasMissing = previous === undefined;
    picks.set(category.id, nominationId);
    setSaveState("saving", "Saving…");
    render();
    try {
      await env.request("PUT", "/api/games/" + game.id + "/picks/" + category.id, {
        nominationId,
      });
      setSaveState("saved", "Saved ✓");
      // First pick in a category: move on to the next one still missing.
      if (wasMissing && categories[index] === category) {
        const nextMissing = categories.findIndex((c) => !picks.has(c.id));
        if (nextMissing !== -1) advanceTimer = setTimeout(() => show(nextMissing), 450);
      }
    } catch (err) {
      if (picks.get(category.id) === nominationId) {
        if (previous === undefined) picks.delete(category.id);
        else picks.set(category.id, previous);
      }
      if (err.code === "PICKS_LOCKED") status = "LIVE";
      setSaveState("failed", "Not saved: " + err.message);
      render();
    }
  }

  function renderCountdown() {
    if (readOnly() || !game.picksLockAt) {
      nodes.countdown.textContent = readOnly() ? "Picks locked" : "";
      nodes.countdown.classList.remove("warning");
      return;
    }
    const left = Date.parse(game.picksLockAt) - Date.now();
    const total = Math.max(0, Math.floor(left / 1000));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const pad = (n) => String(n).padStart(2, "0");
    nodes.countdown.textContent =
      "Picks lock in " + (h ? h + "h " + pad(m) + "m" : m + "m " + pad(s) + "s");
    nodes.countdown.classList.toggle("warning", left <= WARN_MS);
  }

  async function refreshWinners() {
    try {
      const ceremony = await env.request("GET", "/api/ceremonies/" + game.ceremonyId);
      categories = ceremony.categories;
      render();
    } catch (err) {
      // Keep what we have; the next update tries again.
    }
  }

  nodes.prev.addEventListener("click", () => show(index - 1));
  nodes.next.addEventListener("click", () => show(index + 1));

  let wasReadOnly = readOnly();
  setInterval(() => {
    renderCountdown();
    if (readOnly() !== wasReadOnly) {
      wasReadOnly = readOnly();
      render();
    }
  }, 1000);

  // Follow the game: lock and reveals show up without a reload.
  const socket = new window.LiveSocket({
    onEvent(frame) {
      switch (frame.type) {
        case "joined":
          if (frame.game) status = frame.game.status;
          break;
        case "game:status":
          status = frame.status;
          game.picksLockAt = frame.picksLockAt;
          break;
        case "game:completed":
          status = "COMPLETED";
          break;
        case "leaderboard:update":
          break;
        default:
          return;
      }
      wasReadOnly = readOnly();
      render();
      renderCountdown();
      // Winners come from the ceremony: after a reveal, and after a reconnect.
      if (frame.type === "leaderboard:update" || (frame.type === "joined" && readOnly())) {
        refreshWinners();
      }
    },
    onState() {},
  });
  socket.follow(game.id, game.seq);

  render();
  renderCountdown();
})();

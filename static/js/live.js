// Envelope live leaderboard page (/games/{id}/live).
//
// Performance: a `leaderboard:update` of 1,000 players must apply in well
// under a frame. Rows are kept in a Map by userId and reused; a row's text is
// written only when its value changed; rows are reordered with the fewest
// moves; offscreen rows skip layout and paint (CSS content-visibility).
// FLIP: rows have one fixed height, so old and new positions come from their
// indexes, no layout reads; only rows near the viewport are animated.
//
// TV (`?tv=1`): nobody touches the screen, so every ranked player must be
// seen without scrolling. Rows shrink to fit when they can (down to a
// readable minimum); beyond that the board shows one screenful at a time and
// turns the page by itself, `[data-tv-more]` saying how many are not shown.
"use strict";

(function () {
  const env = window.envelope;
  const data = env.initialData();
  const me = data.me;
  const gameId = data.game.id;
  const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");
  const MAX_FLOATS = 40;
  const DELTA_MS = 3000;
  const tv = document.body.classList.contains("tv");
  // A TV row is at most TV_ROW_MAX_VH and at least TV_ROW_MIN_VH of the
  // screen's height (the row's type scales with it), and a page stays up for
  // TV_PAGE_MS before the next one.
  const TV_ROW_MAX_VH = 7.2;
  const TV_ROW_MIN_VH = 4.4;
  const TV_PAGE_MS = 8000;

  const $ = (selector) => document.querySelector(selector);
  const nodes = {
    connection: $("[data-connection]"),
    status: $("[data-game-status]"),
    announceBox: $("[data-announce-box]"),
    announce: $("[data-just-announced]"),
    progress: $("[data-progress]"),
    progressBar: $("[data-progress-bar]"),
    watchersCount: $("[data-watchers-count]"),
    watchers: $("[data-watchers]"),
    podium: $("[data-podium]"),
    board: $("[data-board]"),
    boardEmpty: $("[data-board-empty]"),
    incomplete: $("[data-incomplete]"),
    floats: $("[data-floats]"),
    announcer: $("[data-announcer]"),
    error: $("[data-live-error]"),
    podiumWait: $("[data-podium-wait]"),
    tvMore: $("[data-tv-more]"),
    reactions: Array.from(document.querySelectorAll("[data-reaction]")),
  };

  // --- leaderboard ---------------------------------------------------------

  const CHUNK = 40;
  const rows = new Map(); // userId -> {el, rank, score, name, correct, index}
  const chunks = []; // the board's chunk elements, in order
  let lastRevealedKey = null;
  let rowHeight = 0;
  let myRank = null;
  let firstPaint = true;
  let generation = 0; // marks the rows present in the latest update
  const deltaRows = new Set();
  let deltaTimer = null;

  function ordinal(n) {
    const s = ["th", "st", "nd", "rd"];
    const v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  function createRow(player) {
    // On a TV the board belongs to the room, not to whoever signed it in.
    const li = env.el("div", player.userId === me.id && !tv ? "row me" : "row");
    li.setAttribute("role", "listitem");
    li.setAttribute("data-player-row", "");
    li.setAttribute("data-user-id", String(player.userId));
    const rank = env.el("span", "row-rank");
    const avatar = env.el("span", "avatar");
    avatar.setAttribute("aria-hidden", "true");
    avatar.style.setProperty("--hue", env.hue(player.userId));
    const name = env.el("span", "row-name");
    const correct = env.el("span", "row-correct");
    const delta = env.el("span", "delta");
    const score = env.el("span", "row-score");
    score.setAttribute("data-score", "");
    li.append(rank, avatar, name, correct, delta, score);
    return { el: li, rankEl: rank, avatarEl: avatar, nameEl: name, correctEl: correct,
      deltaEl: delta, scoreEl: score, rank: null, score: null, name: null, correct: null,
      index: -1, generation: 0, tvHidden: false };
  }

  // Rewrites the existing text node: cheaper than textContent, which
  // replaces the node. Still text, never HTML.
  function setText(node, text) {
    if (node.firstChild) node.firstChild.data = text;
    else node.textContent = text;
  }

  // Write only what changed: most rows keep their text between reveals.
  function updateRow(row, player, animateScores) {
    if (row.rank !== player.rank) {
      row.rank = player.rank;
      row.el.setAttribute("data-rank", String(player.rank));
      setText(row.rankEl, String(player.rank));
    }
    if (row.name !== player.name) {
      row.name = player.name;
      row.nameEl.textContent = player.name;
      row.avatarEl.textContent = Array.from(player.name.trim())[0] || "?";
    }
    if (row.correct !== player.correctCount) {
      row.correct = player.correctCount;
      setText(row.correctEl, player.correctCount + " correct");
    }
    if (row.score !== player.totalScore) {
      const gained = row.score === null ? 0 : player.totalScore - row.score;
      row.score = player.totalScore;
      setText(row.scoreEl, String(player.totalScore));
      if (animateScores && gained > 0) {
        row.deltaEl.textContent = "+" + gained;
        row.el.classList.add("gained");
        deltaRows.add(row);
      }
    }
  }

  // The board is a list of chunks of CHUNK rows. A chunk is skipped by the
  // browser's style and layout while offscreen (content-visibility: auto), so
  // reordering 1,000 rows only costs real work in the chunks on screen.
  // Rows move with the fewest insertions: a row already in place costs nothing.
  function reorder(next) {
    const needed = Math.ceil(next.length / CHUNK);
    while (chunks.length < needed) {
      const chunk = env.el("div", "chunk");
      chunk.setAttribute("role", "none");
      nodes.board.append(chunk);
      chunks.push(chunk);
    }
    for (let k = 0; k < needed; k++) {
      const chunk = chunks[k];
      let cursor = chunk.firstChild;
      const end = Math.min(next.length, (k + 1) * CHUNK);
      for (let i = k * CHUNK; i < end; i++) {
        const row = next[i].el;
        if (row === cursor) cursor = cursor.nextSibling;
        else chunk.insertBefore(row, cursor);
      }
      const size = end - k * CHUNK;
      if (chunk.dataset.size !== String(size)) {
        chunk.dataset.size = String(size);
        chunk.style.setProperty("--rows", String(size));
      }
    }
    while (chunks.length > needed) chunks.pop().remove();
  }

  function visibleIndexRange() {
    if (tv) return tvPageRange();
    // One read: the list's position; rows have a fixed height (CSS --row-h).
    const top = nodes.board.getBoundingClientRect().top;
    if (!rowHeight) {
      const first = nodes.board.querySelector("[data-player-row]");
      rowHeight = first ? first.offsetHeight || 0 : 0;
    }
    if (!rowHeight) return [0, -1];
    const start = Math.max(0, Math.floor(-top / rowHeight) - 2);
    const end = Math.ceil((innerHeight - top) / rowHeight) + 2;
    return [start, end];
  }

  function renderPodium(players) {
    const top = players.slice(0, 3);
    const slots = nodes.podium.children;
    // Built once, then only text and classes change.
    if (slots.length !== 3) {
      nodes.podium.textContent = "";
      for (const place of [2, 1, 3]) {
        const slot = env.el("div", "podium-slot place-" + place);
        const avatar = env.el("span", "avatar podium-avatar");
        avatar.setAttribute("aria-hidden", "true");
        slot.append(env.el("span", "podium-rank"), avatar, env.el("span", "podium-name"),
          env.el("span", "podium-score"), env.el("span", "podium-step"));
        nodes.podium.append(slot);
      }
    }
    [1, 0, 2].forEach((playerIndex, slotIndex) => {
      const slot = slots[slotIndex];
      const player = top[playerIndex];
      slot.classList.toggle("empty", !player);
      slot.classList.toggle("me", Boolean(player && player.userId === me.id && !tv));
      const [rank, avatar, name, score] = slot.children;
      if (!player) {
        rank.textContent = "";
        avatar.textContent = "";
        name.textContent = "";
        score.textContent = "";
        return;
      }
      rank.textContent = ordinal(player.rank);
      avatar.textContent = Array.from(player.name.trim())[0] || "?";
      avatar.style.setProperty("--hue", env.hue(player.userId));
      name.textContent = player.name;
      score.textContent = player.totalScore + " pts";
    });
    // Before anyone scores, everyone ties for first with 0 points: a podium
    // of three "1st" would say nothing, so it waits for the first points.
    const scored = top.length > 0 && top[0].totalScore > 0;
    nodes.podium.hidden = !scored;
    nodes.podiumWait.hidden = scored || top.length === 0;
  }

  function renderMeta(frame) {
    nodes.progress.textContent = frame.revealedCount + " of " + frame.categoryCount + " revealed";
    const pct = frame.categoryCount ? (100 * frame.revealedCount) / frame.categoryCount : 0;
    nodes.progressBar.style.width = pct + "%";
    const missing = frame.incompleteCount || 0;
    nodes.incomplete.hidden = missing === 0;
    nodes.incomplete.textContent = missing === 1
      ? "1 player has not finished their picks and is not ranked."
      : missing + " players have not finished their picks and are not ranked.";
    nodes.boardEmpty.hidden = frame.players.length > 0;
    const last = frame.lastRevealed;
    const key = last ? last.categoryId + ":" + last.nominationId : null;
    nodes.announceBox.hidden = !last;
    if (key !== lastRevealedKey) {
      if (last) {
        nodes.announce.textContent = last.categoryName + " — " + last.title;
        if (!firstPaint) {
          flash(nodes.announceBox);
          say("Just announced: " + last.categoryName + ", " + last.title + ".");
        }
      } else {
        nodes.announce.textContent = "";
      }
      lastRevealedKey = key;
    }
  }

  // Web Animations restart without a forced layout (a class toggle would
  // need a reflow between remove and add).
  function flash(node) {
    if (reducedMotion.matches || !node.animate) return;
    node.animate(
      [
        { boxShadow: "0 0 60px rgba(232, 198, 106, 0.8)", transform: "scale(1.03)" },
        { boxShadow: "0 0 32px rgba(232, 198, 106, 0.18)", transform: "none" },
      ],
      { duration: 1600, easing: "ease-out" }
    );
  }

  function say(text) {
    // Replacing the text makes screen readers announce it (aria-live=polite).
    nodes.announcer.textContent = text;
  }

  function applyUpdate(frame) {
    const players = Array.isArray(frame.players) ? frame.players : [];
    const animate = !firstPaint;
    // All layout reads happen here, before any write, so applying an update
    // forces at most one layout (the browser's own, at the next frame).
    const visible = animate ? visibleIndexRange() : null;
    const flipRange = visible && !reducedMotion.matches ? visible : null;
    const next = new Array(players.length);
    generation += 1;
    for (let i = 0; i < players.length; i++) {
      const player = players[i];
      let row = rows.get(player.userId);
      if (!row) {
        row = createRow(player);
        rows.set(player.userId, row);
      }
      // "+N" only where it can be seen: rows near the viewport.
      updateRow(row, player, visible !== null && i >= visible[0] && i <= visible[1]);
      next[i] = row;
      row.generation = generation;
    }
    for (const [userId, row] of rows) {
      if (row.generation !== generation) {
        row.el.remove();
        rows.delete(userId);
        deltaRows.delete(row);
      }
    }
    // FLIP, first: old indexes of rows near the viewport (read before writing).
    const moving = [];
    if (flipRange) {
      const [start, end] = flipRange;
      for (let i = start; i < next.length && i <= end; i++) {
        const row = next[i];
        if (row.index !== -1 && row.index !== i) moving.push([row, row.index - i]);
      }
    }
    reorder(next);
    for (let i = 0; i < next.length; i++) next[i].index = i;
    if (tv) tvLayout(next);
    // FLIP, invert and play: start where the row was, transition to zero.
    if (moving.length) {
      for (const [row, shift] of moving) {
        row.el.style.transition = "none";
        row.el.style.transform = "translateY(" + shift * rowHeight + "px)";
      }
      requestAnimationFrame(() => {
        requestAnimationFrame(() => {
          for (const [row] of moving) {
            row.el.style.transition = "";
            row.el.style.transform = "";
          }
        });
      });
    }
    if (deltaRows.size) {
      clearTimeout(deltaTimer);
      deltaTimer = setTimeout(clearDeltas, DELTA_MS);
    }
    renderPodium(players);
    renderMeta(frame);
    const mine = rows.get(me.id);
    const rank = mine ? mine.rank : null;
    if (animate && rank !== null && rank !== myRank) say("You are now " + ordinal(rank) + ".");
    myRank = rank;
    firstPaint = false;
  }

  function clearDeltas() {
    for (const row of deltaRows) {
      row.el.classList.remove("gained");
      row.deltaEl.textContent = "";
    }
    deltaRows.clear();
  }

  // --- status, presence, reactions ----------------------------------------

  let status = data.game.status;
  let connected = false;
  let gameFollowed = true; // false once removed or refused
  const online = new Map(); // userId -> name

  function setStatus(next) {
    status = next;
    env.setStatusChip(nodes.status, status);
  }

  function renderWatchers(count) {
    const total = typeof count === "number" ? count : online.size;
    nodes.watchersCount.textContent = total === 1 ? "1 watching" : total + " watching";
    nodes.watchers.textContent = "";
    const names = Array.from(online.values()).slice(0, 8);
    for (const name of names) nodes.watchers.append(env.el("span", "chip", name));
    // In a big game the server names only some watchers: "+N" counts the rest.
    if (total > names.length) {
      nodes.watchers.append(env.el("span", "chip", "+" + (total - names.length)));
    }
  }

  function setReactionsEnabled() {
    const enabled = connected && gameFollowed;
    for (const button of nodes.reactions) button.disabled = !enabled;
  }

  function floatReaction(reaction) {
    while (nodes.floats.childElementCount >= MAX_FLOATS) nodes.floats.firstElementChild.remove();
    const item = env.el("div", "float");
    item.setAttribute("data-floating-reaction", reaction.emoji);
    item.setAttribute("data-user-id", String(reaction.userId));
    item.style.setProperty("--hue", env.hue(reaction.userId));
    item.style.left = 8 + Math.random() * 80 + "%";
    item.append(env.el("span", "float-emoji", reaction.emoji),
      env.el("span", "float-name", reaction.name));
    nodes.floats.append(item);
    item.addEventListener("animationend", () => item.remove());
    // Reduced motion (or no animation) still removes it.
    setTimeout(() => item.remove(), 4500);
  }

  function showError(text) {
    nodes.error.textContent = text;
    nodes.error.hidden = !text;
  }


  function onEvent(frame) {
    switch (frame.type) {
      case "joined":
        if (frame.game) setStatus(frame.game.status);
        if (frame.leaderboard) applyUpdate(frame.leaderboard);
        online.clear();
        for (const user of frame.online || []) online.set(user.userId, user.name);
        renderWatchers(frame.onlineCount);
        break;
      case "leaderboard:update":
        applyUpdate(frame);
        break;
      case "game:status":
        setStatus(frame.status);
        break;
      case "game:completed":
        setStatus("COMPLETED");
        say("All categories are revealed: final results.");
        break;
      case "presence:diff":
        for (const user of frame.leaves || []) online.delete(user.userId);
        for (const user of frame.joins || []) online.set(user.userId, user.name);
        renderWatchers(frame.onlineCount);
        break;
      case "reaction:broadcast":
        for (const reaction of frame.reactions || []) floatReaction(reaction);
        break;
      case "game:removed":
        gameFollowed = false;
        setReactionsEnabled();
        showError("You were removed from this game by its host.");
        break;
      case "leaderboard:error":
        if (frame.code === "NOT_PARTICIPANT" || frame.code === "GAME_NOT_FOUND") {
          gameFollowed = false;
          setReactionsEnabled();
          showError(frame.message || "You cannot follow this game.");
        }
        break;
      default:
        break;
    }
  }

  function onState(state, info) {
    // Read-only while on Server-Sent Events (static/js/socket.js): no reactions.
    connected = state === "live" && !(info && info.readOnly);
    env.setConnection(nodes.connection, state);
    setReactionsEnabled();
  }

  for (const button of nodes.reactions) {
    button.addEventListener("click", () => {
      const emoji = button.getAttribute("data-reaction");
      if (socket.sendReaction(gameId, emoji) && !reducedMotion.matches && button.animate) {
        button.animate([{ transform: "scale(1)" }, { transform: "scale(1.25)" }, { transform: "scale(1)" }], 300);
      }
    });
  }

  addEventListener("resize", () => {
    if (!tv) rowHeight = 0;
  });

  // --- TV: fit or page ------------------------------------------------------

  let tvOrder = []; // the rows in rank order, as last applied
  let tvPageSize = 0;
  let tvPage = 0;
  let tvBoardHeight = -1;

  function tvPageCount() {
    return tvPageSize ? Math.max(1, Math.ceil(tvOrder.length / tvPageSize)) : 1;
  }

  function tvPageRange() {
    const start = tvPage * tvPageSize;
    return [start, start + tvPageSize - 1];
  }

  // Row height and page size for the board's height: all rows when they fit
  // at the minimum height (as tall as allowed), else whole pages of rows.
  function tvMeasure() {
    const available = tvBoardHeight;
    const count = Math.max(1, tvOrder.length);
    const max = (TV_ROW_MAX_VH / 100) * innerHeight;
    const min = (TV_ROW_MIN_VH / 100) * innerHeight;
    const fits = Math.max(1, Math.floor(available / min));
    tvPageSize = Math.min(count, fits);
    rowHeight = Math.max(1, Math.floor(Math.min(max, available / tvPageSize)));
    nodes.board.style.setProperty("--row-h", rowHeight + "px");
  }

  // Only rows whose page changed are touched: a page turn of 500 players
  // writes the two pages' rows, not all of them.
  function tvShowPage() {
    const pages = tvPageCount();
    if (tvPage >= pages) tvPage = 0;
    const [start, end] = tvPageRange();
    for (let i = 0; i < tvOrder.length; i++) {
      const row = tvOrder[i];
      const hide = i < start || i > end;
      if (row.tvHidden !== hide) {
        row.tvHidden = hide;
        row.el.hidden = hide;
      }
    }
    const shown = Math.max(0, Math.min(end, tvOrder.length - 1) - start + 1);
    const more = tvOrder.length - shown;
    nodes.tvMore.hidden = pages <= 1;
    nodes.tvMore.textContent = pages <= 1
      ? ""
      : "+" + more + " more · page " + (tvPage + 1) + " of " + pages;
    nodes.board.setAttribute("data-tv-page", String(tvPage + 1));
  }

  function tvLayout(order) {
    tvOrder = order;
    // Read once; after that the observer below keeps it, so an update
    // forces no layout of its own.
    if (tvBoardHeight < 0) tvBoardHeight = nodes.board.clientHeight;
    tvMeasure();
    tvShowPage();
  }

  if (tv) {
    // The board's height changes when the banner appears, a note shows or
    // the window resizes: re-fit then (before the next paint), and only then.
    new ResizeObserver((entries) => {
      const height = Math.round(entries[entries.length - 1].contentRect.height);
      if (height === tvBoardHeight) return;
      tvBoardHeight = height;
      tvLayout(tvOrder);
    }).observe(nodes.board);
    setInterval(() => {
      if (tvPageCount() <= 1) return;
      tvPage = (tvPage + 1) % tvPageCount();
      tvShowPage();
    }, TV_PAGE_MS);
  }

  setStatus(status);
  applyUpdate(data.leaderboard);
  const socket = new window.LiveSocket({ onEvent, onState });
  socket.follow(gameId, data.game.seq);

  // Test and benchmark hook (README, Pages): apply a leaderboard frame directly.
  window.envelopeLive = {
    applyUpdate(frame) {
      applyUpdate(frame);
    },
  };
})();

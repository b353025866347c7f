// Envelope host page (/games/{id}/host): pick counts per nominee, mark a
// winner with one confirmation (staff), undo, lock picks now (host), share.
"use strict";

(function () {
  const env = window.envelope;
  const data = env.initialData();
  const game = data.game;
  let categories = data.categories;
  let counts = data.pickCounts;
  let status = game.status;
  let index = Math.max(0, categories.findIndex((c) => c.winnerId === null));
  let confirming = null; // {kind: "reveal"|"undo", nominationId?}
  let busy = false;

  const $ = (selector) => document.querySelector(selector);
  const nodes = {
    connection: $("[data-connection]"),
    status: $("[data-game-status]"),
    lock: $("[data-lock]"),
    copy: $("[data-copy-link]"),
    staffNote: $("[data-staff-note]"),
    pills: $("[data-pills]"),
    name: $("[data-category-name]"),
    points: $("[data-category-points]"),
    nominees: $("[data-nominees]"),
    actions: $("[data-host-actions]"),
    error: $("[data-form-error]"),
  };
  const pillsHint = env.scrollHint($("[data-pills-scroller]"));

  function showError(message) {
    nodes.error.textContent = message || "";
  }

  function renderStatus() {
    env.setStatusChip(nodes.status, status);
    if (nodes.lock) nodes.lock.hidden = !env.picksOpen(status);
  }

  function renderPills() {
    nodes.pills.textContent = "";
    categories.forEach((category, i) => {
      const pill = env.el("button", "pill" + (category.winnerId !== null ? " done" : ""));
      pill.type = "button";
      pill.setAttribute("data-category-pill", String(category.id));
      if (i === index) pill.setAttribute("aria-current", "step");
      pill.textContent = (category.winnerId !== null ? "✓ " : "") + category.name;
      pill.addEventListener("click", () => {
        index = i;
        confirming = null;
        showError("");
        render();
      });
      nodes.pills.append(pill);
    });
    pillsHint();
  }

  function button(label, className, onClick) {
    const node = env.el("button", "btn " + className, label);
    node.type = "button";
    node.disabled = busy;
    node.addEventListener("click", onClick);
    return node;
  }

  function renderCategory() {
    const category = categories[index];
    if (!category) return;
    nodes.name.textContent = category.name;
    nodes.points.textContent = category.points === 1 ? "1 point" : category.points + " points";
    const perNominee = counts[String(category.id)] || {};
    const total = Object.values(perNominee).reduce((a, b) => a + b, 0);
    nodes.nominees.textContent = "";
    for (const nomination of category.nominations) {
      const count = perNominee[String(nomination.id)] || 0;
      const card = env.el("div", "nominee host-card");
      card.setAttribute("data-nomination-id", String(nomination.id));
      if (category.winnerId === nomination.id) card.classList.add("winner");
      card.append(env.el("span", "nominee-title", nomination.title));
      if (nomination.subtitle) card.append(env.el("span", "nominee-subtitle", nomination.subtitle));
      const bar = env.el("span", "count-bar");
      const fill = env.el("span", "count-fill");
      fill.style.width = (total ? (100 * count) / total : 0) + "%";
      bar.append(fill);
      const label = env.el("span", "count-label", count === 1 ? "1 pick" : count + " picks");
      label.setAttribute("data-pick-count", String(count));
      card.append(bar, label);
      if (category.winnerId === nomination.id) card.append(env.el("span", "badge badge-gold", "Winner"));
      if (data.canReveal && category.winnerId === null) {
        const pending = confirming && confirming.kind === "reveal"
          && confirming.nominationId === nomination.id;
        if (pending) {
          card.classList.add("confirming");
          card.append(
            button("Confirm: " + nomination.title + " wins", "btn-gold", () => reveal(category, nomination)),
            button("Cancel", "btn-ghost", () => {
              confirming = null;
              render();
            })
          );
        } else {
          card.append(button("Mark winner", "btn-small", () => {
            confirming = { kind: "reveal", nominationId: nomination.id };
            render();
          }));
        }
      }
      nodes.nominees.append(card);
    }
    nodes.actions.textContent = "";
    if (data.canReveal && category.winnerId !== null) {
      if (confirming && confirming.kind === "undo") {
        nodes.actions.append(
          button("Confirm undo", "btn-danger", () => undo(category)),
          button("Cancel", "btn-ghost", () => {
            confirming = null;
            render();
          })
        );
      } else {
        nodes.actions.append(button("Undo winner", "btn-ghost", () => {
          confirming = { kind: "undo" };
          render();
        }));
      }
    }
  }

  function render() {
    nodes.staffNote.hidden = data.canReveal;
    renderStatus();
    renderPills();
    renderCategory();
  }

  function replaceCategory(updated) {
    categories = categories.map((c) => (c.id === updated.id ? { ...c, ...updated } : c));
  }

  async function act(work) {
    busy = true;
    showError("");
    render();
    try {
      await work();
      confirming = null;
    } catch (err) {
      showError(err.message);
    } finally {
      busy = false;
      render();
    }
  }

  function reveal(category, nomination) {
    return act(async () => {
      const updated = await env.request("POST", "/api/categories/" + category.id + "/winner", {
        nominationId: nomination.id,
      });
      replaceCategory(updated);
      if (env.picksOpen(status)) status = "LIVE";
    });
  }

  function undo(category) {
    return act(async () => {
      replaceCategory(await env.request("DELETE", "/api/categories/" + category.id + "/winner"));
    });
  }

  if (nodes.lock) {
    nodes.lock.addEventListener("click", () =>
      act(async () => {
        const updated = await env.request("PATCH", "/api/games/" + game.id, { status: "LIVE" });
        status = updated.status;
      })
    );
  }

  nodes.copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(data.joinUrl);
      nodes.copy.textContent = "Copied ✓";
    } catch (err) {
      nodes.copy.textContent = "Copy failed: select the link";
    }
  });

  // Counts and winners can change from other tabs, the admin or the API.
  let refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      try {
        const [fresh, ceremony] = await Promise.all([
          env.request("GET", "/api/games/" + game.id + "/pick-counts"),
          env.request("GET", "/api/ceremonies/" + game.ceremonyId),
        ]);
        counts = fresh;
        categories = ceremony.categories;
        render();
      } catch (err) {
        // Keep the last counts; the next event retries.
      }
    }, 250);
  }

  const socket = new window.LiveSocket({
    onEvent(frame) {
      if (frame.type === "joined" && frame.game) status = frame.game.status;
      else if (frame.type === "game:status") status = frame.status;
      else if (frame.type === "game:completed") status = "COMPLETED";
      if (typeof frame.seq === "number") refreshSoon();
      renderStatus();
    },
    onState(state) {
      env.setConnection(nodes.connection, state);
    },
  });
  socket.follow(game.id, game.seq);
  // Picks are not game events: while picks are open, poll the counts gently.
  setInterval(() => {
    if (env.picksOpen(status)) refreshSoon();
  }, 15000);
  render();
})();

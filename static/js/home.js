// Envelope home, sign-in and join pages: small form handlers over the API.
"use strict";

(function () {
  const env = window.envelope;

  function formError(form, message) {
    const node = form.querySelector("[data-form-error]");
    if (node) node.textContent = message || "";
  }

  function fields(form) {
    const values = {};
    for (const [key, value] of new FormData(form)) values[key] = String(value).trim();
    return values;
  }

  // One submit at a time; the button shows the form is busy.
  function handle(form, action) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      formError(form, "");
      button.disabled = true;
      try {
        await action(fields(form));
      } catch (err) {
        formError(form, err.message || "Something went wrong.");
        button.disabled = false;
      }
    });
  }

  function nextUrl() {
    const node = document.getElementById("next-url");
    const target = node ? JSON.parse(node.textContent) : "/";
    // The server already vetted it; keep to same-site paths all the same.
    return typeof target === "string" && target.startsWith("/") && !target.startsWith("//")
      ? target
      : "/";
  }

  // Picks while they are open; once locked, a late joiner watches the board.
  function gameUrl(game) {
    const open = env.picksOpen(game.status);
    return "/games/" + game.id + (open ? "/picks" : "/live");
  }

  document.querySelectorAll("form[data-auth]").forEach((form) => {
    const kind = form.getAttribute("data-auth");
    handle(form, async (values) => {
      if (!values.username || !values.password) throw new Error("Enter a username and a password.");
      if (kind === "register" && !values.displayName) throw new Error("Choose a display name.");
      const body = { username: values.username, password: values.password };
      if (kind === "register") body.displayName = values.displayName;
      // Both sign the browser in (session cookie) as well as returning a token.
      await env.request("POST", "/api/auth/" + kind, body);
      location.assign(nextUrl());
    });
  });

  const joinForm = document.getElementById("join-form");
  if (joinForm) {
    handle(joinForm, async (values) => {
      if (!values.accessCode) throw new Error("Enter the access code from your host.");
      const game = await env.request("POST", "/api/games/join", { accessCode: values.accessCode });
      location.assign(gameUrl(game));
    });
  }

  const createForm = document.getElementById("create-form");
  if (createForm) {
    // A game on a ceremony that has begun starts live (watch only): say so
    // before the host creates it, not after.
    const select = createForm.querySelector("[data-ceremony-select]");
    const warning = createForm.querySelector("[data-create-warning]");
    const ceremonies = new Map((env.initialData().ceremonies || []).map((c) => [String(c.id), c]));
    const showStage = () => {
      const ceremony = ceremonies.get(select.value);
      const begun = Boolean(ceremony && ceremony.stage === "begun");
      warning.hidden = !begun;
      if (begun) {
        warning.textContent =
          "This ceremony has begun (" + ceremony.label + "): a new game on it starts live. " +
          "Players can join to watch the board, but nobody can pick any more.";
      }
    };
    if (select && warning) {
      select.addEventListener("change", showStage);
      showStage();
    }
    handle(createForm, async (values) => {
      if (!values.ceremonyId) throw new Error("Import a ceremony first (manage.py import_ceremony).");
      if (!values.name) throw new Error("Give your game a name.");
      const body = { ceremonyId: Number(values.ceremonyId), name: values.name };
      if (values.picksLockAt) {
        // datetime-local is the player's local time; the API wants UTC ISO 8601.
        const when = new Date(values.picksLockAt);
        if (Number.isNaN(when.getTime())) throw new Error("That lock time is not a valid date.");
        body.picksLockAt = when.toISOString();
      }
      const game = await env.request("POST", "/api/games", body);
      location.assign(gameUrl(game));
    });
  }

  const joinBox = document.querySelector("[data-join]");
  if (joinBox) {
    const status = joinBox.querySelector("[data-join-status]");
    const code = env.initialData().accessCode;
    env
      .request("POST", "/api/games/join", { accessCode: code })
      .then((game) => {
        status.textContent = "Joined " + game.name + ". Opening the game…";
        location.replace(gameUrl(game));
      })
      .catch((err) => {
        const messages = {
          INVALID_CODE: "No game has this code. Check the link with your host.",
          GAME_NOT_JOINABLE: "This game is over and cannot be joined any more.",
          RATE_LIMITED: "Too many wrong codes. Wait a few minutes and try again.",
        };
        status.textContent = "Could not join.";
        formError(joinBox, messages[err.code] || err.message);
        joinBox.querySelector("[data-join-home]").hidden = false;
      });
  }
})();

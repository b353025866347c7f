// Envelope join link, signed out: join a game as a guest with a name and a PIN.
// (Sign-in and registration on the same page are home.js's forms.)
"use strict";

(function () {
  const env = window.envelope;
  const form = document.getElementById("guest-form");
  if (!form) return;

  // What each refusal means to someone at a party, holding a phone.
  const MESSAGES = {
    INVALID_CREDENTIALS:
      "Wrong PIN for this name. If it's you, check your PIN; if not, choose another name.",
    NAME_TAKEN: "Someone in this game already has that name. Choose another one.",
    INVALID_CODE: "No game has this code. Check the link with your host.",
    GAME_NOT_JOINABLE: "This game is over and cannot be joined any more.",
    RATE_LIMITED: "Too many tries. Wait a few minutes and try again.",
  };

  const error = form.querySelector("[data-form-error]");
  const button = form.querySelector("button[type=submit]");

  function value(name) {
    return String(form.elements.namedItem(name).value).trim();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const displayName = value("displayName");
    const pin = value("pin");
    if (!displayName) {
      error.textContent = "Enter the name the other players will see.";
      return;
    }
    if (!/^[0-9]{4,6}$/.test(pin)) {
      error.textContent = "Your PIN is 4 to 6 digits.";
      return;
    }
    button.disabled = true;
    try {
      const body = { accessCode: env.initialData().accessCode, displayName, pin };
      // Signs the browser in (session cookie) and joins the game in one go.
      const { game } = await env.request("POST", "/api/auth/guest", body);
      // Picks while they are open; once locked, a late joiner watches the board.
      location.assign("/games/" + game.id + (env.picksOpen(game.status) ? "/picks" : "/live"));
    } catch (err) {
      error.textContent = MESSAGES[err.code] || err.message;
      button.disabled = false;
    }
  });
})();

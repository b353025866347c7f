// Envelope live client: one WebSocket per tab at /ws/ (docs/protocol.md).
//
// Delivery through the server is at most once; the per-game seq makes the
// client converge: events at or below the last seq are ignored, a gap
// triggers `join` with lastSeq (the server replays or sends a snapshot).
"use strict";

(function () {
  const MIN_DELAY_MS = 1000;
  const MAX_DELAY_MS = 30000;
  const PING_MS = 25000;
  // No frame at all for this long (pongs included) means the socket is dead
  // even if the browser has not noticed yet (e.g. a laptop woke from sleep).
  const SILENCE_MS = 2 * PING_MS + 10000;
  const AUTH_CLOSE_CODES = new Set([4401, 4403]);
  const SERVICE_RESTART = 1012;

  class LiveSocket {
    // onEvent(frame) gets every game frame in order; onState(state) gets
    // "live" | "connecting" | "offline".
    constructor({ onEvent, onState }) {
      this.onEvent = onEvent;
      this.onState = onState;
      this.games = new Map(); // gameId -> last applied seq (null: none yet)
      this.resuming = new Set(); // games waiting for `joined` after a gap
      this.ws = null;
      this.attempt = 0;
      this.retryTimer = null;
      this.pingTimer = null;
      this.lastFrameAt = 0;
      this.stopped = false;
      this.state = null;
      this.ready = false; // true after `hello`
      addEventListener("online", () => this.reconnectNow());
      addEventListener("offline", () => this.setState("offline"));
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") this.reconnectNow();
      });
    }

    follow(gameId, lastSeq) {
      this.games.set(gameId, typeof lastSeq === "number" ? lastSeq : null);
      if (this.ready) this.join(gameId);
      if (!this.ws) this.connect();
    }

    sendReaction(gameId, emoji) {
      return this.send({ type: "reaction:send", gameId, emoji });
    }

    send(message) {
      if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      this.ws.send(JSON.stringify(message));
      return true;
    }

    join(gameId) {
      const lastSeq = this.games.get(gameId);
      const message = { type: "join", gameId };
      if (lastSeq !== null && lastSeq !== undefined) message.lastSeq = lastSeq;
      this.resuming.add(gameId);
      this.send(message);
    }

    setState(state) {
      if (state === this.state) return;
      this.state = state;
      this.onState(state);
    }

    url() {
      return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/";
    }

    connect() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      if (this.stopped || this.ws) return;
      this.setState(navigator.onLine === false ? "offline" : "connecting");
      const ws = new WebSocket(this.url());
      this.ws = ws;
      this.ready = false;
      ws.onmessage = (event) => {
        if (ws === this.ws) this.receive(event.data);
      };
      // `error` is always followed by `close`; all recovery happens there.
      ws.onclose = (event) => this.closed(ws, event.code);
    }

    closed(ws, code) {
      if (ws !== this.ws) return;
      this.ws = null;
      this.ready = false;
      clearInterval(this.pingTimer);
      if (AUTH_CLOSE_CODES.has(code)) {
        // Signed out or not allowed: retrying cannot help.
        this.stopped = true;
        this.setState("offline");
        location.assign(window.envelope.signInUrl());
        return;
      }
      if (code === SERVICE_RESTART) {
        // The server is restarting on purpose: come back at once (backoff
        // takes over if it is not up yet).
        this.attempt = 0;
        this.connect();
        return;
      }
      this.scheduleRetry();
    }

    scheduleRetry() {
      if (this.stopped) return;
      const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
      this.attempt += 1;
      // "Equal jitter": at least half the delay, so a restart's thousands of
      // clients spread out without any of them hammering the server.
      const delay = ceiling / 2 + Math.random() * (ceiling / 2);
      this.setState(navigator.onLine === false ? "offline" : "connecting");
      this.retryTimer = setTimeout(() => this.connect(), delay);
    }

    reconnectNow() {
      if (this.stopped) return;
      if (this.ws) {
        if (this.ready) this.checkAlive();
        // Still open after an `offline` blip: the badge must say so again.
        if (this.ws && this.ready) this.setState("live");
        return;
      }
      this.attempt = 0;
      this.connect();
    }

    checkAlive() {
      if (this.ws && Date.now() - this.lastFrameAt > SILENCE_MS) {
        const dead = this.ws;
        this.closed(dead, 1006);
        dead.close();
      }
    }

    receive(text) {
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(text);
      } catch (err) {
        return;
      }
      if (!frame || typeof frame !== "object") return;
      switch (frame.type) {
        case "hello":
          this.ready = true;
          this.attempt = 0;
          this.setState("live");
          for (const gameId of this.games.keys()) this.join(gameId);
          clearInterval(this.pingTimer);
          this.pingTimer = setInterval(() => {
            this.checkAlive();
            this.send({ type: "ping", t: Date.now() });
          }, PING_MS);
          return;
        case "pong":
          return;
        case "joined":
          if (!this.games.has(frame.gameId)) return;
          this.resuming.delete(frame.gameId);
          // The snapshot is the truth as of its seq; replayed events follow.
          this.games.set(frame.gameId, frame.seq);
          this.onEvent(frame);
          return;
        default:
          break;
      }
      const gameId = frame.gameId;
      if (gameId !== undefined && !this.games.has(gameId)) return;
      if (typeof frame.seq === "number") {
        if (this.resuming.has(gameId)) return; // `joined` and its replay will cover it
        const last = this.games.get(gameId);
        if (last !== null) {
          if (frame.seq <= last) return; // already applied
          if (frame.seq > last + 1) {
            this.join(gameId); // a gap: resume from what we have
            return;
          }
        }
        this.games.set(gameId, frame.seq);
      }
      if (frame.type === "game:removed") {
        this.games.delete(gameId);
        this.resuming.delete(gameId);
      }
      this.onEvent(frame);
    }
  }

  window.LiveSocket = LiveSocket;
})();

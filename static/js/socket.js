// Envelope live client: one WebSocket per tab at /ws/ (docs/protocol.md).
//
// Delivery through the server is at most once; the per-game seq makes the
// client converge: events at or below the last seq are ignored, a gap
// triggers `join` with lastSeq (the server replays or sends a snapshot).
//
// Where a WebSocket cannot connect (a locked-down network, a TV stick), the
// client falls back to Server-Sent Events after FALLBACK_AFTER failed
// attempts in a row, once the server is seen to be ready over plain HTTP (a
// server restarting fails both): one EventSource per followed game on
// /api/games/{id}/events?lastSeq=…, whose frames are the socket's, fed to the
// same onEvent. The stream is read-only (no reactions). While on it, the
// WebSocket is tried again every WS_RETRY_ON_SSE_MS, and the client switches
// back as soon as one says hello.
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
  const FALLBACK_AFTER = 3;
  // Tests shorten it (window.envelopeLiveOptions, set before this script runs).
  const WS_RETRY_ON_SSE_MS = (window.envelopeLiveOptions || {}).wsRetryOnSseMs || 60000;
  // EventSource hands a listener only the event types it was asked for.
  const SSE_TYPES = [
    "joined",
    "leaderboard:update",
    "game:status",
    "game:completed",
    "participant:joined",
    "participant:left",
    "presence:diff",
    "reaction:broadcast",
    "game:removed",
    "leaderboard:error",
  ];

  class LiveSocket {
    // onEvent(frame) gets every game frame in order; onState(state, info)
    // gets "live" | "connecting" | "offline", and info.readOnly while the
    // frames come over Server-Sent Events (reactions cannot be sent).
    constructor({ onEvent, onState }) {
      this.onEvent = onEvent;
      this.onState = onState;
      this.games = new Map(); // gameId -> last applied seq (null: none yet)
      this.resuming = new Set(); // games waiting for `joined` after a gap
      this.ws = null;
      this.attempt = 0;
      this.failures = 0; // WebSocket attempts in a row that never said hello
      this.blockedSeen = 0; // of those, failed ones after which HTTP got through
      this.retryTimer = null;
      this.pingTimer = null;
      this.lastFrameAt = 0;
      this.stopped = false;
      this.state = null;
      this.ready = false; // true after `hello`
      this.transport = "websocket"; // or "sse"
      this.streams = new Map(); // gameId -> EventSource (on "sse")
      this.streamAttempts = new Map(); // gameId -> refused streams in a row
      this.probeTimer = null;
      addEventListener("online", () => this.reconnectNow());
      addEventListener("offline", () => this.setState("offline"));
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") this.reconnectNow();
      });
    }

    follow(gameId, lastSeq) {
      this.games.set(gameId, typeof lastSeq === "number" ? lastSeq : null);
      if (this.transport === "sse") {
        this.openStream(gameId);
        return;
      }
      if (this.ready) this.join(gameId);
      if (!this.ws) this.connect();
    }

    // Reactions go over the WebSocket only: false (nothing sent) on SSE.
    canReact() {
      return this.transport === "websocket" && this.ready;
    }

    sendReaction(gameId, emoji) {
      return this.send({ type: "reaction:send", gameId, emoji });
    }

    send(message) {
      if (this.transport !== "websocket") return false;
      if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      this.ws.send(JSON.stringify(message));
      return true;
    }

    join(gameId) {
      this.resuming.add(gameId);
      if (this.transport === "sse") {
        this.openStream(gameId); // resumes from lastSeq, as `join` does
        return;
      }
      const lastSeq = this.games.get(gameId);
      const message = { type: "join", gameId };
      if (lastSeq !== null && lastSeq !== undefined) message.lastSeq = lastSeq;
      this.send(message);
    }

    setState(state) {
      if (state === this.state) return;
      this.state = state;
      this.onState(state, { readOnly: this.transport === "sse" });
    }

    url() {
      return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/";
    }

    connect() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      if (this.stopped || this.ws) return;
      // On SSE this is a quiet try of the WebSocket: the stream stays the state.
      if (this.transport === "websocket") {
        this.setState(navigator.onLine === false ? "offline" : "connecting");
      }
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
      const saidHello = this.ready;
      this.ws = null;
      this.ready = false;
      clearInterval(this.pingTimer);
      if (AUTH_CLOSE_CODES.has(code)) {
        // Signed out or not allowed: retrying cannot help.
        this.signedOut();
        return;
      }
      if (this.transport === "sse") return; // the next try is on the probe timer
      if (code === SERVICE_RESTART) {
        // The server is restarting on purpose: come back at once (backoff
        // takes over if it is not up yet).
        this.attempt = 0;
        this.connect();
        return;
      }
      if (saidHello) {
        this.failures = 0;
        this.blockedSeen = 0;
      } else if (navigator.onLine !== false) {
        this.failures += 1;
      }
      if (this.failures >= FALLBACK_AFTER) {
        this.checkBlocked();
        return;
      }
      this.scheduleRetry();
    }

    // A server that is restarting (draining, then down) fails the WebSocket
    // too, and must not send the page to SSE: fall back only when the server
    // says it is ready (/readyz) after a failed WebSocket, twice in a row.
    checkBlocked() {
      fetch("/readyz", { cache: "no-store" })
        .then((response) => response.ok)
        .catch(() => false)
        .then((reachable) => {
          if (this.stopped || this.ws || this.transport !== "websocket") return;
          this.blockedSeen = reachable ? this.blockedSeen + 1 : 0;
          if (this.blockedSeen >= 2) this.useStreams();
          else this.scheduleRetry();
        });
    }

    signedOut() {
      this.stopped = true;
      this.closeStreams();
      clearInterval(this.probeTimer);
      this.setState("offline");
      location.assign(window.envelope.signInUrl());
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
      if (this.transport === "sse") {
        for (const gameId of this.games.keys()) {
          if (!this.streams.has(gameId)) this.openStream(gameId);
        }
        this.streamState();
        return;
      }
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

    // --- Server-Sent Events ----------------------------------------------------

    useStreams() {
      this.transport = "sse";
      this.attempt = 0;
      this.setState("connecting");
      for (const gameId of this.games.keys()) this.openStream(gameId);
      clearInterval(this.probeTimer);
      this.probeTimer = setInterval(() => {
        if (!this.ws && !this.stopped) this.connect();
      }, WS_RETRY_ON_SSE_MS);
    }

    useWebSocket() {
      // A WebSocket said hello: back to it. Its `hello` joins every game
      // with its lastSeq, so nothing in between is lost.
      clearInterval(this.probeTimer);
      this.probeTimer = null;
      this.closeStreams();
      this.transport = "websocket";
      this.failures = 0;
      this.blockedSeen = 0;
      this.state = null; // announce "live" again, now without readOnly
    }

    closeStreams() {
      for (const source of this.streams.values()) source.close();
      this.streams.clear();
    }

    streamUrl(gameId) {
      const lastSeq = this.games.get(gameId);
      const query = typeof lastSeq === "number" ? "?lastSeq=" + lastSeq : "";
      return "/api/games/" + encodeURIComponent(gameId) + "/events" + query;
    }

    openStream(gameId) {
      const old = this.streams.get(gameId);
      if (old) old.close();
      if (this.stopped || !this.games.has(gameId)) return;
      const source = new EventSource(this.streamUrl(gameId));
      this.streams.set(gameId, source);
      const current = () => this.streams.get(gameId) === source;
      const onFrame = (event) => {
        if (current()) this.receive(event.data);
      };
      for (const type of SSE_TYPES) source.addEventListener(type, onFrame);
      source.onopen = () => {
        if (!current()) return;
        this.streamAttempts.delete(gameId);
        this.streamState();
      };
      source.onerror = () => {
        if (!current()) return;
        // CONNECTING: EventSource reconnects by itself, with Last-Event-ID.
        // CLOSED: the server refused the request (401, 403, 404, 429, 503).
        if (source.readyState === EventSource.CLOSED) {
          this.streams.delete(gameId);
          this.streamRefused(gameId);
        }
        this.streamState();
      };
    }

    streamState() {
      if (this.transport !== "sse") return;
      if (navigator.onLine === false) {
        this.setState("offline");
        return;
      }
      let open = this.streams.size > 0;
      for (const source of this.streams.values()) {
        if (source.readyState !== EventSource.OPEN) open = false;
      }
      this.setState(open ? "live" : "connecting");
    }

    // EventSource does not tell why it was refused: ask the game's API, which
    // answers the same codes, then do what a socket's refusal would do.
    streamRefused(gameId) {
      fetch("/api/games/" + encodeURIComponent(gameId), { credentials: "same-origin" })
        .then((response) => response.status)
        .catch(() => 0)
        .then((status) => {
          if (this.transport !== "sse" || this.stopped || this.streams.has(gameId)) return;
          if (status === 401) {
            this.signedOut();
          } else if (status === 403 || status === 404) {
            this.games.delete(gameId);
            this.onEvent({
              type: "leaderboard:error",
              gameId,
              code: status === 404 ? "GAME_NOT_FOUND" : "NOT_PARTICIPANT",
              message: status === 404 ? "No game with that id." : "You are not a player in this game.",
            });
          } else {
            // Busy (429, 503) or unreachable: again with backoff and jitter.
            const tries = (this.streamAttempts.get(gameId) || 0) + 1;
            this.streamAttempts.set(gameId, tries);
            const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** tries);
            setTimeout(() => {
              if (this.transport === "sse" && !this.streams.has(gameId)) this.openStream(gameId);
            }, ceiling / 2 + Math.random() * (ceiling / 2));
          }
        });
    }

    // --- frames (either transport) ---------------------------------------------

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
          if (this.transport === "sse") this.useWebSocket();
          this.ready = true;
          this.attempt = 0;
          this.failures = 0;
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
        case "leaderboard:error":
          // Over SSE a sign-out ends the stream with this frame (a socket
          // gets it with close code 4401).
          if (this.transport === "sse" && frame.code === "AUTH_REQUIRED") {
            this.signedOut();
            return;
          }
          break;
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
        const source = this.streams.get(gameId);
        if (source) {
          source.close();
          this.streams.delete(gameId);
        }
      }
      this.onEvent(frame);
    }
  }

  window.LiveSocket = LiveSocket;
})();

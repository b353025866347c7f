// A Socket.IO 4 peer for bench/sidebyside.py: what Envelope does for one game,
// and nothing more. Sockets join a room; a POST broadcasts a leaderboard
// payload (the very frames Envelope sent, loaded beforehand) to that room.
//
// WebSocket transport only (no long-polling), no compression, as Envelope.
// Started by the bench as `node server.js`, with NODE_PATH pointing at the
// node_modules the bench installed (`npm install --prefix <tmpdir>`). It
// prints one JSON line {"event":"listening","port":P} once it accepts
// connections, and exits when its stdin closes (so it never outlives the bench).
//
// HTTP, on the same port:
//   PUT  /payload/<key>    body: the frame's JSON text; parsed once, here, so
//                          the broadcast below starts from a ready object, as
//                          Envelope's starts from a frame rendered at commit
//   POST /broadcast/<key>  io.to("game").emit("update", payload) -> {"sent": n}
//   GET  /stats            {"rss", "heapUsed", "sockets"} (process.memoryUsage)
//
// Socket.IO events: "join" (gameId, ack) -> the socket joins the room and the
// ack answers {"joined": gameId}: the client's "joined" moment.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const ROOM = "game";
const payloads = new Map();

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const httpServer = http.createServer(async (req, res) => {
  // Socket.IO answers /socket.io/ itself; everything else is the control API.
  const [, route, key] = req.url.split("/");
  try {
    if (req.method === "PUT" && route === "payload" && key) {
      payloads.set(key, JSON.parse(await readBody(req)));
      answer(res, 200, { stored: key });
    } else if (req.method === "POST" && route === "broadcast" && payloads.has(key)) {
      const sockets = io.sockets.adapter.rooms.get(ROOM)?.size ?? 0;
      // One emit to the room: the adapter encodes the packet once and writes
      // the same frame to every socket.
      io.to(ROOM).emit("update", payloads.get(key));
      answer(res, 200, { sent: sockets });
    } else if (req.method === "GET" && route === "stats") {
      const memory = process.memoryUsage();
      answer(res, 200, { rss: memory.rss, heapUsed: memory.heapUsed, sockets: io.engine.clientsCount });
    } else {
      answer(res, 404, { error: "not found" });
    }
  } catch (error) {
    answer(res, 400, { error: String(error) });
  }
});

const io = new Server(httpServer, {
  transports: ["websocket"], // no long-polling: the same transport as Envelope
  perMessageDeflate: false, // daphne does not compress either
  serveClient: false,
  maxHttpBufferSize: 1e6,
});

io.on("connection", (socket) => {
  socket.on("join", (gameId, ack) => {
    socket.join(ROOM);
    if (typeof ack === "function") ack({ joined: gameId });
  });
});

// A backlog of 4096 (Node's default is 511): a burst of thousands of connects
// must not overflow accept and stall in SYN retries.
httpServer.listen({ host: "127.0.0.1", port: Number(process.env.PORT || 0), backlog: 4096 }, () => {
  process.stdout.write(JSON.stringify({ event: "listening", port: httpServer.address().port }) + "\n");
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();

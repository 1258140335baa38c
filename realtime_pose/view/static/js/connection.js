// The page's one WebSocket: JSON text messages both ways, binary frames from the server.

export class Connection {
  constructor(onText, onFrame, onState) {
    this.onText = onText;
    this.onFrame = onFrame;
    this.onState = onState;
    this.nextId = 1;
    this.pending = new Map();
    this.open();
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => this.onState(true);
    ws.onclose = () => {
      this.onState(false);
      for (const [, reject] of this.pending.values()) reject(new Error("connection lost"));
      this.pending.clear();
      setTimeout(() => this.open(), 1000);
    };
    ws.onmessage = (event) => {
      if (typeof event.data === "string") this.text(JSON.parse(event.data));
      else this.onFrame(decodeFrame(event.data));
    };
    this.ws = ws;
  }

  text(msg) {
    if (msg.type === "reply" && this.pending.has(msg.id)) {
      const [resolve] = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      resolve(msg.reply);
      return;
    }
    this.onText(msg);
  }

  send(msg) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  // A control request through the view; resolves to the session's reply ({ok, error, ...}).
  action(cmd, fields = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, [resolve, reject]);
      this.send({ type: "action", id, cmd, ...fields });
    });
  }
}

// [4-byte big-endian header length][JSON header][JPEG bytes]
export function decodeFrame(buffer) {
  const view = new DataView(buffer);
  const n = view.getUint32(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
  header.jpeg = new Blob([new Uint8Array(buffer, 4 + n)], { type: "image/jpeg" });
  return header;
}

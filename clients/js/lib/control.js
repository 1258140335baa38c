// One request on the control socket (docs/protocol.md, "Control requests").

import { encode } from "@msgpack/msgpack"
import { Request } from "zeromq"

import { decodePayload } from "./pose.js"

/**
 * Send one control request and return the reply map.
 *
 * A fresh `REQ` socket per request: a `REQ` whose reply never came cannot send again, so it is
 * closed (linger 0) on every path.
 *
 * @param {string} address  e.g. `tcp://127.0.0.1:5556`
 * @param {object} body  the request map, with `cmd` (and `token` where the session wants one)
 * @param {{timeoutMs: number, curve?: object}} options  `curve`: from `curveClientOptions`
 * @returns {Promise<object>}  the reply: `ok` true with the command's fields, or `ok` false and `error`
 * @throws {Error} when no reply came within `timeoutMs` (wrong keys, wrong address, rig down)
 */
export async function controlRequest(address, body, { timeoutMs, curve = {} }) {
  const socket = new Request({ linger: 0, sendTimeout: timeoutMs, receiveTimeout: timeoutMs, ...curve })
  try {
    socket.connect(address)
    await socket.send(encode(body))
    const [reply] = await socket.receive()
    return decodePayload(reply)
  } catch (error) {
    if (error.code === "EAGAIN") {
      throw new Error(
        `no reply from ${address} within ${timeoutMs} ms (is the session running, and are ` +
          "these the rig's public key and an admitted client's key?)",
      )
    }
    throw error
  } finally {
    socket.close()
  }
}

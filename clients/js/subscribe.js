#!/usr/bin/env node
// Subscribe to a realtime-pose session's poses, ping its control socket, print one JSON summary.

import { parseArgs } from "node:util"

import { Subscriber } from "zeromq"

import { controlRequest } from "./lib/control.js"
import { curveClientOptions } from "./lib/keys.js"
import { PoseTally, decodePayload, readPose } from "./lib/pose.js"

const USAGE = `usage: node subscribe.js [options]

Receive --count poses from a realtime-pose stream, send one ping on the control socket, then
print one JSON line: received, gaps, missing, first_seq, last_seq, keypoints_shape, ping_ok, ...
Exit status 0 when every pose asked for came and the ping was answered ok; 1 otherwise; 2 for
bad options or key files.

  --stream ADDRESS      publisher endpoint (tcp://127.0.0.1:5555)
  --control ADDRESS     control endpoint (tcp://127.0.0.1:5556); "none": no ping
  --client-key FILE     CURVE: this client's .key_secret file (pyzmq certificate)
  --server-key FILE     CURVE: the rig's public rig.key file
  --token TOKEN         control token, when the session was started with one
  --count N             stop after N poses (100); 0: until --timeout or Ctrl-C
  --timeout SECONDS     give up after this long without a pose, and on the ping reply (5)
  --help`

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      stream: { type: "string", default: "tcp://127.0.0.1:5555" },
      control: { type: "string", default: "tcp://127.0.0.1:5556" },
      "client-key": { type: "string" },
      "server-key": { type: "string" },
      token: { type: "string" },
      count: { type: "string", default: "100" },
      timeout: { type: "string", default: "5" },
      help: { type: "boolean", default: false },
    },
  })
  const count = Number(values.count)
  const timeoutS = Number(values.timeout)
  if (!Number.isInteger(count) || count < 0) throw new Error(`--count ${values.count}: give a whole number >= 0`)
  if (!(timeoutS > 0)) throw new Error(`--timeout ${values.timeout}: give a number of seconds > 0`)
  if (Boolean(values["client-key"]) !== Boolean(values["server-key"])) {
    throw new Error("CURVE needs both --client-key (.key_secret) and --server-key (rig.key)")
  }
  const curve = values["client-key"] ? curveClientOptions(values["client-key"], values["server-key"]) : {}
  return {
    stream: values.stream,
    control: values.control === "none" ? null : values.control,
    token: values.token ?? null,
    count,
    timeoutMs: Math.round(timeoutS * 1000),
    curve,
    help: values.help,
  }
}

async function receivePoses(options, tally, stopSignal) {
  const socket = new Subscriber({ linger: 0, receiveTimeout: options.timeoutMs, ...options.curve })
  stopSignal.addEventListener("abort", () => socket.close(), { once: true })
  socket.connect(options.stream)
  socket.subscribe("pose")
  try {
    while (options.count === 0 || tally.received < options.count) {
      let frames
      try {
        frames = await socket.receive()
      } catch (error) {
        if (stopSignal.aborted) return "interrupted"
        if (error.code === "EAGAIN") return "timeout"
        throw error
      }
      const receivedNs = process.hrtime.bigint()
      // "pose" is a prefix filter; the topic itself must be exactly "pose".
      if (frames.length !== 2 || frames[0].toString("latin1") !== "pose") {
        tally.reject(`not a [pose, payload] message (${frames.length} frames)`)
        continue
      }
      try {
        tally.add(readPose(decodePayload(frames[1])), receivedNs)
      } catch (error) {
        tally.reject(error.message)
      }
    }
    return "count"
  } finally {
    if (!socket.closed) socket.close()
  }
}

async function ping(options) {
  if (options.control === null) return { ping_ok: null, ping_error: null }
  const body = { cmd: "ping", id: 1 }
  if (options.token !== null) body.token = options.token
  try {
    const reply = await controlRequest(options.control, body, {
      timeoutMs: options.timeoutMs,
      curve: options.curve,
    })
    return { ping_ok: reply.ok === true, ping_error: reply.ok === true ? null : String(reply.error) }
  } catch (error) {
    return { ping_ok: false, ping_error: error.message }
  }
}

async function main() {
  let options
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (error) {
    console.error(`subscribe.js: ${error.message}\n\n${USAGE}`)
    return 2
  }
  if (options.help) {
    console.log(USAGE)
    return 0
  }
  const tally = new PoseTally()
  const stop = new AbortController()
  process.once("SIGINT", () => stop.abort())
  process.once("SIGTERM", () => stop.abort())
  const [stopped, pinged] = await Promise.all([receivePoses(options, tally, stop.signal), ping(options)])
  console.log(JSON.stringify({ ...tally.summary(), ...pinged, stopped }))
  const allPoses = options.count === 0 ? tally.received > 0 : tally.received >= options.count
  return allPoses && pinged.ping_ok !== false ? 0 : 1
}

process.exitCode = await main()
process.removeAllListeners("SIGINT")
process.removeAllListeners("SIGTERM")

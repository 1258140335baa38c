// Decoding and tallying v1 `pose` messages (docs/protocol.md, "pose").

import { Decoder } from "@msgpack/msgpack"

export const SCHEMA_VERSION = 1

// int64/uint64 become BigInt: `t_*_ns` exceed 2^53 once a host has been up for ~104 days.
const decoder = new Decoder({ useBigInt64: true })

/**
 * Decode one msgpack payload (a stream message's second frame, or a control reply).
 *
 * @param {Uint8Array} bytes
 * @returns {any}  maps become plain objects; 64-bit integers become BigInt
 */
export function decodePayload(bytes) {
  return decoder.decode(bytes)
}

/**
 * @typedef {object} Pose
 * @property {number} seq  message number, +1 per published pose
 * @property {number} frameIndex  camera frame the pose comes from
 * @property {bigint} tCaptureNs  capture time on the publishing host's monotonic clock
 * @property {number[][][]} keypoints  animals × keypoints × [x, y, likelihood]; NaN where not found
 * @property {[number, number, number]} shape  [animals, keypoints, 3]
 * @property {object} message  the whole decoded map (latency_ns, predicted, camera fields, ...)
 */

/**
 * Check a decoded `pose` map and return its fields in JavaScript types.
 *
 * Unknown keys are kept in `message` and otherwise ignored, as the protocol asks.
 *
 * @param {any} message  the decoded payload
 * @returns {Pose}
 * @throws {Error} for another schema version or a malformed pose
 */
export function readPose(message) {
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    throw new Error("pose payload is not a msgpack map")
  }
  if (message.v !== SCHEMA_VERSION) {
    throw new Error(`pose has schema version ${message.v}; this client reads ${SCHEMA_VERSION}`)
  }
  return {
    seq: integerField(message, "seq"),
    frameIndex: integerField(message, "frame_index"),
    tCaptureNs: BigInt(integerField(message, "t_capture_ns", { big: true })),
    keypoints: message.keypoints,
    shape: keypointsShape(message.keypoints),
    message,
  }
}

/**
 * The [animals, keypoints, 3] shape of a `keypoints` array.
 *
 * @param {any} keypoints
 * @returns {[number, number, number]}
 * @throws {Error} when animals differ in length or a keypoint is not [x, y, likelihood]
 */
export function keypointsShape(keypoints) {
  if (!Array.isArray(keypoints)) throw new Error("pose keypoints is not an array")
  const perAnimal = keypoints.length ? keypoints[0].length : 0
  keypoints.forEach((animal, a) => {
    if (!Array.isArray(animal) || animal.length !== perAnimal) {
      throw new Error(`pose keypoints: animal ${a} does not have ${perAnimal} keypoints`)
    }
    animal.forEach((point, k) => {
      if (!Array.isArray(point) || point.length !== 3 || !point.every((v) => typeof v === "number")) {
        throw new Error(`pose keypoints: animal ${a} keypoint ${k} is not [x, y, likelihood]`)
      }
    })
  })
  return [keypoints.length, perAnimal, 3]
}

/**
 * Counts of a pose stream as seen by one subscriber: gaps in `seq`, restarts, shape, latency.
 */
export class PoseTally {
  received = 0
  /** jumps in seq (each jump is one run of poses lost for this subscriber) */
  gaps = 0
  /** poses lost: the sum of the jumps */
  missing = 0
  /** seq went down: the session restarted */
  restarts = 0
  firstSeq = null
  lastSeq = null
  lastFrameIndex = null
  lastCaptureNs = null
  shape = null
  shapeChanges = 0
  rejected = 0
  lastRejection = null
  #captureToReceiveUs = []

  /**
   * Count one pose.
   *
   * @param {Pose} pose
   * @param {bigint} receivedNs  `process.hrtime.bigint()` when it arrived: the publisher's clock
   *   only on the same host (CLOCK_MONOTONIC on Linux), so latency means nothing elsewhere
   */
  add(pose, receivedNs) {
    if (this.lastSeq !== null) {
      if (pose.seq > this.lastSeq + 1) {
        this.gaps += 1
        this.missing += pose.seq - this.lastSeq - 1
      } else if (pose.seq <= this.lastSeq) {
        this.restarts += 1
      }
    }
    if (this.firstSeq === null) this.firstSeq = pose.seq
    if (this.shape !== null && pose.shape.some((n, i) => n !== this.shape[i])) this.shapeChanges += 1
    this.shape = pose.shape
    this.lastSeq = pose.seq
    this.lastFrameIndex = pose.frameIndex
    this.lastCaptureNs = pose.tCaptureNs
    this.received += 1
    this.#captureToReceiveUs.push(Number(receivedNs - pose.tCaptureNs) / 1e3)
  }

  /** Count a message that was not a readable v1 pose. */
  reject(reason) {
    this.rejected += 1
    this.lastRejection = reason
  }

  /** The counts as a JSON-ready object (BigInt as a decimal string). */
  summary() {
    const latency = [...this.#captureToReceiveUs].sort((a, b) => a - b)
    return {
      received: this.received,
      gaps: this.gaps,
      missing: this.missing,
      restarts: this.restarts,
      first_seq: this.firstSeq,
      last_seq: this.lastSeq,
      last_frame_index: this.lastFrameIndex,
      last_t_capture_ns: this.lastCaptureNs === null ? null : this.lastCaptureNs.toString(),
      keypoints_shape: this.shape,
      keypoints_shape_changes: this.shapeChanges,
      capture_to_receive_us: latency.length
        ? {
            p50: round1(latency[Math.floor((latency.length - 1) / 2)]),
            p99: round1(latency[Math.max(0, Math.ceil(0.99 * latency.length) - 1)]),
            max: round1(latency.at(-1)),
          }
        : null,
      rejected: this.rejected,
      last_rejection: this.lastRejection,
    }
  }
}

function integerField(message, name, { big = false } = {}) {
  const value = message[name]
  if (typeof value === "bigint") {
    if (!big && (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER))) {
      throw new Error(`pose ${name} ${value} is beyond 2^53`)
    }
    return big ? value : Number(value)
  }
  if (!Number.isInteger(value)) throw new Error(`pose ${name} is not an integer: ${value}`)
  return value
}

function round1(x) {
  return Math.round(x * 10) / 10
}

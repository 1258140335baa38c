import assert from "node:assert/strict"
import { test } from "node:test"

import { encode } from "@msgpack/msgpack"

import { PoseTally, decodePayload, keypointsShape, readPose } from "../lib/pose.js"

const K3 = [
  [312.4, 201.9, 0.98],
  [300.2, 190.1, 0.95],
  [NaN, NaN, 0.0],
]

function payload(fields) {
  // BigInt encodes as a msgpack int64/uint64, as Python's msgpack does for large ints.
  return encode(
    { v: 1, seq: 0, frame_index: 0, t_capture_ns: 10n ** 15n, keypoints: [K3], unknown_key: "kept", ...fields },
    { useBigInt64: true },
  )
}

test("a v1 pose decodes with t_capture_ns exact beyond 2^53 and NaN kept", () => {
  const t = 2n ** 60n + 7n
  const pose = readPose(decodePayload(payload({ seq: 1042, frame_index: 1187, t_capture_ns: t })))
  assert.equal(pose.seq, 1042)
  assert.equal(pose.frameIndex, 1187)
  assert.equal(pose.tCaptureNs, t)
  assert.deepEqual(pose.shape, [1, 3, 3])
  assert.deepEqual(pose.keypoints[0][0], [312.4, 201.9, 0.98])
  assert.ok(Number.isNaN(pose.keypoints[0][2][0]))
  assert.equal(pose.message.unknown_key, "kept")
})

test("another schema version or a malformed pose is refused", () => {
  assert.throws(() => readPose(decodePayload(payload({ v: 2 }))), /schema version 2/)
  assert.throws(() => readPose(decodePayload(payload({ seq: 1.5 }))), /seq is not an integer/)
  assert.throws(() => readPose(decodePayload(encode([1, 2]))), /not a msgpack map/)
})

test("the shape is animals x keypoints x 3, and ragged keypoints are refused", () => {
  assert.deepEqual(keypointsShape([K3, K3]), [2, 3, 3])
  assert.deepEqual(keypointsShape([]), [0, 0, 3])
  assert.throws(() => keypointsShape([K3, K3.slice(1)]), /animal 1 does not have 3/)
  assert.throws(() => keypointsShape([[[1, 2]]]), /keypoint 0 is not \[x, y, likelihood\]/)
})

test("the tally counts jumps in seq as gaps, their sizes as missing, and decreases as restarts", () => {
  const tally = new PoseTally()
  for (const seq of [5, 6, 9, 10, 14, 0, 1]) {
    tally.add(readPose(decodePayload(payload({ seq, t_capture_ns: 1_000_000n }))), 1_250_000n)
  }
  const s = tally.summary()
  assert.equal(s.received, 7)
  assert.equal(s.gaps, 2) // 6 -> 9, 10 -> 14
  assert.equal(s.missing, 5) // 7, 8, 11, 12, 13
  assert.equal(s.restarts, 1) // 14 -> 0
  assert.equal(s.first_seq, 5)
  assert.equal(s.last_seq, 1)
  assert.equal(s.last_t_capture_ns, "1000000")
  assert.deepEqual(s.capture_to_receive_us, { p50: 250, p99: 250, max: 250 })
  assert.doesNotThrow(() => JSON.stringify(s))
})

import assert from "node:assert/strict"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"

import { curveClientOptions, readCertificate } from "../lib/keys.js"

// Keys as pyzmq writes them; Z85 keys may hold ':', '.', '{', ... but never '"'.
const PUBLIC = "x<xV^{2Q{%KCwMY5<hJv>H:i5&q>563nz}IU75i0"
const SECRET = ")[FMNb3G+9125um+5iKl/NI3v!{O:5Bx?qTSMgei"
const SERVER = "]GZ=x}}t-:bZbfvFUgM36z/9pG3KriKu}aa?NOwM"

function certificate(lines) {
  return [
    "#   ****  Generated on 2026-01-01 by pyzmq  ****",
    "#   ZeroMQ CURVE **Secret** Certificate",
    "",
    "metadata",
    "curve",
    ...lines.map((line) => `    ${line}`),
    "",
  ].join("\n")
}

function files() {
  const dir = mkdtempSync(join(tmpdir(), "rtp-keys-"))
  const write = (name, text) => {
    writeFileSync(join(dir, name), text)
    return join(dir, name)
  }
  return {
    secret: write("lab.key_secret", certificate([`public-key = "${PUBLIC}"`, `secret-key = "${SECRET}"`])),
    public: write("lab.key", certificate([`public-key = "${PUBLIC}"`])),
    server: write("rig.key", certificate([`public-key = "${SERVER}"`])),
    garbage: write("notes.txt", "public-key = \"too short\"\n"),
  }
}

test("a pyzmq secret certificate gives both keys, a public one only its public key", () => {
  const f = files()
  assert.deepEqual(readCertificate(f.secret), { publicKey: PUBLIC, secretKey: SECRET })
  assert.deepEqual(readCertificate(f.public), { publicKey: PUBLIC, secretKey: null })
})

test("client options take the client's pair and the server's public key", () => {
  const f = files()
  assert.deepEqual(curveClientOptions(f.secret, f.server), {
    curvePublicKey: PUBLIC,
    curveSecretKey: SECRET,
    curveServerKey: SERVER,
  })
})

test("a client .key instead of its .key_secret is refused with what to pass", () => {
  const f = files()
  assert.throws(() => curveClientOptions(f.public, f.server), /no secret-key.*\.key_secret/)
})

test("a file without a 40-character Z85 key, or none at all, is refused", () => {
  const f = files()
  assert.throws(() => readCertificate(f.garbage), /not a 40-character Z85 key/)
  assert.throws(() => readCertificate(join(tmpdir(), "no-such-dir", "rig.key")), /cannot read key file/)
})

// CURVE keys from pyzmq certificate files (`realtime-pose keys` / zmq.auth.create_certificates).

import { readFileSync } from "node:fs"

const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/

/**
 * Read the Z85 keys of a pyzmq certificate file.
 *
 * A certificate is ZPL text whose `curve` section holds `public-key = "..."` and, in a
 * `.key_secret` file, `secret-key = "..."`.
 *
 * @param {string} path  the `.key` or `.key_secret` file
 * @returns {{publicKey: string, secretKey: string | null}}  40-character Z85 keys
 * @throws {Error} when the file cannot be read or holds no valid public key
 */
export function readCertificate(path) {
  let text
  try {
    text = readFileSync(path, "utf8")
  } catch (error) {
    throw new Error(`cannot read key file ${path}: ${error.message}`)
  }
  const publicKey = keyValue(text, "public-key", path)
  if (publicKey === null) {
    throw new Error(`${path} holds no public-key; is it a pyzmq certificate (.key or .key_secret)?`)
  }
  return { publicKey, secretKey: keyValue(text, "secret-key", path) }
}

/**
 * The CURVE client options of a zeromq.js socket, from the two files a lab is given.
 *
 * @param {string} clientSecretFile  this client's `clients/<name>.key_secret`
 * @param {string} serverPublicFile  the rig's `rig.key`
 * @returns {{curvePublicKey: string, curveSecretKey: string, curveServerKey: string}}
 */
export function curveClientOptions(clientSecretFile, serverPublicFile) {
  const client = readCertificate(clientSecretFile)
  if (client.secretKey === null) {
    throw new Error(
      `${clientSecretFile} holds no secret-key: pass the client's .key_secret file, not its .key`,
    )
  }
  const server = readCertificate(serverPublicFile)
  return {
    curvePublicKey: client.publicKey,
    curveSecretKey: client.secretKey,
    curveServerKey: server.publicKey,
  }
}

function keyValue(text, name, path) {
  // ZPL: `name = "value"` (or 'value', or bare) on its own indented line.
  const line = new RegExp(`^\\s*${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|(\\S+))\\s*$`, "m")
  const match = text.match(line)
  if (match === null) return null
  const value = match[1] ?? match[2] ?? match[3]
  if (!Z85_KEY.test(value)) {
    throw new Error(`${path}: ${name} is not a 40-character Z85 key`)
  }
  return value
}

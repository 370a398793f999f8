// @ts-check
/**
 * Certificates for the HTTPS tests: a self-signed one made with openssl, and
 * the hash Chromium's `--ignore-certificate-errors-spki-list` takes to trust
 * a certificate without installing it (a browser trusting it this way treats
 * the origin as secure, as it would with a certificate from a CA).
 */

import { execFile } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo.
 * @param {string} pem
 * @returns {string}
 */
export function spkiHash(pem) {
  const spki = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

/**
 * A self-signed certificate for 127.0.0.1 and localhost (P-256), made with
 * openssl in `dir`.
 * @param {string} dir
 * @returns {Promise<{cert: string, key: string, spki: string}>}
 */
export async function makeCertificate(dir) {
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  await run("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
    "-subj", "/CN=confcast test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout", key, "-out", cert,
  ]);
  return { cert, key, spki: spkiHash(await readFile(cert, "utf8")) };
}

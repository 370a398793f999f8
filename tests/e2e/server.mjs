// @ts-check
/**
 * Starts the confcast binary for a test on a free loopback port with a
 * fresh data directory, waits until it is healthy, and stops it again.
 *
 * The binary is `target/debug/confcast` (build it with
 * `cargo build -p confcast-server`), or the path in CONFCAST_BIN.
 */

import { spawn } from "node:child_process";
import { get as httpsGet } from "node:https";
import { access, constants, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * @typedef {object} RunningServer
 * @property {string} baseUrl e.g. `http://127.0.0.1:40123`
 * @property {string} dataDir
 * @property {() => string} logs what the server printed so far
 * @property {() => Promise<void>} stop
 * @property {() => Promise<void>} kill ends the process at once (SIGKILL), as a crash would
 */

/**
 * Finds a free TCP port on 127.0.0.1 (listen on port 0, read it, close).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      if (address === null || typeof address === "string") {
        probe.close();
        reject(new Error("could not read the probe port"));
        return;
      }
      const { port } = address;
      probe.close(() => resolve(port));
    });
  });
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @returns {Promise<string>} */
async function binaryPath() {
  const bin = path.resolve(ROOT, process.env.CONFCAST_BIN || path.join("target", "debug", "confcast"));
  try {
    await access(bin, constants.X_OK);
  } catch {
    throw new Error(
      `confcast binary not found at ${bin}: build it with \`cargo build -p confcast-server\` or set CONFCAST_BIN`,
    );
  }
  return bin;
}

/**
 * @param {object} [options]
 * @param {number} [options.startupMs] how long to wait for /healthz
 * @param {string} [options.host] the address to listen on (HTTP and media; pages still use 127.0.0.1)
 * @param {string[]} [options.args] more `serve` arguments
 * @param {boolean} [options.https] the arguments make it serve HTTPS (its certificate is not checked here)
 * @returns {Promise<RunningServer>}
 */
export async function startServer({ startupMs = 30_000, host = "127.0.0.1", args = [], https = false } = {}) {
  const bin = await binaryPath();
  let lastError = new Error("server did not start");
  // The free port could be taken between probing and binding: try again then.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const dataDir = await mkdtemp(path.join(tmpdir(), "confcast-e2e-data-"));
    try {
      return await startOnce(bin, dataDir, startupMs, host, args, https ? "https" : "http");
    } catch (err) {
      await rm(dataDir, { recursive: true, force: true });
      lastError = /** @type {Error} */ (err);
      if (!(err instanceof ExitedEarly)) break;
    }
  }
  throw lastError;
}

class ExitedEarly extends Error {}

/**
 * @param {string} bin
 * @param {string} dataDir
 * @param {number} startupMs
 * @param {string} host
 * @param {string[]} args
 * @param {"http" | "https"} scheme
 * @returns {Promise<RunningServer>}
 */
async function startOnce(bin, dataDir, startupMs, host, args, scheme) {
  const port = await freePort();
  const baseUrl = `${scheme}://127.0.0.1:${port}`;
  const child = spawn(bin, ["serve", "--listen", `${host}:${port}`, "--media-port", "0", "--data", dataDir, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  /** @param {Buffer} chunk */
  const collect = (chunk) => {
    output += chunk.toString("utf8");
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  /** @type {Promise<number | null>} */
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  child.once("error", (err) => {
    output += `\nspawn error: ${err.message}`;
  });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  };

  const deadline = Date.now() + startupMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await rm(dataDir, { recursive: true, force: true });
      throw new ExitedEarly(`confcast exited during startup (code ${child.exitCode}):\n${output}`);
    }
    try {
      const status = scheme === "https" ? await httpsStatus(`${baseUrl}/healthz`) : (await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) })).status;
      if (status === 200) {
        return { baseUrl, dataDir, logs: () => output, stop, kill };
      }
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`confcast did not answer GET /healthz with 200 within ${startupMs} ms:\n${output}`);
}

/**
 * The status of a GET over HTTPS, whatever certificate the server has.
 * @param {string} url
 * @returns {Promise<number>}
 */
function httpsStatus(url) {
  return new Promise((resolve, reject) => {
    const request = httpsGet(url, { rejectUnauthorized: false, timeout: 2_000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.on("error", reject);
  });
}

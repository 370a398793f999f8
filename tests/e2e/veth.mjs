// @ts-check
/**
 * A veth pair with two test addresses inside the test's private network
 * namespace, for peers that will not use loopback (aiortc, libnice, coturn).
 * Both ends stay in the namespace; the pair goes when the namespace does,
 * or with `remove()`.
 */

import { execFileSync } from "node:child_process";

/** Runs `ip` with `args`; throws with its error output on failure. @param {string[]} args */
export function ip(args) {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * Makes `name`0 with `first` and `name`1 with `second` (both /24), up; an
 * older pair of that name (a test that died) is replaced.
 * @param {string} name e.g. "cfw"
 * @param {string} first
 * @param {string} second
 * @returns {{ remove: () => void }}
 */
export function addVethPair(name, first, second) {
  const remove = () => {
    try {
      ip(["link", "del", `${name}0`]);
    } catch {
      // Not there.
    }
  };
  remove();
  ip(["link", "add", `${name}0`, "type", "veth", "peer", "name", `${name}1`]);
  ip(["addr", "add", `${first}/24`, "dev", `${name}0`]);
  ip(["addr", "add", `${second}/24`, "dev", `${name}1`]);
  ip(["link", "set", `${name}0`, "up"]);
  ip(["link", "set", `${name}1`, "up"]);
  return { remove };
}

// One headless Chromium on the room page, driven from the command line, for tests written in
// another language (tests/netns/test_p2p_browser.py runs it with `ip netns exec` so that the
// browser sits behind a NAT of that namespace: playwright starts Chromium as its own child).
//
//   node tests/e2e/lib/room-page-driver.mjs --url URL [--stun-only] [--expect TEXT] [--say TEXT]
//                                           [--timeout SECONDS]
//
// Opens URL (a /room/NAME page), waits for one peer whose data channel is open, then for a chat
// message TEXT from it (--expect), then sends TEXT (--say), and prints one JSON line:
// {ok, peers: window.turnpike.peers() (with `trickled`, localType, remoteType), messages, log}.
// --stun-only drops the TURN servers from every RTCPeerConnection the page makes, as a browser
// without a TURN server would have: the page then has host and server-reflexive candidates only.
// Exit 0 when every wait succeeded, 1 otherwise (the JSON then has `error`).

import { parseArgs } from 'node:util';

import { launchBrowser, until } from './browser.mjs';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    'stun-only': { type: 'boolean', default: false },
    expect: { type: 'string' },
    say: { type: 'string' },
    timeout: { type: 'string', default: '60' },
  },
});
if (!args.url) {
  console.error('usage: room-page-driver.mjs --url URL [--stun-only] [--expect TEXT] [--say TEXT]');
  process.exit(2);
}
const timeout = Number(args.timeout) * 1000;

/** Keeps only stun: URLs in the configuration of every RTCPeerConnection (runs in the page). */
function stunOnly() {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function RTCPeerConnection(config = {}, ...rest) {
    const iceServers = (config.iceServers ?? [])
      .map((server) => {
        const urls = [server.urls].flat().filter((url) => String(url).startsWith('stun:'));
        return { ...server, urls };
      })
      .filter((server) => server.urls.length > 0);
    return new Native({ ...config, iceServers }, ...rest);
  };
  window.RTCPeerConnection.prototype = Native.prototype;
}

const log = [];
const browser = await launchBrowser();
let result = { ok: false };
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (message) => log.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log.push(`pageerror: ${error.message}`));
  if (args['stun-only']) await page.addInitScript(stunOnly);
  await page.goto(args.url);
  const hook = () => page.evaluate(() => ({
    peers: window.turnpike.peers(),
    messages: window.turnpike.messages(),
  }));
  await until('a peer with an open data channel', hook,
    (s) => s.peers.some((p) => p.state === 'connected' && p.channel === 'open'), { timeout });
  if (args.expect) {
    await until(`the message "${args.expect}"`, hook,
      (s) => s.messages.some((m) => !m.self && m.text === args.expect), { timeout });
  }
  if (args.say) {
    const sent = await page.evaluate((text) => window.turnpike.sendChat(text), args.say);
    if (sent < 1) throw new Error(`"${args.say}" went to ${sent} peers`);
  }
  // The selected pair's types come from getStats, refreshed every second.
  const state = await until('the selected pair', hook,
    (s) => s.peers.some((p) => p.localType && p.remoteType), { timeout: 10_000 });
  result = { ok: true, ...state };
} catch (error) {
  result = { ok: false, error: String(error?.message ?? error) };
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ...result, log }));
process.exit(result.ok ? 0 : 1);

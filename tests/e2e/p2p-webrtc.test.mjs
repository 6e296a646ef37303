// `turnpike p2p` meets the room page (issue 16): headless Chromium on /room/NAME and the CLI
// (spawned with piped stdin and stdout) in the same room on loopback. The CLI answers the page's
// SDP offer with str0m (DTLS, SCTP), and the two chat over the page's `chat` data channel: a
// line typed into the CLI shows in the page's chat log, a message sent from the page is printed
// by the CLI. Both join orders: the CLI waiting when the page comes, and the page waiting when
// the CLI comes (then the CLI first offers in its own format, which the page ignores, and the
// page offers WebRTC). Then: the CLI's relayed candidate trickled after its answer, and the page
// switching to relay-only mid-chat (a new connection the CLI answers); relay ↔ relay chat; a
// file each way, directly and over the relay only.
//
// Run: cd tests/e2e && node --test p2p-webrtc.test.mjs   (needs `cargo build -p turnpike` and
// /usr/bin/chromium; TURNPIKE_BIN picks another binary)

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { Pages, until } from './lib/browser.mjs';
import { joined, randomRoom } from './lib/room.mjs';
import { P2p } from './lib/p2p.mjs';
import { startTurnpike } from './lib/turnpike.mjs';

const TEST_TIMEOUT_MS = 120_000;

/**
 * Runs `body({server, open, p2p})` with a fresh `turnpike serve` on 127.0.0.1; every page and
 * CLI started through the env is closed or killed at the end, and a failure's message carries
 * the page's console, the CLI's output and the server's log.
 */
async function withServer(t, shots, body) {
  const server = await startTurnpike(['--relay-ip', '127.0.0.1']);
  const pages = new Pages(`p2p-webrtc-${shots}`);
  const clis = [];
  const base = `http://127.0.0.1:${server.httpPort}`;
  const env = {
    server,
    open: async (urlPath, name) => pages.open(await pages.browser(), base + urlPath, name),
    p2p: (room, args) => {
      const cli = new P2p(server, room, args);
      clis.push(cli);
      return cli;
    },
  };
  let failure = null;
  try {
    await body(env);
    pages.assertNoErrors();
  } catch (e) {
    failure = e;
  } finally {
    await pages.close();
    for (const cli of clis) await cli.kill();
  }
  const { code, signal } = await server.stop();
  if (failure) {
    failure.message += pages.report();
    for (const cli of clis) failure.message += `\n--- turnpike p2p ---\n${cli.output()}`;
    failure.message += `\n--- turnpike serve (exit code ${code}, signal ${signal}) ---\n${server.output()}`;
    throw failure;
  }
  assert.equal(code, 0, `turnpike serve exited with code ${code} signal ${signal}:\n${server.output()}`);
}

/** Waits for the page's chat log to hold `text` from `from` (the page's hook and its DOM). */
async function pageGot(page, from, text) {
  const got = await until(
    `the page to show "${text}"`,
    () => page.evaluate((t) => ({
      hook: window.turnpike.messages().filter((m) => m.text === t),
      log: [...document.querySelectorAll('[data-testid="chat-log"] li')]
        .map((li) => ({ from: li.querySelector('.from')?.textContent, text: li.querySelector('.text')?.textContent }))
        .filter((m) => m.text === t),
    }), text),
    (s) => s.hook.length > 0 && s.log.length > 0,
    { timeout: 15_000 },
  );
  assert.deepEqual(got.hook.map((m) => ({ from: m.from, self: m.self })), [{ from, self: false }]);
  assert.deepEqual(got.log, [{ from, text }]);
}

/** The page's view of the CLI once the data channel is open. */
async function pageConnected(page, cliId) {
  return until(
    `the page's connection to ${cliId} with an open channel`,
    () => page.evaluate(() => window.turnpike.peers()),
    (peers) => peers.some((p) => p.id === cliId && p.state === 'connected' && p.channel === 'open'),
    { timeout: 45_000 },
  );
}

/**
 * One message each way, asserted on both sides; then the CLI's stdin ends and it exits 0.
 * `connectedCheck(cliId)` runs once both sides are connected.
 */
async function chatBothWays(page, cli, connectedCheck = async () => {}) {
  const cliId = (await cli.line(/^joined room /, 'the CLI to join')).split(' ')[4];
  await cli.line(/^connected to peer .* over WebRTC/, 'the CLI to connect', 45_000);
  await pageConnected(page, cliId);
  await connectedCheck(cliId);
  cli.type('hello from the CLI');
  await pageGot(page, cliId, 'hello from the CLI');
  await page.fill('[data-testid="chat-input"]', 'hello from the page');
  await page.click('[data-testid="chat-send"]');
  const pageId = await page.evaluate(() => window.turnpike.id);
  await cli.line(/^peer> hello from the page$/, 'the page\'s message on the CLI');
  assert.ok(cli.stdout.some((l) => l.includes(`peer ${pageId} is a browser`)), cli.output());
  const status = await cli.finish();
  assert.deepEqual(status, { code: 0, signal: null }, cli.output());
}

test('p2p WebRTC: the CLI waits in the room, the page joins and offers; chat both ways', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withServer(t, 'cli-first', async ({ open, p2p }) => {
    const room = randomRoom();
    const cli = p2p(room, ['--timeout', '60']);
    await cli.line(/^waiting for a peer/, 'the CLI to wait');
    const page = await open(`/room/${room}`, 'page');
    await joined(page, 'page');
    await chatBothWays(page, cli);
  });
});

test('p2p WebRTC: the page waits in the room, the CLI joins; the page offers WebRTC; chat both ways', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withServer(t, 'page-first', async ({ open, p2p }) => {
    const room = randomRoom();
    const page = await open(`/room/${room}`, 'page');
    await joined(page, 'page');
    const cli = p2p(room, ['--timeout', '60']);
    await chatBothWays(page, cli);
  });
});

test('p2p WebRTC trickle and replacement: the CLI answers at once and trickles its relayed candidate; the page turns relay-only mid-chat, the CLI answers the new connection and the chat goes on over the relay', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withServer(t, 'trickle-replace', async ({ open, p2p }) => {
    const room = randomRoom();
    const cli = p2p(room, ['--timeout', '60']);
    await cli.line(/^waiting for a peer/, 'the CLI to wait');
    const page = await open(`/room/${room}`, 'page');
    await joined(page, 'page');
    const cliId = (await cli.line(/^joined room /, 'the CLI to join')).split(' ')[4];
    // RFC 8838: the answer carries the host candidate; the relayed one comes later, trickled in
    // a `candidate` frame once the Allocate is answered. The page records what it was trickled.
    const gathered = await cli.line(/^gathered relay /, 'the CLI\'s relayed candidate', 45_000);
    const relayed = gathered.split(' ')[2];
    assert.match(relayed, /^127\.0\.0\.1:\d+$/);
    await until(
      `the page to be trickled the CLI's relayed candidate ${relayed}`,
      () => page.evaluate(() => window.turnpike.peers()),
      (ps) => ps.some((p) => p.id === cliId && p.trickled.some((c) => c.type === 'relay' && c.address === relayed)),
      { timeout: 15_000 },
    );
    await cli.line(/^connected to peer .* over WebRTC/, 'the CLI to connect', 45_000);
    await pageConnected(page, cliId);
    cli.type('before the switch');
    await pageGot(page, cliId, 'before the switch');

    // The switch: a new RTCPeerConnection (new session id, ICE credentials and certificate)
    // with iceTransportPolicy 'relay'. The page replaces it itself whichever side is polite,
    // since the CLI's frames say it only answers; the CLI answers with a new connection.
    await page.check('[data-testid="relay-only"]');
    await cli.line(/^peer .* replaced its connection: answering its new offer$/, 'the CLI to see the new connection', 15_000);
    await until(
      'the CLI to connect the new connection',
      () => cli.stdout.filter((l) => /^connected to peer .* over WebRTC/.test(l)).length,
      (n) => n >= 2,
      { timeout: 45_000 },
    );
    const peers = await until(
      'the page\'s new connection to the CLI over its relay',
      () => page.evaluate(() => window.turnpike.peers()),
      (ps) => ps.some((p) => p.id === cliId && p.state === 'connected' && p.channel === 'open' && p.localType === 'relay'),
      { timeout: 45_000 },
    );
    assert.equal(peers.find((p) => p.id === cliId).restarts, 0, 'a new connection, not an ICE restart');
    cli.type('after the switch');
    await pageGot(page, cliId, 'after the switch');
    await page.fill('[data-testid="chat-input"]', 'from the relay');
    await page.click('[data-testid="chat-send"]');
    await cli.line(/^peer> from the relay$/, 'the page\'s message over the new connection');
    const status = await cli.finish();
    assert.deepEqual(status, { code: 0, signal: null }, cli.output());
  });
});

test('p2p WebRTC relay-only: the page (?relay=1) and the CLI (--relay-only) talk through our TURN relay, relay ↔ relay', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withServer(t, 'relay-only', async ({ open, p2p }) => {
    const room = randomRoom();
    const cli = p2p(room, ['--timeout', '60', '--relay-only']);
    await cli.line(/^waiting for a peer/, 'the CLI to wait');
    const page = await open(`/room/${room}?relay=1`, 'page');
    await joined(page, 'page');
    const gathered = await cli.line(/^gathered relay /, 'the CLI\'s relayed candidate', 45_000);
    assert.match(gathered, /^gathered relay 127\.0\.0\.1:\d+$/);
    await chatBothWays(page, cli, async (cliId) => {
      // The page's selected pair: its relay to the CLI's relay (the CLI offered nothing else).
      const peers = await until(
        'the page to show relay ↔ relay',
        () => page.evaluate(() => window.turnpike.peers()),
        (ps) => ps.some((p) => p.id === cliId && p.localType === 'relay' && p.remoteType === 'relay'),
        { timeout: 15_000 },
      );
      assert.ok(peers.length === 1, JSON.stringify(peers));
    });
  });
});

/** The page's transfers (hook), once one in `direction` is no longer active. */
async function transferDone(page, direction) {
  const ts = await until(
    `the page's ${direction} transfer to finish`,
    () => page.evaluate(() => window.turnpike.transfers()),
    (list) => list.some((x) => x.direction === direction && ['verified', 'failed'].includes(x.state)),
    { timeout: 45_000 },
  );
  return ts.find((x) => x.direction === direction);
}

/** The transfer rows of the page as the user sees them. */
async function transferRows(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-testid="transfer"]')].map((li) => ({
    direction: li.dataset.direction,
    state: li.dataset.state,
    sha256: li.querySelector('[data-testid="transfer-sha256"]').textContent,
    status: li.querySelector('[data-testid="transfer-status"]').textContent,
    progress: [li.querySelector('progress').value, li.querySelector('progress').max],
    download: li.querySelector('[data-testid="transfer-download"]')?.getAttribute('download') ?? null,
  })));
}

/**
 * `turnpike p2p --send FILE` (with `--relay-only` and the page at `?relay=1` when `relayOnly`)
 * to a page that waits in a fresh room: 200 kB, the CLI hears the page's verdict, the page's
 * row shows the digest and its download link gives the very bytes.
 */
async function cliSendsToPage({ open, p2p }, dir, relayOnly) {
  // The CLI sends: 200 kB from a file; the page offers it for download with its digest.
  const fromCli = crypto.randomBytes(200_000);
  const fromCliSha = crypto.createHash('sha256').update(fromCli).digest('hex');
  const file = path.join(dir, 'from-cli.bin');
  fs.writeFileSync(file, fromCli);
  const room = randomRoom();
  const sender = p2p(room, ['--timeout', '60', '--send', file, ...(relayOnly ? ['--relay-only'] : [])]);
  await sender.line(/^waiting for a peer/, 'the sender to wait');
  const page2 = await open(`/room/${room}${relayOnly ? '?relay=1' : ''}`, 'page-receives');
  await joined(page2, 'page-receives');
  if (relayOnly) {
    // The CLI offers its relayed address only, and the page (?relay=1) uses relays only.
    const gathered = await sender.line(/^gathered relay /, 'the sender\'s relayed candidate', 45_000);
    assert.match(gathered, /^gathered relay 127\.0\.0\.1:\d+$/);
  }
  const done = await sender.line(/^sent from-cli\.bin: /, 'the sender to hear the page verified it', 45_000);
  assert.match(done, new RegExp(`^sent from-cli\\.bin: 200000 bytes in [0-9.]+ s, the receiver verified the SHA-256 ${fromCliSha}$`));
  assert.deepEqual(await sender.waitExit(), { code: 0, signal: null }, sender.output());
  const received = await transferDone(page2, 'in');
  assert.deepEqual([received.state, received.ok, received.sha256, received.digest, received.done, received.size, received.name],
    ['verified', true, fromCliSha, fromCliSha, 200_000, 200_000, 'from-cli.bin']);
  const [row2] = await transferRows(page2);
  assert.deepEqual(row2, { direction: 'in', state: 'verified', sha256: `SHA-256 ${fromCliSha}`, status: 'verified', progress: [200_000, 200_000], download: 'from-cli.bin' });
  // The download link gives the very bytes, under the sender's file name.
  const [download] = await Promise.all([
    page2.waitForEvent('download', { timeout: 15_000 }),
    page2.click('[data-testid="transfer-download"]'),
  ]);
  assert.equal(download.suggestedFilename(), 'from-cli.bin');
  const saved = path.join(dir, 'downloaded.bin');
  await download.saveAs(saved);
  assert.ok(fs.readFileSync(saved).equals(fromCli), 'downloaded bytes differ');
}

/**
 * The page sends a file to `turnpike p2p --receive DIR` (with `--relay-only` and the page at
 * `?relay=1` when `relayOnly`) in a fresh room: 300 kB of random bytes (19 chunks of 16 KiB)
 * through the file input; the CLI saves the very bytes and verifies the digest, and the page's
 * row shows the verdict.
 */
async function pageSendsToCli({ open, p2p }, dir, relayOnly) {
  const fromPage = crypto.randomBytes(300_000);
  const fromPageSha = crypto.createHash('sha256').update(fromPage).digest('hex');
  const room = randomRoom();
  const receiver = p2p(room, ['--timeout', '60', '--receive', dir, ...(relayOnly ? ['--relay-only'] : [])]);
  await receiver.line(/^waiting for a peer/, 'the receiver to wait');
  const page = await open(`/room/${room}${relayOnly ? '?relay=1' : ''}`, 'page-sends');
  await joined(page, 'page-sends');
  await receiver.line(/^connected to peer .* over WebRTC/, 'the receiver to connect', 45_000);
  const cliId = (await receiver.line(/^joined room /, 'the receiver to join')).split(' ')[4];
  await pageConnected(page, cliId);
  if (relayOnly) {
    // The page's selected pair (from its stats, refreshed every second): relay ↔ relay.
    await until(
      'the page to show relay ↔ relay',
      () => page.evaluate(() => window.turnpike.peers()),
      (ps) => ps.some((p) => p.id === cliId && p.localType === 'relay' && p.remoteType === 'relay'),
      { timeout: 15_000 },
    );
  }
  await page.setInputFiles('[data-testid="file-input"]', { name: 'from-page.bin', mimeType: 'application/octet-stream', buffer: fromPage });
  const got = await receiver.line(/^received from-page\.bin: /, 'the receiver to verify the file', 45_000);
  assert.equal(got, `received from-page.bin: 300000 bytes, SHA-256 ${fromPageSha} verified, saved as ${path.join(dir, 'from-page.bin')}`);
  assert.ok(fs.readFileSync(path.join(dir, 'from-page.bin')).equals(fromPage), 'saved bytes differ');
  assert.deepEqual(fs.readdirSync(dir), ['from-page.bin'], 'no partial file left');
  assert.deepEqual(await receiver.waitExit(), { code: 0, signal: null }, receiver.output());
  const sent = await transferDone(page, 'out');
  assert.deepEqual([sent.state, sent.ok, sent.sha256, sent.digest, sent.done, sent.size], ['verified', true, fromPageSha, fromPageSha, 300_000, 300_000]);
  const [row] = await transferRows(page);
  assert.deepEqual(row, { direction: 'out', state: 'verified', sha256: `SHA-256 ${fromPageSha}`, status: 'verified', progress: [300_000, 300_000], download: null });
}

/** A file each way, in fresh rooms and directories: the page to the CLI, the CLI to the page. */
async function filesBothWays(env, prefix, relayOnly) {
  const inbox = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}in-`));
  const outbox = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}out-`));
  try {
    await pageSendsToCli(env, inbox, relayOnly);
    await cliSendsToPage(env, outbox, relayOnly);
  } finally {
    fs.rmSync(inbox, { recursive: true, force: true });
    fs.rmSync(outbox, { recursive: true, force: true });
  }
}

test('p2p WebRTC files: the page sends a file to `--receive DIR`, `--send FILE` sends one to the page; SHA-256 checked on both sides', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withServer(t, 'files', async (env) => filesBothWays(env, 'p2p-webrtc-', false));
});

test('p2p WebRTC files over the relay only: `--relay-only --receive DIR` from a page at ?relay=1 and `--relay-only --send FILE` to one, SHA-256 checked on both sides', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withServer(t, 'files-relay', async (env) => filesBothWays(env, 'p2p-webrtc-relay-', true));
});

// The built-in web app (web/, served by `turnpike serve`) in real headless Chromium: the room page,
// the diagnostics page and the index page, through their test hooks (`window.turnpike`,
// `window.turnpikeDiagnostics`) and data-testids (docs/web.md).
//
// Every test starts its own `turnpike serve` the way the README does it: no --users, so the
// pages get their TURN credentials from the server itself (`/api/ice-servers` and the signaling
// `joined` frame, minted from the secret the server made up at start). Only the ports are free
// ones, and relays are on 127.0.0.1 in a random range of 1000 ports so that our relay
// candidates can be recognised. Each test saves a screenshot of every page to test-output/ and
// asserts that the server exits with status 0 after SIGTERM.
//
// What each test proves, and why srflx is asserted only from a non-loopback origin:
// docs/testing-web.md.
//
// Run: cd tests/e2e && node --test web-app.test.mjs   (needs `cargo build -p turnpike` and
// /usr/bin/chromium; TURNPIKE_BIN picks another binary; --test-name-pattern picks tests)

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import os from 'node:os';
import { test } from 'node:test';

import { Pages, sleep, slug, until } from './lib/browser.mjs';
import { card, chat, connectedTo, joined, listedPeers, randomRoom } from './lib/room.mjs';
import { startTurnpike } from './lib/turnpike.mjs';

const TEST_TIMEOUT_MS = 90_000;
// The hard-kill case waits for the signaling grace window (30 s) on top of the rest.
const GRACE_TEST_TIMEOUT_MS = 150_000;
const GRACE_WINDOW_MS = 30_000;
// Chrome gives up on a STUN/TURN server that does not answer after about 40 s: gathering may
// take that long before the verdict says why.
const GATHER_TIMEOUT_MS = 55_000;

/** A relay port range of 1000 ports at a random place in 40000..59999, to recognise our relays. */
function relayRange() {
  const min = 40000 + 1000 * crypto.randomInt(0, 20);
  return { min, max: min + 999 };
}

/** This machine's first non-loopback IPv4 address, or null. */
function lanIPv4() {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs || []) {
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.')) return a.address;
    }
  }
  return null;
}

const LAN_IP = lanIPv4();

/**
 * Runs `body(env)` with a fresh `turnpike serve` (`host`: its STUN/TURN and HTTP listen IP;
 * `pageHost`: the host pages load from, default `host`; `shots`: the screenshots' file name
 * prefix) and
 * the browsers `env.browser()` launches. Every page opened with `env.open` is screenshotted at
 * the end (or earlier with `env.screenshot`), pages must not have thrown uncaught errors, all
 * browsers are closed, and the server must exit 0 on SIGTERM.
 */
async function withTurnpike(t, { shots, host = '127.0.0.1', pageHost = host, args = [] }, body) {
  const range = relayRange();
  const server = await startTurnpike(
    ['--relay-ip', '127.0.0.1', '--min-port', String(range.min), '--max-port', String(range.max), ...args],
    { host, httpHost: host },
  );
  const base = `http://${pageHost}:${server.httpPort}`;
  // test-output/web-<shots>-<page>.png
  const pages = new Pages(`web-${shots ?? slug(t.name)}`);
  const env = {
    server,
    range,
    base,
    host,
    browser: () => pages.browser(),
    /** A page in a new browser context (its own cookies and storage) of `browser`, at `urlPath`. */
    open: (browser, urlPath, name) => pages.open(browser, base + urlPath, name),
    screenshot: (page, label) => pages.screenshot(page, label),
  };
  let failure = null;
  try {
    await body(env);
    pages.assertNoErrors();
  } catch (e) {
    failure = e;
  } finally {
    await pages.close();
  }
  const { code, signal } = await server.stop();
  if (failure) {
    failure.message += pages.report();
    failure.message += `\n--- turnpike output (exit code ${code}, signal ${signal}) ---\n${server.output()}`;
    throw failure;
  }
  assert.equal(code, 0, `turnpike exited with code ${code} signal ${signal} after SIGTERM (expected 0):\n${server.output()}`);
}

/** GET base/api/ice-servers from node: what the pages should be given. */
async function iceServers(base) {
  const res = await fetch(`${base}/api/ice-servers`);
  assert.equal(res.status, 200);
  return res.json();
}

function flatUris(body) {
  return body.iceServers.flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]));
}

// ---------------------------------------------------------------------------- 1. relay-only call

test('room: two relay-only pages connect through our TURN relay, show relay ↔ relay and an RTT, and chat both ways',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withTurnpike(t, { shots: 'relay-call' }, async ({ browser, open, range, screenshot }) => {
      const chromiumA = await browser();
      const room = randomRoom();
      const a = await open(chromiumA, `/room/${room}?relay=1`, 'a');
      const idA = await joined(a, 'a');
      const b = await open(chromiumA, `/room/${room}?relay=1`, 'b');
      const idB = await joined(b, 'b');

      for (const [page, name] of [[a, 'a'], [b, 'b']]) {
        const hook = await page.evaluate(() => ({ relayOnly: window.turnpike.relayOnly, media: window.turnpike.media() }));
        assert.deepEqual(hook, { relayOnly: true, media: 'camera and microphone' }, name);
        assert.equal(await page.isChecked('[data-testid="relay-only"]'), true, `${name}: Relay only box`);
      }

      const [peersA, peersB] = await Promise.all([connectedTo(a, 'a', [idB]), connectedTo(b, 'b', [idA])]);
      const addresses = {};
      for (const [page, name, peer, otherId] of [[a, 'a', peersA[0], idB], [b, 'b', peersB[0], idA]]) {
        assert.equal(peer.id, otherId);
        assert.equal(peer.localType, 'relay', `${name} hook localType: ${JSON.stringify(peer)}`);
        assert.equal(peer.remoteType, 'relay', `${name} hook remoteType: ${JSON.stringify(peer)}`);
        assert.ok(typeof peer.rtt === 'number' && peer.rtt >= 0, `${name} hook rtt: ${JSON.stringify(peer)}`);
        // The card shows the same, once the next stats round has rendered it.
        const c = await until(`${name}'s card of ${otherId} to show relay ↔ relay and an RTT`, () => card(page, otherId),
          (x) => x && x.localType === 'relay' && /^\d+(\.\d)? ms$/.test(x.rtt));
        assert.equal(c.state, 'connected', name);
        assert.equal(c.path, 'relay ↔ relay', name);
        assert.deepEqual([c.localType, c.remoteType], ['relay', 'relay'], name);
        assert.equal(c.channel, 'open', name);
        // "127.0.0.1:P ↔ 127.0.0.1:Q over udp (to TURN: udp)": both ends are relays of ours.
        const m = /^(127\.0\.0\.1):(\d+) ↔ (127\.0\.0\.1):(\d+) over udp \(to TURN: (udp|tcp)\)$/.exec(c.pathTitle);
        assert.ok(m, `${name} path title: ${c.pathTitle}`);
        for (const port of [Number(m[2]), Number(m[4])]) {
          assert.ok(port >= range.min && port <= range.max, `${name}: relay port ${port} outside ${range.min}-${range.max}`);
        }
        // Usually TURN/UDP; on a busy machine Chrome sometimes selects (and keeps) the pair
        // through its TURN/TCP allocation, which answered first. Both are ours; that TURN/UDP
        // works for a page is asserted by the diagnostics tests.
        addresses[name] = { local: `${m[1]}:${m[2]}`, remote: `${m[3]}:${m[4]}` };
        t.diagnostic(`${name}: ${c.path}, ${c.pathTitle}, RTT ${c.rtt} (hook ${peer.rtt} ms)`);
      }
      // Each side's remote relay is the other side's local relay. Not necessarily at the same
      // instant: each page reports the pair it sends on, and until the controlling side's
      // nomination reaches the controlled side (or while Chrome moves from its TURN/TCP to its
      // TURN/UDP allocation) the two may name different allocations of the same page (ci23: b
      // on its TCP relay, a still sending to b's UDP relay). So poll both cards until they agree.
      const relayPair = async (page, otherId) => {
        const c = await card(page, otherId);
        const m = c && /^(\S+) ↔ (\S+) over udp/.exec(c.pathTitle);
        return m ? { local: m[1], remote: m[2] } : null;
      };
      const agreed = await until('both pages to name the same pair of relays', async () => ({
        a: await relayPair(a, idB) ?? addresses.a, b: await relayPair(b, idA) ?? addresses.b,
      }), (x) => x.a.remote === x.b.local && x.b.remote === x.a.local);
      t.diagnostic(`agreed pair: a ${agreed.a.local} ↔ b ${agreed.b.local}`);

      // Media went through the relay too: each page shows the other's (fake) camera.
      for (const [page, name, otherId] of [[a, 'a', idB], [b, 'b', idA]]) {
        await until(`${name} to show ${otherId}'s video`, () => card(page, otherId), (x) => x && x.hasVideo, { timeout: 15_000 });
      }

      await chat(a, b, idA, `hello from a ${crypto.randomBytes(3).toString('hex')}`);
      await chat(b, a, idB, `hello back from b ${crypto.randomBytes(3).toString('hex')}`);

      await Promise.all([screenshot(a), screenshot(b)]);
    });
  });

// ---------------------------------------------------------------------------- 2. presence

test('room: a third page appears on both others and disappears at once when it closes (page.close, context.close)',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withTurnpike(t, { shots: 'presence-close' }, async ({ browser, open, screenshot }) => {
      const chromiumA = await browser();
      const room = randomRoom();
      const a = await open(chromiumA, `/room/${room}`, 'a');
      const idA = await joined(a, 'a');
      const b = await open(chromiumA, `/room/${room}`, 'b');
      const idB = await joined(b, 'b');
      await Promise.all([connectedTo(a, 'a', [idB]), connectedTo(b, 'b', [idA])]);

      for (const how of ['page.close', 'context.close']) {
        const c = await open(chromiumA, `/room/${room}`, `c-${how}`);
        const idC = await joined(c, `c (${how})`);
        // The mesh grows: both others list it (hook and card) and all three are connected.
        await Promise.all([
          connectedTo(a, 'a', [idB, idC]),
          connectedTo(b, 'b', [idA, idC]),
          connectedTo(c, 'c', [idA, idB]),
        ]);
        for (const page of [a, b]) {
          const listed = await listedPeers(page);
          assert.equal(listed.peers.length, 2);
          assert.ok(listed.cards.includes(idC), `no card peer-${idC}: ${JSON.stringify(listed)}`);
        }
        await screenshot(c);
        if (how === 'page.close') {
          // Not the first time: screenshots of a and b with three peers.
          await Promise.all([screenshot(a), screenshot(b)]);
        }

        const closed = Date.now();
        if (how === 'page.close') await c.close();
        else await c.context().close();
        // The page sends bye to each peer and leave: the others drop it at once, not after the
        // 30 s grace window.
        for (const [page, name, others] of [[a, 'a', [idB]], [b, 'b', [idA]]]) {
          await until(`${name} to drop ${idC} after ${how}`, () => listedPeers(page),
            (s) => !s.peers.includes(idC) && !s.cards.includes(idC), { timeout: 5_000, interval: 100 });
          const left = await page.evaluate(() => window.turnpike.peers());
          assert.deepEqual(left.map((p) => p.id), others, name);
          assert.equal(left[0].state, 'connected', `${name}: the remaining connection is untouched`);
        }
        t.diagnostic(`${how}: both others dropped ${idC} after ${Date.now() - closed} ms`);
      }
    });
  });

test('room: a browser killed without unload (SIGKILL) is dropped by the others after the 30 s grace window',
  { timeout: GRACE_TEST_TIMEOUT_MS }, async (t) => {
    await withTurnpike(t, { shots: 'presence-kill' }, async ({ browser, open, screenshot }) => {
      const chromiumA = await browser();
      const chromiumC = await browser(); // its own process, to kill
      const room = randomRoom();
      const a = await open(chromiumA, `/room/${room}`, 'a');
      const idA = await joined(a, 'a');
      const b = await open(chromiumA, `/room/${room}`, 'b');
      const idB = await joined(b, 'b');
      const c = await open(chromiumC, `/room/${room}`, 'c');
      const idC = await joined(c, 'c');
      await Promise.all([
        connectedTo(a, 'a', [idB, idC]),
        connectedTo(b, 'b', [idA, idC]),
        connectedTo(c, 'c', [idA, idB]),
      ]);
      await screenshot(c);

      // SIGKILL the whole process group of c's browser (playwright starts it as a group
      // leader): no pagehide, no bye, no leave; the kernel closes its WebSocket.
      const killed = Date.now();
      process.kill(-chromiumC.process().pid, 'SIGKILL');

      // Still listed while the server keeps the peer for a possible resume...
      await sleep(5_000);
      for (const page of [a, b]) assert.ok((await listedPeers(page)).peers.includes(idC), 'dropped before the grace window');
      // ...and dropped when the window is over.
      for (const [page, name] of [[a, 'a'], [b, 'b']]) {
        await until(`${name} to drop the killed ${idC}`, () => listedPeers(page),
          (s) => !s.peers.includes(idC) && !s.cards.includes(idC), { timeout: GRACE_WINDOW_MS + 25_000, interval: 250 });
      }
      const elapsed = Date.now() - killed;
      t.diagnostic(`the killed peer was dropped ${elapsed} ms after SIGKILL (grace window ${GRACE_WINDOW_MS} ms)`);
      assert.ok(elapsed >= GRACE_WINDOW_MS - 2_000, `dropped after ${elapsed} ms, before the grace window`);
      for (const [page, name, other] of [[a, 'a', idB], [b, 'b', idA]]) {
        const left = await page.evaluate(() => window.turnpike.peers());
        assert.deepEqual(left.map((p) => p.id), [other], name);
        assert.equal(left[0].state, 'connected', name);
      }
    });
  });

// ---------------------------------------------------------------------------- 3. diagnostics

/** Waits for the server table to be filled from /api/ice-servers; returns its rows. */
async function prefilled(page) {
  const s = await until('the ICE server table to be prefilled', () => page.evaluate(() => ({
    status: document.querySelector('[data-testid="servers-status"]').textContent,
    rows: [...document.querySelectorAll('[data-testid="servers"] tbody tr')].map((tr) => ({
      uri: tr.querySelector('.uri').value,
      username: tr.querySelector('.username').value,
      credential: tr.querySelector('.credential').value,
    })),
  })), (x) => x.rows.length > 0 && /^Loaded/.test(x.status));
  return s.rows;
}

/** Clicks Gather and waits for the verdict; returns {candidates, errors, verdict, state, rows, details}. */
async function gather(page) {
  await page.click('[data-testid="gather"]');
  return until('gathering to complete with a verdict', () => page.evaluate(() => ({
    gathering: window.turnpikeDiagnostics.gathering(),
    verdict: window.turnpikeDiagnostics.verdict(),
    state: document.querySelector('[data-testid="verdict"]').dataset.state,
    details: [...document.querySelectorAll('[data-testid="verdict-details"] li')].map((li) => li.textContent),
    candidates: window.turnpikeDiagnostics.candidates(),
    errors: window.turnpikeDiagnostics.errors(),
    rows: [...document.querySelectorAll('[data-testid="candidates"] tbody tr')].map((tr) => ({
      type: tr.dataset.type, address: tr.querySelector('.addr')?.textContent,
    })),
  })), (s) => s.gathering === 'complete' && s.verdict !== '', { timeout: GATHER_TIMEOUT_MS, interval: 250 });
}

function describe(candidates) {
  return candidates.map((c) => `${c.type} ${c.protocol} ${c.address}:${c.port} ${c.url ?? ''}`).join('\n');
}

/** The ICE server table must hold exactly this server's URIs, with a REST credential for TURN. */
async function assertPrefilled(page, base, host, port) {
  const rows = await prefilled(page);
  const api = await iceServers(base);
  const expected = [`stun:${host}:${port}`, `turn:${host}:${port}?transport=udp`, `turn:${host}:${port}?transport=tcp`];
  assert.deepEqual(flatUris(api), expected);
  assert.deepEqual(rows.map((r) => r.uri), expected);
  const now = Math.floor(Date.now() / 1000);
  for (const r of rows.filter((x) => x.uri.startsWith('turn:'))) {
    const m = /^(\d+):turnpike$/.exec(r.username);
    assert.ok(m, `TURN username ${r.username}`);
    assert.ok(Number(m[1]) > now && Number(m[1]) <= now + api.iceTtl + 5, `credential expiry ${m[1]} (now ${now}, ttl ${api.iceTtl})`);
    assert.match(r.credential, /^[A-Za-z0-9+/]{27}=$/, 'base64(HMAC-SHA1) credential');
  }
  const stun = rows.find((x) => x.uri.startsWith('stun:'));
  assert.deepEqual([stun.username, stun.credential], ['', '']);
  return rows;
}

/** Our relay candidates: 127.0.0.1, in the relay range, from our TURN URIs, over UDP and TCP to TURN. */
function assertRelays(g, range, host, port) {
  const relays = g.candidates.filter((c) => c.type === 'relay');
  assert.ok(relays.length > 0, `no relay candidate:\n${describe(g.candidates)}\nerrors: ${JSON.stringify(g.errors)}`);
  for (const c of relays) {
    assert.equal(c.address, '127.0.0.1', describe([c]));
    assert.ok(c.port >= range.min && c.port <= range.max, `relay port outside ${range.min}-${range.max}: ${describe([c])}`);
    assert.ok(c.url && c.url.startsWith(`turn:${host}:${port}?transport=`), describe([c]));
    // Relay candidates have the lowest type preference (Chrome: 0–3, by transport to TURN).
    assert.ok(c.typePref <= 3 && c.component === 1, `relay priority split: ${describe([c])} ${c.typePref}|${c.localPref}|${c.component}`);
  }
  assert.deepEqual([...new Set(relays.map((c) => c.relayProtocol))].sort(), ['tcp', 'udp'], describe(relays));
  assert.ok(g.rows.some((r) => r.type === 'relay' && r.address === '127.0.0.1'), 'relay row in the candidates table');
  assert.match(g.verdict, /relay ok \(127\.0\.0\.1 via (udp\/tcp|tcp\/udp)\)/);
}

test('diagnostics at http://127.0.0.1: servers prefilled from /api/ice-servers, host and relay candidates, verdict, relay test passes',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withTurnpike(t, { shots: 'diagnostics-loopback' }, async ({ browser, open, server, base, range, host }) => {
      const page = await open(await browser(), '/diagnostics', 'diagnostics');
      await assertPrefilled(page, base, host, server.port);

      const g = await gather(page);
      t.diagnostic(`candidates:\n${describe(g.candidates)}\nverdict: ${g.verdict} (${g.state})\n${g.details.join('\n')}`);
      assert.deepEqual(g.errors, [], 'no icecandidateerror: our server answered every STUN and TURN request');
      assert.ok(g.candidates.some((c) => c.type === 'host'), 'host candidate');
      assertRelays(g, range, host, server.port);
      assert.match(g.verdict, /^host ok, /);
      // From a loopback origin Chrome binds its sockets to the interface address (the page is a
      // secure context with media permission), so the STUN answer maps to that very address
      // and Chrome drops the srflx as redundant: the verdict must then say "srflx none", and
      // "srflx ok" with our address if this Chrome does produce one (docs/testing-web.md).
      const srflx = g.candidates.filter((c) => c.type === 'srflx');
      if (srflx.length) {
        assert.match(g.verdict, /srflx ok \(public address /);
        assert.equal(g.state, 'ok');
      } else {
        assert.match(g.verdict, /srflx none \(no NAT in the way/);
        assert.equal(g.state, 'warn');
      }
      assert.equal(g.details.length, 3, 'one verdict line per server URI');

      await page.click('[data-testid="relay-test"]');
      const r = await until('the relay test result', () => page.evaluate(() => ({
        result: window.turnpikeDiagnostics.relayResult(),
        text: document.querySelector('[data-testid="relay-result"]').textContent,
        state: document.querySelector('[data-testid="relay-result"]').dataset.state,
      })), (x) => x.result !== null, { timeout: 40_000 });
      t.diagnostic(`relay test: ${r.text}`);
      assert.equal(r.result.ok, true, JSON.stringify(r));
      assert.deepEqual([r.result.localType, r.result.remoteType], ['relay', 'relay']);
      assert.deepEqual([r.result.sent, r.result.received], [10, 10]);
      assert.ok(typeof r.result.rttMs === 'number' && r.result.rttMs >= 0, JSON.stringify(r.result));
      assert.equal(r.state, 'ok');
      assert.match(r.text, /^relay test passed: RTT \d+(\.\d)? ms \(p50\), selected pair relay ↔ relay \(10\/10 pings answered\)$/);
    });
  });

test('diagnostics at the machine\'s LAN address: a srflx candidate from our STUN server, plus host and relay',
  { timeout: TEST_TIMEOUT_MS, skip: LAN_IP ? false : 'no non-loopback IPv4 address here: Chrome cannot produce srflx (docs/testing-web.md)' },
  async (t) => {
    // Server (STUN/TURN and HTTP) on the LAN address, relays still on 127.0.0.1. The page at
    // http://LAN_IP is not a secure context and has no media permission, so Chrome gathers on
    // one socket bound to 0.0.0.0: the mapped address the server reports differs from the
    // socket's bound address, and Chrome keeps the srflx candidate. The page's requests come
    // from the LAN address, not loopback: without a signaling secret they get TURN credentials
    // only with open-credentials (docs/http.md "Who gets TURN credentials").
    await withTurnpike(t, { shots: 'diagnostics-lan-srflx', host: LAN_IP, args: ['--open-credentials'] }, async ({ browser, open, server, base, range, host }) => {
      const page = await open(await browser(), '/diagnostics', 'diagnostics');
      await assertPrefilled(page, base, host, server.port);
      const g = await gather(page);
      t.diagnostic(`candidates:\n${describe(g.candidates)}\nverdict: ${g.verdict} (${g.state})`);
      assert.deepEqual(g.errors, []);
      const srflx = g.candidates.filter((c) => c.type === 'srflx');
      assert.ok(srflx.length > 0, `no srflx candidate:\n${describe(g.candidates)}`);
      for (const c of srflx) {
        assert.equal(c.address, LAN_IP, `the mapped address our STUN server reported: ${describe([c])}`);
        // From the STUN URI, or the TURN/UDP one (Chrome also sends Binding requests to it).
        assert.ok(c.url && (c.url === `stun:${host}:${server.port}` || c.url === `turn:${host}:${server.port}?transport=udp`), describe([c]));
      }
      assert.ok(g.rows.some((r) => r.type === 'srflx' && r.address === LAN_IP), 'srflx row in the candidates table');
      assert.ok(g.candidates.some((c) => c.type === 'host' && c.address === LAN_IP), 'host candidate on the LAN address');
      assertRelays(g, range, host, server.port);
      assert.match(g.verdict, new RegExp(`^host ok, srflx ok \\(public address ${LAN_IP.replace(/\./g, '\\.')}\\), relay ok `));
      assert.equal(g.state, 'ok');
    });
  });

test('diagnostics: a wrong TURN password gives no relay candidate, a verdict naming the credentials (401) and a failed relay test',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withTurnpike(t, { shots: 'diagnostics-wrong-password' }, async ({ browser, open, server, base, host }) => {
      const page = await open(await browser(), '/diagnostics', 'diagnostics');
      const rows = await assertPrefilled(page, base, host, server.port);
      const credentials = page.locator('[data-testid="servers"] tbody tr .credential');
      for (let i = 0; i < rows.length; i++) {
        if (rows[i].uri.startsWith('turn:')) await credentials.nth(i).fill('not-the-password');
      }

      const g = await gather(page);
      t.diagnostic(`candidates:\n${describe(g.candidates)}\nerrors: ${JSON.stringify(g.errors)}\nverdict: ${g.verdict} (${g.state})`);
      assert.deepEqual(g.candidates.filter((c) => c.type === 'relay'), [], 'no relay candidate with a wrong password');
      assert.ok(g.errors.some((e) => e.errorCode === 401 && e.url.startsWith(`turn:${host}:${server.port}`)), JSON.stringify(g.errors));
      assert.match(g.verdict, /relay failed: check the TURN credentials \(401 /);
      assert.equal(g.state, 'fail');
      assert.equal(await page.getAttribute('[data-testid="verdict"]', 'data-state'), 'fail');

      await page.click('[data-testid="relay-test"]');
      const r = await until('the relay test result', () => page.evaluate(() => window.turnpikeDiagnostics.relayResult()),
        (x) => x !== null, { timeout: 40_000 });
      t.diagnostic(`relay test: ${JSON.stringify(r)}`);
      assert.equal(r.ok, false);
      assert.match(r.reason, /^no relay candidate: check the TURN credentials \(401/);
    });
  });

// The README runs `turnpike serve` with the default listen address 0.0.0.0 and opens
// http://localhost:8080. On a machine that also has a LAN address, Chrome on a page of a secure
// context (with camera permission, as on the room page) sends from a socket bound to the LAN
// address to 127.0.0.1; the server's wildcard UDP socket answers from the address the kernel
// picks for the reply, the LAN address, not 127.0.0.1 where the request went, and Chrome drops
// the answer: STUN and TURN over UDP time out (701 after ~40 s), and a relay-only call falls
// back to TURN over TCP. The server now binds one UDP socket per local address for a wildcard
// listen (as coturn does), so the answer comes from 127.0.0.1 and the relay candidate at once.
test('diagnostics with the README default listen address 0.0.0.0: TURN over UDP answers a page on http://127.0.0.1',
  {
    timeout: TEST_TIMEOUT_MS,
  }, async (t) => {
    await withTurnpike(t, { shots: 'wildcard-listen', host: '0.0.0.0', pageHost: '127.0.0.1' }, async ({ browser, open, server, range }) => {
      const page = await open(await browser(), '/diagnostics', 'diagnostics');
      const rows = await prefilled(page);
      // Only the TURN/UDP row, so that a relay candidate can only come over UDP.
      const udp = `turn:127.0.0.1:${server.port}?transport=udp`;
      assert.ok(rows.some((r) => r.uri === udp), JSON.stringify(rows));
      for (let i = rows.length - 1; i >= 0; i--) {
        if (rows[i].uri !== udp) await page.locator('[data-testid="servers"] tbody tr .remove').nth(i).click();
      }
      await page.click('[data-testid="gather"]');
      // Answered, this takes ~0.1 s; unanswered, Chrome retransmits for ~40 s.
      const s = await until('a relay candidate over TURN/UDP', () => page.evaluate(() => ({
        gathering: window.turnpikeDiagnostics.gathering(),
        candidates: window.turnpikeDiagnostics.candidates(),
        errors: window.turnpikeDiagnostics.errors(),
      })), (x) => x.candidates.some((c) => c.type === 'relay') || x.gathering === 'complete', { timeout: 8_000 }).catch((e) => {
        t.diagnostic(e.message.split('\n')[0]);
        return null;
      });
      assert.ok(s, 'no relay candidate within 8 s: the TURN server\'s UDP answers did not reach the page');
      const relay = s.candidates.find((c) => c.type === 'relay');
      assert.ok(relay, `no relay candidate: ${JSON.stringify(s)}`);
      assert.equal(relay.address, '127.0.0.1');
      assert.ok(relay.port >= range.min && relay.port <= range.max);
    });
  });

// ---------------------------------------------------------------------------- 4. index

test('index: shows this server\'s STUN/TURN URIs without credentials, links to the diagnostics, and opens a room',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withTurnpike(t, { shots: 'index' }, async ({ browser, open, server, base, host, screenshot }) => {
      const page = await open(await browser(), '/', 'index');
      const api = await iceServers(base);
      const expected = flatUris(api);
      const shown = await until('the ICE server list', () => page.$$eval('[data-testid="ice-servers"] li', (lis) => lis.map((li) => li.textContent.trim())),
        (x) => x.length === expected.length);
      assert.deepEqual(shown, expected);
      assert.deepEqual(expected, [`stun:${host}:${server.port}`, `turn:${host}:${server.port}?transport=udp`, `turn:${host}:${server.port}?transport=tcp`]);
      const text = await page.evaluate(() => document.body.innerText);
      assert.doesNotMatch(text, /\d{9,}:turnpike/, 'no TURN username on the page');
      const credential = api.iceServers.find((s) => s.credential).credential;
      assert.ok(!text.includes(credential), 'no TURN credential on the page');

      await screenshot(page);

      // Links to the diagnostics (header and body), which load.
      const links = await page.$$eval('a[href="/diagnostics"]', (as) => as.length);
      assert.ok(links >= 1, 'a link to /diagnostics');
      await page.click('main a[href="/diagnostics"]');
      await page.waitForURL(`${base}/diagnostics`);
      await prefilled(page);
      await page.goBack();
      await page.waitForURL(`${base}/`);

      // The form opens a room: spaces become dashes, Relay only adds ?relay=1.
      const name = `e2e lobby ${crypto.randomBytes(2).toString('hex')}`;
      await page.fill('[data-testid="room-input"]', `  ${name} `);
      await page.check('[data-testid="join-relay-only"]');
      await page.click('[data-testid="join"]');
      const room = name.replace(/ /g, '-');
      await page.waitForURL(`${base}/room/${room}?relay=1`);
      await joined(page, 'the room opened from the index');
      assert.equal(await page.textContent('[data-testid="room-name"]'), room);
      assert.deepEqual(await page.evaluate(() => ({ room: window.turnpike.room, relayOnly: window.turnpike.relayOnly })), { room, relayOnly: true });
      assert.equal(await page.isChecked('[data-testid="relay-only"]'), true);
      await screenshot(page, 'room-opened-from-index');
    });
  });

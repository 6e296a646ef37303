// Two `turnpike serve` nodes on one real redis-server (the cluster, issue 12), in real headless
// Chromium: the room page opened on node a in one browser context and on node b in another
// meets in one room, whose home is one node while the other forwards its socket's frames over
// Redis; the two pages make a call and chat both ways over its data channel.
//
// Each test starts its own redis-server and both nodes on free loopback ports, with the same
// REST secret (a TURN credential handed out by one node works on all), disjoint relay port
// ranges on 127.0.0.1 (so that a relay candidate tells which node it is on), and 127.0.0.1
// allowed as a peer: a relay of node a reaching a relay of node b is a loopback peer that is
// not one of node a's own ports. The relay-only test also checks that the pages were handed
// both nodes' TURN URLs (the fleet) under one credential and got relay candidates from both.
// Processes are stopped in `finally` (and redis-server once more in `t.after`), also on failure;
// each node must exit 0 on SIGTERM.
//
// Run: cd tests/e2e && node --test cluster.test.mjs   (needs `cargo build -p turnpike`,
// /usr/bin/chromium and redis-server; TURNPIKE_BIN picks another binary)

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';

import { Pages, until } from './lib/browser.mjs';
import { startRedis } from './lib/redis.mjs';
import { card, chat, connectedTo, joined, randomRoom } from './lib/room.mjs';
import { startTurnpike } from './lib/turnpike.mjs';

// Two nodes, a redis-server and two browsers on a loaded 2-core machine: generous.
const TEST_TIMEOUT_MS = 150_000;
const CONNECT_TIMEOUT_MS = 60_000;
const REST_SECRET = 'e2e-cluster-rest-secret-0123456789';
const NODE_IDS = ['a', 'b'];

/** One relay port range of 1000 ports per node, disjoint, at random places in 40000..59999. */
function relayRanges(count) {
  const picked = new Set();
  while (picked.size < count) picked.add(crypto.randomInt(0, 20));
  return [...picked].map((block) => ({ min: 40000 + 1000 * block, max: 40000 + 1000 * block + 999 }));
}

/** `GET path` from `node`'s HTTP listener: { status, text }. */
async function get(node, path) {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}${path}`);
  return { status: res.status, text: await res.text() };
}

/** The URLs of the TURN entry of `/api/ice-servers` from `node`, and its username. */
async function turnEntry(node) {
  const { status, text } = await get(node, '/api/ice-servers');
  assert.equal(status, 200, text);
  const turn = JSON.parse(text).iceServers.find((s) => s.username);
  assert.ok(turn, `no TURN entry: ${text}`);
  return { urls: Array.isArray(turn.urls) ? turn.urls : [turn.urls], username: turn.username };
}

const turnUrl = (node) => `turn:127.0.0.1:${node.port}?transport=udp`;

/**
 * Runs `body(env)` with a redis-server, one node per id of NODE_IDS on it, and the browsers and
 * pages `env.pages` opens (screenshots test-output/cluster-<shots>-<page>.png). Waits until every
 * node's `/healthz` says `ok` (connected to Redis). Afterwards: no page threw, every browser is
 * closed, every node exits 0 on SIGTERM, and redis-server is killed.
 */
async function withCluster(t, shots, body) {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const ranges = relayRanges(NODE_IDS.length);
  const nodes = [];
  const pages = new Pages(`cluster-${shots}`);
  let failure = null;
  try {
    for (const [i, id] of NODE_IDS.entries()) {
      const node = await startTurnpike([
        '--relay-ip', '127.0.0.1', '--min-port', String(ranges[i].min), '--max-port', String(ranges[i].max),
        '--redis-url', redis.url, '--node-id', id, '--rest-secrets', REST_SECRET,
        '--allowed-peers', '127.0.0.1/32',
        // The test polls /api/ice-servers.
        '--credential-rate', '10000',
      ]);
      node.id = id;
      node.range = ranges[i];
      nodes.push(node);
    }
    for (const node of nodes) {
      await until(`node ${node.id}'s /healthz to say ok (connected to Redis)`, () => get(node, '/healthz'),
        (r) => r.status === 200 && r.text.startsWith('ok'));
    }
    await body({ nodes, pages, url: (node, path) => `http://127.0.0.1:${node.httpPort}${path}` });
    pages.assertNoErrors();
  } catch (e) {
    failure = e;
  } finally {
    await pages.close();
  }
  const exits = [];
  for (const node of nodes) exits.push({ node, ...(await node.stop()) });
  await redis.stop();
  if (failure) {
    failure.message += pages.report();
    for (const { node, code, signal } of exits) {
      failure.message += `\n--- node ${node.id} output (exit code ${code}, signal ${signal}) ---\n${node.output()}`;
    }
    throw failure;
  }
  for (const { node, code, signal } of exits) {
    assert.equal(code, 0, `node ${node.id} exited with code ${code} signal ${signal} after SIGTERM (expected 0):\n${node.output()}`);
  }
}

/**
 * In every page of `context`: records each RTCPeerConnection's ICE servers as the page passed
 * them (`window.__iceLog.iceServers`), then keeps only the TURN URLs that contain `keep` (one
 * node's `host:port`), so that the page's relay candidates are all on that node; and records
 * the relay candidates gathered (`window.__iceLog.relays`). The room page's own hook shows
 * neither.
 */
async function pinToNode(context, keep) {
  await context.addInitScript((keepUrl) => {
    const log = { iceServers: [], relays: [] };
    Object.defineProperty(window, '__iceLog', { value: log });
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Native {
      constructor(config, ...rest) {
        const servers = JSON.parse(JSON.stringify(config?.iceServers ?? []));
        log.iceServers.push(servers);
        const pinned = servers
          .map((s) => ({ ...s, urls: (Array.isArray(s.urls) ? s.urls : [s.urls]).filter((u) => !u.startsWith('turn') || u.includes(keepUrl)) }))
          .filter((s) => s.urls.length > 0);
        super({ ...config, iceServers: pinned }, ...rest);
        this.addEventListener('icecandidate', (e) => {
          if (e.candidate && / typ relay /.test(e.candidate.candidate)) {
            log.relays.push({ address: e.candidate.address, port: e.candidate.port });
          }
        });
      }
    };
  }, keep);
}

/** Which node's relay range `port` is in, or null. */
function nodeOfPort(nodes, port) {
  return nodes.find((n) => port >= n.range.min && port <= n.range.max)?.id ?? null;
}

test('cluster: room pages on two nodes meet through Redis, connect and chat both ways over the data channel',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withCluster(t, 'call', async ({ nodes: [nodeA, nodeB], pages, url }) => {
      const browser = await pages.browser();
      const room = randomRoom();
      const a = await pages.open(browser, url(nodeA, `/room/${room}`), 'a-on-node-a');
      const idA = await joined(a, 'a (node a)');
      const b = await pages.open(browser, url(nodeB, `/room/${room}`), 'b-on-node-b');
      const idB = await joined(b, 'b (node b)');

      // Presence crossed the nodes: each lists the other, and the offer, answer and candidates
      // went through the room's home (one node) from the other node's socket.
      const [peersA, peersB] = await Promise.all([
        connectedTo(a, 'a', [idB], CONNECT_TIMEOUT_MS),
        connectedTo(b, 'b', [idA], CONNECT_TIMEOUT_MS),
      ]);
      t.diagnostic(`a sees ${JSON.stringify(peersA)}; b sees ${JSON.stringify(peersB)}`);
      for (const [page, name, otherId] of [[a, 'a', idB], [b, 'b', idA]]) {
        const c = await until(`${name}'s card of ${otherId} to show a path and an RTT`, () => card(page, otherId),
          (x) => x && x.state === 'connected' && x.channel === 'open' && /^\d+(\.\d)? ms$/.test(x.rtt));
        t.diagnostic(`${name}: ${c.path}, ${c.pathTitle}, RTT ${c.rtt}`);
      }

      await chat(a, b, idA, `hello from node a ${crypto.randomBytes(3).toString('hex')}`);
      await chat(b, a, idB, `hello back from node b ${crypto.randomBytes(3).toString('hex')}`);
    });
  });

test('cluster: relay-only room pages on two nodes are handed both nodes\' TURN URLs under one credential, and relay from node a to node b',
  { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withCluster(t, 'relay-call', async ({ nodes, pages, url }) => {
      const [nodeA, nodeB] = nodes;
      // Each node learns the other's TURN service from its presence key within a heartbeat:
      // then both hand out both nodes' URLs (the two least-loaded) under one credential.
      const fleetUrls = nodes.map(turnUrl).sort();
      for (const node of nodes) {
        await until(`node ${node.id}'s /api/ice-servers to name both nodes`, () => turnEntry(node),
          (e) => fleetUrls.every((u) => e.urls.includes(u)), { timeout: 30_000, interval: 250 });
      }

      // Left alone, both pages gather relays on both nodes and ICE settles on whichever pair
      // answers first, often two relays of one node. Pinning each page to its own node's TURN
      // URLs (as a client given one URL would be) makes the only path node a's relay ↔ node b's
      // relay: node a relays to a peer that is node b's relay port, and back.
      const browser = await pages.browser();
      const room = randomRoom();
      const open = (node, name) => pages.open(browser, url(node, `/room/${room}?relay=1`), name,
        { init: (context) => pinToNode(context, `127.0.0.1:${node.port}?`) });
      const a = await open(nodeA, 'a-on-node-a');
      const idA = await joined(a, 'a (node a)');
      const b = await open(nodeB, 'b-on-node-b');
      const idB = await joined(b, 'b (node b)');
      for (const [page, name] of [[a, 'a'], [b, 'b']]) {
        assert.equal(await page.evaluate(() => window.turnpike.relayOnly), true, `${name} is relay-only`);
      }

      const [peersA, peersB] = await Promise.all([
        connectedTo(a, 'a', [idB], CONNECT_TIMEOUT_MS),
        connectedTo(b, 'b', [idA], CONNECT_TIMEOUT_MS),
      ]);
      for (const [page, name, peer, otherId, own, other] of [[a, 'a', peersA[0], idB, 'a', 'b'], [b, 'b', peersB[0], idA, 'b', 'a']]) {
        assert.deepEqual([peer.localType, peer.remoteType], ['relay', 'relay'], `${name}: ${JSON.stringify(peer)}`);
        const c = await until(`${name}'s card of ${otherId} to show relay ↔ relay and an RTT`, () => card(page, otherId),
          (x) => x && x.localType === 'relay' && x.remoteType === 'relay' && /^\d+(\.\d)? ms$/.test(x.rtt));
        // "127.0.0.1:P ↔ 127.0.0.1:Q over udp (to TURN: udp|tcp)".
        const m = /^127\.0\.0\.1:(\d+) ↔ 127\.0\.0\.1:(\d+) over udp \(to TURN: (udp|tcp)\)$/.exec(c.pathTitle);
        assert.ok(m, `${name} path title: ${c.pathTitle}`);
        const ends = [nodeOfPort(nodes, Number(m[1])), nodeOfPort(nodes, Number(m[2]))];
        assert.deepEqual(ends, [own, other], `${name}: its relay on node ${own}, the other's on node ${other}: ${c.pathTitle} (ranges ${JSON.stringify(nodes.map((n) => n.range))})`);
        t.diagnostic(`${name}: ${c.path}, ${c.pathTitle}, RTT ${c.rtt}`);
      }

      // What the pages were handed (the `joined` frame): both nodes' URLs under one credential;
      // and the node each was pinned to accepted that credential.
      for (const [page, name, own] of [[a, 'a', 'a'], [b, 'b', 'b']]) {
        const log = await page.evaluate(() => window.__iceLog);
        assert.ok(log.iceServers.length > 0, `${name} made no RTCPeerConnection`);
        const turn = log.iceServers[0].filter((s) => s.username);
        const urls = turn.flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]));
        assert.ok(fleetUrls.every((u) => urls.includes(u)), `${name} was handed ${JSON.stringify(urls)}, want ${fleetUrls}`);
        assert.equal(new Set(turn.map((s) => s.username)).size, 1, `${name}: one credential for the fleet`);
        const relayNodes = [...new Set(log.relays.map((r) => nodeOfPort(nodes, r.port)))];
        assert.deepEqual(relayNodes, [own], `${name}'s relay candidates: ${JSON.stringify(log.relays)}`);
      }

      await chat(a, b, idA, `relayed hello from node a ${crypto.randomBytes(3).toString('hex')}`);
      await chat(b, a, idB, `relayed hello back from node b ${crypto.randomBytes(3).toString('hex')}`);
    });
  });

// Real Chromium makes a WebRTC call through the kernel fast path (`xdp-interfaces`, issue 15).
//
// Two network namespaces joined by a veth pair (as tests/netns/test_xdp.py):
//   S: `turnpike serve` on 10.77.0.1, its XDP program attached (native) to its veth;
//   C: headless Chromium on 10.77.0.2 (started through `ip netns exec`; playwright talks to it
//      over a pipe, which namespaces do not affect).
// One page holds two RTCPeerConnections: `a` relay-only through the server, `b` with its host
// candidate only (no TURN), so the pair is a's relay ↔ b's host: a's ChannelData goes
// client → relay → peer, b's datagrams peer → relay → client, both through the XDP program once
// the channel is bound. (Two relay-only peers on one server would be relay ↔ relay, which stays
// in userspace by design.)
//
// Why the set-up (crates/xdp/README.md, measured on this machine): a socket sending over a veth
// leaves its UDP checksum partial, which no in-flight rewrite can complete, so the program passes
// such datagrams to userspace; the client's veth has checksum offload off (`ethtool -K tx off`),
// as a NIC delivers full checksums. XDP_TX on a veth is delivered only when the other end runs
// NAPI: the client's veth gets the same object (empty maps: it passes everything). Chromium's
// mDNS host-name obfuscation is off, so that b's host candidate is an address.
//
// Run: cd tests/e2e && node --test   (root; needs `cargo build -p turnpike`, /usr/bin/chromium,
// ethtool; scripts/install-test-deps installs them)

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { chromium } from 'playwright-core';

import { REPO, turnpikeBin } from './lib/turnpike.mjs';
import { CHROMIUM, OUTPUT, until } from './lib/browser.mjs';

const RUN = `tpe2e-${process.pid}-`;
const SERVER_NS = `${RUN}s`;
const CLIENT_NS = `${RUN}c`;
const SERVER_IF = `tpe${process.pid % 1_000_000}s`;
const CLIENT_IF = `tpe${process.pid % 1_000_000}c`;
const SERVER_IP = '10.77.0.1';
const CLIENT_IP = '10.77.0.2';
const METRICS = `${SERVER_IP}:9100`;
const OBJECT = path.join(REPO, 'crates', 'xdp', 'bpf', 'relay.o');
const USER = 'alice';
const PASSWORD = 'xdp-e2e-secret';
const MESSAGES = 50;
const TEST_TIMEOUT_MS = 120_000;

function sh(...args) {
  const done = spawnSync(args[0], args.slice(1), { encoding: 'utf8', timeout: 30_000 });
  if (done.status !== 0) {
    throw new Error(`\`${args.join(' ')}\` exited ${done.status}: ${done.stdout}${done.stderr}`);
  }
  return done.stdout;
}

function removeNamespaces() {
  for (const ns of [SERVER_NS, CLIENT_NS]) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout || '';
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

function topology() {
  removeNamespaces();
  sh('ip', 'netns', 'add', SERVER_NS);
  sh('ip', 'netns', 'add', CLIENT_NS);
  sh('ip', 'link', 'add', SERVER_IF, 'netns', SERVER_NS, 'type', 'veth', 'peer', 'name', CLIENT_IF, 'netns', CLIENT_NS);
  for (const [ns, dev, ip] of [[SERVER_NS, SERVER_IF, SERVER_IP], [CLIENT_NS, CLIENT_IF, CLIENT_IP]]) {
    sh('ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev);
    sh('ip', '-n', ns, 'link', 'set', dev, 'up');
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  }
  // Chromium gathers host candidates on the interfaces that have a route out.
  sh('ip', '-n', CLIENT_NS, 'route', 'add', 'default', 'via', SERVER_IP);
  sh('ip', 'netns', 'exec', CLIENT_NS, 'ethtool', '-K', CLIENT_IF, 'tx', 'off');
  sh('ip', '-n', CLIENT_NS, 'link', 'set', 'dev', CLIENT_IF, 'xdpdrv', 'obj', OBJECT, 'sec', 'xdp');
}

/** `turnpike serve` in the server namespace, with the fast path on its veth; resolves when ready. */
async function startServer() {
  const args = [
    'netns', 'exec', SERVER_NS, turnpikeBin(), 'serve', '--listen', `${SERVER_IP}:3478`, '--relay-ip', SERVER_IP,
    '--users', `${USER}:${PASSWORD}`, '--allowed-peers', '10.77.0.0/24', '--xdp-interfaces', SERVER_IF,
    '--metrics-listen', METRICS, '--http', 'false', '--drain-timeout', '0', '--min-port', '50000',
    '--max-port', '50200', '--log-level', 'info',
  ];
  const proc = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  proc.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  await until('turnpike ready', async () => ({ output, running: proc.exitCode === null }),
    (s) => s.output.includes('ready') || !s.running, { timeout: 20_000 });
  assert.ok(output.includes('XDP fast path attached'), `the program did not attach:\n${output}`);
  return {
    output: () => output,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** The server's counters, read inside its namespace. */
function metrics() {
  const text = sh('ip', 'netns', 'exec', SERVER_NS, 'curl', '-sf', `http://${METRICS}/metrics`);
  const values = {};
  for (const line of text.split('\n')) {
    if (line && !line.startsWith('#')) {
      const at = line.lastIndexOf(' ');
      values[line.slice(0, at)] = Number(line.slice(at + 1));
    }
  }
  return values;
}

/**
 * In the page: `a` relay-only through `iceServers`, `b` host candidates only; a data channel,
 * one exchange to settle, then `messages` messages each way after `marker()` resolves. Returns
 * what arrived and the selected pairs.
 */
async function call({ iceServers, messages }) {
  const timeout = (p, ms, what) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), ms))]);
  const a = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
  const b = new RTCPeerConnection({ iceServers: [] });
  for (const [pc, other] of [[a, b], [b, a]]) {
    pc.onicecandidate = (e) => { if (e.candidate && e.candidate.candidate) other.addIceCandidate(e.candidate).catch(() => {}); };
  }
  const chA = a.createDataChannel('chat');
  const chBPromise = new Promise((res) => { b.ondatachannel = (e) => res(e.channel); });
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  const chB = await timeout(chBPromise, 30000, 'data channel at b');
  const opened = (ch) => (ch.readyState === 'open' ? Promise.resolve() : new Promise((res) => { ch.onopen = res; }));
  await timeout(Promise.all([opened(chA), opened(chB)]), 30000, 'data channels open');
  const collect = (ch, n) => new Promise((res) => {
    const got = [];
    ch.onmessage = (e) => { got.push(e.data); if (got.length === n) res(got); };
  });
  window.xdpCall = { a, b, chA, chB, collect, timeout };
  const pick = async (pc) => {
    const report = await pc.getStats();
    let pair;
    report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId); });
    const c = (id) => { const x = report.get(id); return x && { type: x.candidateType, address: x.address, port: x.port }; };
    return pair && { local: c(pair.localCandidateId), remote: c(pair.remoteCandidateId) };
  };
  return { a: await pick(a), b: await pick(b) };
}

/** In the page, after `call`: `messages` messages each way; what arrived. */
async function exchange({ messages }) {
  const { chA, chB, collect, timeout } = window.xdpCall;
  const atB = collect(chB, messages);
  const atA = collect(chA, messages);
  for (let i = 0; i < messages; i++) {
    chA.send(`a->b ${i}`);
    chB.send(`b->a ${i}`);
  }
  const [byB, byA] = await timeout(Promise.all([atB, atA]), 20000, 'messages');
  return { byA, byB };
}

test('a browser call relays through the kernel fast path (relay ↔ host, ChannelData both ways)', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  assert.equal(process.getuid(), 0, 'this test needs root (namespaces, XDP): CI runs as root');
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: run scripts/install-test-deps`);
  topology();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnpike-e2e-xdp-'));
  // Chromium in the client namespace: playwright runs this instead of the browser.
  const wrapper = path.join(dir, 'chromium-in-netns');
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${CLIENT_NS} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  let server;
  let context;
  try {
    server = await startServer();
    context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
      executablePath: wrapper,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-features=WebRtcHideLocalIpsWithMdns'],
    });
    const page = context.pages()[0] || (await context.newPage());
    await page.setContent('<!doctype html><title>turnpike xdp e2e</title><pre id="log"></pre>');
    const iceServers = [{ urls: `turn:${SERVER_IP}:3478?transport=udp`, username: USER, credential: PASSWORD }];
    const pairs = await page.evaluate(call, { iceServers, messages: MESSAGES });
    t.diagnostic(JSON.stringify(pairs));
    assert.deepEqual([pairs.a.local.type, pairs.a.local.address], ['relay', SERVER_IP], JSON.stringify(pairs));
    assert.deepEqual([pairs.a.remote.type, pairs.a.remote.address], ['host', CLIENT_IP], JSON.stringify(pairs));
    assert.deepEqual([pairs.b.local.type, pairs.b.remote.type], ['host', 'relay'], JSON.stringify(pairs));

    // The channel is bound by now (Chromium binds one for a peer it sends data to); what the
    // messages add must go through the kernel, both ways.
    // The core's relay counters add the kernel's every 2 s (read back from the maps): take
    // `before` right after such a read-back, so that the two agree but for a datagram or two.
    const coreKey = 'turnpike_relayed_packets_total{direction="to_peer",transport="udp"}';
    const first = metrics();
    const before = await until('a read-back of the kernel counters', async () => metrics(),
      (m) => m[coreKey] !== first[coreKey], { timeout: 10_000, interval: 50 });
    const got = await page.evaluate(exchange, { messages: MESSAGES });
    assert.deepEqual(got.byB, Array.from({ length: MESSAGES }, (_, i) => `a->b ${i}`));
    assert.deepEqual(got.byA, Array.from({ length: MESSAGES }, (_, i) => `b->a ${i}`));
    // The core's relay counters include the kernel's, read back every 2 s: wait until
    // they have caught up, then whatever they count beyond the kernel went through userspace.
    const delta = (m, key) => m[key] - before[key];
    const core = (direction) => `turnpike_relayed_packets_total{direction="${direction}",transport="udp"}`;
    const xdp = (direction) => `turnpike_xdp_relayed_packets_total{direction="${direction}"}`;
    const after = await until('the kernel counters read back', async () => metrics(),
      (m) => delta(m, core('to_peer')) >= delta(m, xdp('to-peer')) && delta(m, core('to_client')) >= delta(m, xdp('to-client')),
      { timeout: 10_000 });
    const report = {
      kernel: [delta(after, xdp('to-peer')), delta(after, xdp('to-client'))],
      userspace: [delta(after, core('to_peer')) - delta(after, xdp('to-peer')), delta(after, core('to_client')) - delta(after, xdp('to-client'))],
    };
    t.diagnostic(`relayed while the messages went (to peer, to client): ${JSON.stringify(report)}`);
    assert.ok(after.turnpike_xdp_channels >= 1, `no channel in the kernel: ${JSON.stringify(after)}`);
    // SCTP may bundle messages, but not 50 of them into fewer than a handful of datagrams.
    assert.ok(report.kernel[0] >= 5 && report.kernel[1] >= 5, JSON.stringify(report));
    // Once the channel is bound, none of the messages goes through userspace. The margin is
    // for what the kernel relayed between the read-back and `before` (a consent check at most);
    // 50 messages through userspace would be ≥ 50.
    assert.ok(report.userspace[0] <= 5 && report.userspace[1] <= 5, JSON.stringify(report));

    // The allocation ends at shutdown: its session line carries what the kernel relayed (read
    // back as its channel left the maps).
    await context.close();
    context = undefined;
    const { code } = await server.stop();
    assert.equal(code, 0, `turnpike exited with ${code} after SIGTERM`);
    const ended = /allocation ended .*to_peer_packets=(\d+) .*to_client_packets=(\d+)/.exec(server.output());
    assert.ok(ended, server.output());
    assert.ok(Number(ended[1]) >= MESSAGES && Number(ended[2]) >= MESSAGES, ended[0]);
    server = undefined;
  } catch (e) {
    if (server) e.message += `\n--- turnpike output ---\n${server.output()}`;
    throw e;
  } finally {
    if (context) await context.close().catch(() => {});
    if (server) {
      const { code } = await server.stop();
      assert.equal(code, 0, `turnpike exited with ${code} after SIGTERM`);
    }
    removeNamespaces();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(OUTPUT, { recursive: true });
  }
});

// Room page: a full mesh of RTCPeerConnections, one per other peer of the room, negotiated with
// the "perfect negotiation" pattern over Turnpike signaling (see docs/web.md).
//
// Test hook (read-only): window.turnpike = {
//   id, room, relayOnly, signaling(), media(),
//   peers() -> [{id, state, iceState, localType, remoteType, rtt, channel, polite, restarts,
//                trickled: [{type, address}] (remote candidates trickled to this connection)}],
//   messages() -> [{from, text, ts, self}], sendChat(text) -> number of peers it was sent to,
//   transfers() -> [{peer, direction, name, size, sha256, digest, done, state, ok, url}] }

import { Signaling, isValidRoom } from '/static/signaling.js';

const STATS_INTERVAL_MS = 1000;
// Files go on a second pre-negotiated channel, `file` (SCTP stream 1), framed as docs/web.md
// says: a JSON header {type: 'file', name, size, sha256}, binary chunks of at most 16 KiB, a JSON
// {type: 'end'}; the receiver answers {type: 'verdict', sha256, ok}. The sender keeps at most
// FILE_HIGH_WATER bytes buffered in the channel and resumes on `bufferedamountlow`.
const FILE_CHUNK = 16 * 1024;
const FILE_HIGH_WATER = 1024 * 1024;
const FILE_LOW_WATER = 256 * 1024;
// A peer that joined after us makes the first offer; if none came by then, we start ourselves.
const WAIT_FOR_OFFER_MS = 3000;

// ---- page state ----

const params = new URLSearchParams(window.location.search);
const room = roomFromPath(window.location.pathname);
const token = params.get('token') || undefined;
let relayOnly = isTruthy(params.get('relay'));

/** @type {Map<string, Peer>} other peers by id, in the order they were seen */
const peers = new Map();
/** chat messages, oldest first */
const messages = [];
/** file transfers, oldest first */
const transfers = [];
let myId = null;
let iceServers = [];
let localStream = null;
let mediaState = 'pending';

const sig = new Signaling();

// ---- DOM helpers ----

const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);
const peersEl = byTestId('peers');
const chatLog = byTestId('chat-log');
const chatForm = byTestId('chat-form');
const chatInput = byTestId('chat-input');
const fileInput = byTestId('file-input');
const fileList = byTestId('file-list');
const relayBox = byTestId('relay-only');
const noticeEl = byTestId('notice');
const template = document.getElementById('peer-card');

function roomFromPath(pathname) {
  const m = /^\/room\/([^/]+)\/?$/.exec(pathname);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return '';
  }
}

function isTruthy(value) {
  return ['1', 'true', 'yes', 'on'].includes(String(value ?? '').toLowerCase());
}

function randomSid() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes); // works outside secure contexts, unlike randomUUID
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function log(...args) {
  console.info('[turnpike]', ...args);
}

function notice(text, kind = 'info') {
  noticeEl.textContent = text;
  noticeEl.dataset.kind = kind;
  noticeEl.hidden = !text;
}

function rtcConfig() {
  return { iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all' };
}

function createCard(label, testId) {
  const card = template.content.firstElementChild.cloneNode(true);
  card.dataset.testid = testId;
  byTestId('name', card).textContent = label;
  return card;
}

/** Shows `stream` in `video`, falling back to muted playback when autoplay with sound is refused. */
function attachStream(video, stream, unmuteButton) {
  if (video.srcObject === stream) return;
  video.srcObject = stream;
  const card = video.closest('.card');
  const update = () => card.classList.toggle('has-video', video.videoWidth > 0 && stream.getVideoTracks().length > 0);
  video.onresize = update;
  video.onloadedmetadata = update;
  stream.onaddtrack = update;
  stream.onremovetrack = update;
  video.play().catch((err) => {
    if (err.name !== 'NotAllowedError' || !unmuteButton) return;
    // Autoplay with sound needs a user gesture on this origin: play muted, offer to unmute.
    video.muted = true;
    video.play().catch(() => {});
    unmuteButton.hidden = false;
    unmuteButton.onclick = () => {
      video.muted = false;
      video.play().catch(() => {});
      unmuteButton.hidden = true;
    };
  });
}

// ---- one peer: one RTCPeerConnection + one negotiated data channel ----

class Peer {
  /**
   * @param {string} id
   * @param {boolean} initiate create the connection (and so make the first offer) now; otherwise
   *   wait for the peer's first frame, or WAIT_FOR_OFFER_MS at most.
   */
  constructor(id, initiate) {
    this.id = id;
    this.card = createCard(id, `peer-${id}`);
    this.card.dataset.peerId = id;
    this.video = this.card.querySelector('video');
    this.unmute = this.card.querySelector('.unmute');
    peersEl.append(this.card);
    this.pc = null;
    this.dc = null;
    this.fc = null;
    this.restarts = 0;
    this.answersOnly = false; // `turnpike p2p` (it sent its own offer format): it never offers SDP
    this.sid = null;
    this.remoteSid = null;
    this.info = { localType: null, remoteType: null, rtt: null };
    this.waitTimer = null;
    if (initiate) {
      this.open();
    } else {
      this.waitTimer = setTimeout(() => {
        if (!this.pc) {
          log(`peer ${this.id}: no offer within ${WAIT_FOR_OFFER_MS} ms, offering ourselves`);
          this.open();
        }
      }, WAIT_FOR_OFFER_MS);
      this.render();
    }
  }

  /**
   * Perfect negotiation roles: the peer whose id sorts first (JavaScript string order, i.e.
   * UTF-16 code units; byte order for ASCII ids) is polite, the other impolite. Both sides
   * compute the same answer without talking.
   */
  get polite() {
    return String(myId) < String(this.id);
  }

  /** Creates a fresh connection (a new session id) with the current media and ICE policy. */
  open() {
    clearTimeout(this.waitTimer);
    this.sid = randomSid(); // our session id for this pair, sent as `sid` in every frame
    this.remoteSid = null; // the peer's, learnt from its first frame
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingAnswer = false;
    this.info = { localType: null, remoteType: null, rtt: null, protocol: null, local: null, remote: null };
    this.trickled = [];
    const pc = new RTCPeerConnection(rtcConfig());
    this.pc = pc;
    if (localStream) {
      for (const track of localStream.getTracks()) pc.addTrack(track, localStream);
    }
    const dc = pc.createDataChannel('chat', { negotiated: true, id: 0 });
    this.dc = dc;
    dc.onopen = () => this.render();
    dc.onclose = () => this.render();
    dc.onmessage = (ev) => this.onChat(ev.data);
    const fc = pc.createDataChannel('file', { negotiated: true, id: 1 });
    fc.binaryType = 'arraybuffer';
    fc.bufferedAmountLowThreshold = FILE_LOW_WATER;
    fc.onmessage = (ev) => this.onFileMessage(ev.data);
    this.fc = fc;
    this.incoming = null; // the transfer being received
    this.outgoing = null; // the transfer waiting for its verdict

    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        if (this.pc === pc) this.signal(pc.localDescription.type, pc.localDescription.toJSON());
      } catch (err) {
        log(`peer ${this.id}: negotiation failed`, err);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && this.pc === pc) this.signal('candidate', candidate.toJSON());
    };
    pc.ontrack = ({ track, streams }) => {
      if (this.pc !== pc) return;
      attachStream(this.video, streams[0] ?? new MediaStream([track]), this.unmute);
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      log(`peer ${this.id}: ${pc.connectionState}`);
      if (pc.connectionState === 'failed') {
        this.restarts += 1;
        log(`peer ${this.id}: ICE restart #${this.restarts}`);
        pc.restartIce();
      }
      this.render();
    };
    pc.oniceconnectionstatechange = () => this.render();
    this.render();
  }

  /** Replaces the connection (relay-only toggled here, or the peer replaced its own). */
  reopen() {
    if (!this.pc) return; // still waiting for the peer's first offer: nothing to replace
    this.closePc();
    this.video.srcObject = null;
    this.card.classList.remove('has-video');
    this.open();
  }

  closePc() {
    const pc = this.pc;
    if (!pc) return;
    pc.onnegotiationneeded = pc.onicecandidate = pc.ontrack = null;
    pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
    if (this.dc) this.dc.onopen = this.dc.onclose = this.dc.onmessage = null;
    if (this.fc) this.fc.onmessage = null;
    pc.close();
  }

  destroy() {
    clearTimeout(this.waitTimer);
    this.closePc();
    this.pc = null;
    this.video.srcObject = null;
    this.card.remove();
  }

  signal(type, data) {
    const payload = { ...data, sid: this.sid };
    if (this.remoteSid) payload.rsid = this.remoteSid;
    sig.send(this.id, type, payload);
  }

  /**
   * Replacing a connection (relay-only toggled) is owned by the impolite side of each pair, so
   * the two sides never build new connections at once: the impolite side just replaces its own,
   * the polite side asks it to with `bye {reset: true}`, and follows when a frame of a new
   * impolite session arrives. Frames name their sender's session (`sid`) and, once known, the
   * receiver's (`rsid`); a frame for a session we have replaced since is dropped.
   */
  requestNewConnection() {
    if (!this.pc) return; // still waiting for the first offer, which will use the new setting
    // `turnpike p2p` only answers (it never offers SDP): we replace the connection ourselves,
    // whichever side is polite, and it answers the new session's offer.
    if (this.polite && !this.answersOnly) this.signal('bye', { reset: true });
    else this.reopen();
  }

  async onSignal(type, data) {
    const { sid, rsid, reset, answersOnly } = data && typeof data === 'object' ? data : {};
    if (rsid && rsid !== this.sid) return; // for a connection of ours that we replaced since
    if (answersOnly === true) this.answersOnly = true; // `turnpike p2p` says so in its frames
    if (type === 'bye') {
      if (reset) {
        if (!this.polite && this.pc) {
          log(`peer ${this.id}: asked for a new connection`);
          this.reopen();
        }
        return;
      }
      // The peer closed its side (it is leaving); peer-left removes the card.
      log(`peer ${this.id}: bye`);
      this.closePc();
      this.render();
      return;
    }
    if (!data || typeof data !== 'object') return;
    if (!this.pc) {
      this.open(); // the peer's first frame (normally its first offer): answer it
    } else if (sid && sid !== this.remoteSid) {
      const closed = this.pc.signalingState === 'closed';
      if (closed || (this.polite && this.remoteSid)) {
        // The impolite peer started a new connection (or the peer came back): follow it.
        log(`peer ${this.id}: new remote session ${sid}, replacing ours`);
        this.reopen();
      }
      // Impolite: the polite peer followed our new connection; adopt its session id below.
    }
    if (sid) this.remoteSid = sid;
    const pc = this.pc;
    try {
      if ((type === 'offer' || type === 'answer') && typeof data.sdp !== 'string') {
        // `turnpike p2p` offers in its own format (turnpike-p2p/1) first; it answers SDP, and
        // our connection (opened above) makes the SDP offer (docs/client.md).
        log(`peer ${this.id}: ${data.protocol ?? 'non-SDP'} ${type} ignored; we offer WebRTC`);
        this.answersOnly = true;
        return;
      }
      if (type === 'offer' || type === 'answer') {
        const description = { type: data.type ?? type, sdp: data.sdp };
        const readyForOffer = !this.makingOffer && (pc.signalingState === 'stable' || this.settingAnswer);
        const offerCollision = description.type === 'offer' && !readyForOffer;
        this.ignoreOffer = !this.polite && offerCollision;
        if (this.ignoreOffer) {
          log(`peer ${this.id}: offer collision, impolite: ignoring theirs`);
          return;
        }
        this.settingAnswer = description.type === 'answer';
        try {
          await pc.setRemoteDescription(description); // rolls back our own offer if polite
        } finally {
          this.settingAnswer = false;
        }
        if (description.type === 'offer') {
          await pc.setLocalDescription();
          if (this.pc === pc) this.signal(pc.localDescription.type, pc.localDescription.toJSON());
        }
      } else if (type === 'candidate') {
        const { candidate, sdpMid, sdpMLineIndex, usernameFragment } = data;
        try {
          await pc.addIceCandidate({ candidate, sdpMid, sdpMLineIndex, usernameFragment });
          // RFC 8839 §5.1: "candidate:F C transport prio address port typ TYPE ...".
          const fields = String(candidate).split(' ');
          const typ = fields.indexOf('typ');
          const type = typ > 0 ? fields[typ + 1] : null;
          if (this.pc === pc && type) this.trickled.push({ type, address: `${fields[4]}:${fields[5]}` });
        } catch (err) {
          if (!this.ignoreOffer) log(`peer ${this.id}: addIceCandidate failed`, err);
        }
      }
    } catch (err) {
      log(`peer ${this.id}: ${type} failed`, err);
    }
  }

  onChat(raw) {
    let text = raw;
    try {
      const parsed = JSON.parse(raw);
      if (parsed && typeof parsed.text === 'string') text = parsed.text;
    } catch {
      // plain text is accepted as is
    }
    if (typeof text === 'string') addMessage({ from: this.id, text, ts: Date.now(), self: false });
  }

  /** Sends `buffer` (the file `name`, digest `sha256`) on the file channel, with flow control. */
  async sendFile(name, buffer, sha256) {
    const fc = this.fc;
    const t = addTransfer({ peer: this.id, direction: 'out', name, size: buffer.byteLength, sha256 });
    this.outgoing = t;
    try {
      fc.send(JSON.stringify({ type: 'file', name, size: buffer.byteLength, sha256 }));
      for (let offset = 0; offset < buffer.byteLength; offset += FILE_CHUNK) {
        while (fc.bufferedAmount > FILE_HIGH_WATER) {
          await new Promise((resolve) => {
            fc.addEventListener('bufferedamountlow', resolve, { once: true });
            fc.addEventListener('close', resolve, { once: true });
          });
          if (fc.readyState !== 'open') throw new Error('the channel closed');
        }
        const chunk = buffer.slice(offset, offset + FILE_CHUNK);
        fc.send(chunk);
        updateTransfer(t, { done: offset + chunk.byteLength });
      }
      fc.send(JSON.stringify({ type: 'end' }));
      updateTransfer(t, { state: 'sent, waiting for the verdict' });
    } catch (err) {
      updateTransfer(t, { state: 'failed', ok: false, error: String(err) });
    }
  }

  async onFileMessage(data) {
    if (typeof data !== 'string') {
      const t = this.incoming;
      if (!t) return;
      t.chunks.push(data);
      updateTransfer(t, { done: t.done + data.byteLength });
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      log(`peer ${this.id}: malformed file message`);
      return;
    }
    if (msg.type === 'file' && typeof msg.name === 'string' && Number.isSafeInteger(msg.size)) {
      const t = addTransfer({ peer: this.id, direction: 'in', name: msg.name, size: msg.size, sha256: String(msg.sha256 ?? '') });
      t.chunks = [];
      this.incoming = t;
    } else if (msg.type === 'end' && this.incoming) {
      const t = this.incoming;
      this.incoming = null;
      const blob = new Blob(t.chunks);
      t.chunks = [];
      const digest = await sha256Hex(await blob.arrayBuffer());
      const ok = blob.size === t.size && digest === t.sha256.toLowerCase();
      if (this.fc && this.fc.readyState === 'open') this.fc.send(JSON.stringify({ type: 'verdict', sha256: digest ?? '', ok }));
      updateTransfer(t, { digest, ok, state: ok ? 'verified' : 'failed', url: URL.createObjectURL(blob) });
    } else if (msg.type === 'verdict' && this.outgoing) {
      const t = this.outgoing;
      this.outgoing = null;
      const ok = msg.ok === true && msg.sha256 === t.sha256;
      updateTransfer(t, { digest: String(msg.sha256 ?? ''), ok, state: ok ? 'verified' : 'failed' });
    }
  }

  async updateStats() {
    const pc = this.pc;
    if (!pc || pc.connectionState === 'closed') return;
    let report;
    try {
      report = await pc.getStats();
    } catch {
      return;
    }
    if (this.pc !== pc) return;
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId && !pair) pair = report.get(s.selectedCandidatePairId) ?? null;
    });
    if (!pair) {
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && !pair) pair = s;
      });
    }
    const local = pair && report.get(pair.localCandidateId);
    const remote = pair && report.get(pair.remoteCandidateId);
    const rtt = pair && typeof pair.currentRoundTripTime === 'number' ? Math.round(pair.currentRoundTripTime * 10000) / 10 : null;
    this.info = {
      localType: local?.candidateType ?? null,
      remoteType: remote?.candidateType ?? null,
      rtt,
      protocol: local?.protocol ?? null,
      relayProtocol: local?.relayProtocol ?? null,
      local: local ? `${local.address ?? local.ip}:${local.port}` : null,
      remote: remote ? `${remote.address ?? remote.ip}:${remote.port}` : null,
    };
    this.render();
  }

  render(forcedState) {
    const pc = this.pc;
    // No connection yet (waiting for the peer's first offer) reads as 'new'.
    const state = forcedState ?? (pc ? pc.connectionState : 'new');
    const badge = byTestId('state', this.card);
    badge.textContent = state;
    badge.dataset.state = state;
    this.card.dataset.state = state;
    const { localType, remoteType, rtt, protocol, relayProtocol, local, remote } = this.info;
    const path = byTestId('path', this.card);
    path.textContent = localType ? `${localType} ↔ ${remoteType ?? '?'}` : '–';
    path.dataset.localType = localType ?? '';
    path.dataset.remoteType = remoteType ?? '';
    path.title = local ? `${local} ↔ ${remote} over ${protocol}${relayProtocol ? ` (to TURN: ${relayProtocol})` : ''}` : '';
    byTestId('rtt', this.card).textContent = rtt === null ? '–' : `${rtt} ms`;
    byTestId('channel', this.card).textContent = this.dc ? this.dc.readyState : '–';
  }

  snapshot() {
    const pc = this.pc;
    return {
      id: this.id,
      state: pc ? pc.connectionState : 'new',
      iceState: pc ? pc.iceConnectionState : 'new',
      localType: this.info.localType,
      remoteType: this.info.remoteType,
      rtt: this.info.rtt,
      channel: this.dc ? this.dc.readyState : null,
      polite: this.polite,
      restarts: this.restarts,
      trickled: [...(this.trickled ?? [])],
    };
  }
}

// ---- peers ----

/**
 * The peer `id`, created if new. `initiate`: we make the first offer (we are the newcomer and
 * it was already in the room); otherwise the newcomer does, and we answer.
 */
function addPeer(id, initiate = false) {
  if (id === myId) return null;
  let peer = peers.get(id);
  if (!peer) {
    log(`peer ${id}: new (${String(myId) < String(id) ? 'polite' : 'impolite'}, ${initiate ? 'we offer' : 'waiting for its offer'})`);
    peer = new Peer(id, initiate);
    peers.set(id, peer);
  }
  return peer;
}

function removePeer(id) {
  const peer = peers.get(id);
  if (!peer) return;
  log(`peer ${id}: gone`);
  peer.destroy();
  peers.delete(id);
}

function removeAllPeers() {
  for (const id of [...peers.keys()]) removePeer(id);
}

// ---- chat ----

function addMessage(m) {
  messages.push(m);
  const li = document.createElement('li');
  li.className = m.self ? 'self' : '';
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = m.self ? `${m.from} (you)` : m.from;
  const time = document.createElement('time');
  time.dateTime = new Date(m.ts).toISOString();
  time.textContent = new Date(m.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = m.text;
  li.append(from, time, text);
  chatLog.append(li);
  chatLog.scrollTop = chatLog.scrollHeight;
}

function sendChat(text) {
  const body = String(text ?? '').trim();
  if (!body || !myId) return 0;
  const frame = JSON.stringify({ text: body });
  let sent = 0;
  for (const peer of peers.values()) {
    if (peer.dc && peer.dc.readyState === 'open') {
      peer.dc.send(frame);
      sent += 1;
    }
  }
  addMessage({ from: myId, text: body, ts: Date.now(), self: true });
  return sent;
}

chatForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  sendChat(chatInput.value);
  chatInput.value = '';
  chatInput.focus();
});

// ---- files ----

/** SHA-256 of `buffer` as lower-case hex; null where Web Crypto is unavailable (plain http:// to
 * another host: crypto.subtle exists only in secure contexts). */
async function sha256Hex(buffer) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** A row in the file list for one transfer with one peer. */
function addTransfer({ peer, direction, name, size, sha256 }) {
  const li = document.createElement('li');
  li.dataset.testid = 'transfer';
  li.dataset.direction = direction;
  li.dataset.peer = peer;
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = `${direction === 'out' ? 'to' : 'from'} ${peer}: ${name} (${formatBytes(size)})`;
  const bar = document.createElement('progress');
  bar.dataset.testid = 'transfer-progress';
  bar.max = Math.max(size, 1);
  bar.value = 0;
  const hash = document.createElement('code');
  hash.dataset.testid = 'transfer-sha256';
  const status = document.createElement('div');
  status.className = 'status';
  status.dataset.testid = 'transfer-status';
  li.append(title, bar, hash, status);
  fileList.append(li);
  const t = { peer, direction, name, size, sha256, digest: null, done: 0, state: direction === 'out' ? 'sending' : 'receiving', ok: null, url: null, el: li };
  transfers.push(t);
  updateTransfer(t, {});
  return t;
}

function updateTransfer(t, changes) {
  Object.assign(t, changes);
  const q = (id) => byTestId(id, t.el);
  q('transfer-progress').value = t.size === 0 && t.ok !== null ? 1 : t.done;
  // The announced digest, and the one computed by the receiver once known.
  const computed = t.digest;
  q('transfer-sha256').textContent = `SHA-256 ${t.sha256 || '(unknown: Web Crypto needs HTTPS)'}${computed && computed !== t.sha256 ? ` ≠ ${computed}` : ''}`;
  q('transfer-status').textContent = t.state + (t.error ? ` (${t.error})` : '');
  t.el.dataset.state = t.state === 'verified' ? 'verified' : t.state === 'failed' ? 'failed' : 'active';
  if (t.url && !q('transfer-download')) {
    const a = document.createElement('a');
    a.dataset.testid = 'transfer-download';
    a.href = t.url;
    a.download = t.name;
    a.textContent = `Download ${t.name}`;
    t.el.append(a);
  }
}

fileInput.addEventListener('change', async () => {
  const file = fileInput.files?.[0];
  if (!file) return;
  const buffer = await file.arrayBuffer();
  const sha256 = (await sha256Hex(buffer)) ?? '';
  const ready = [...peers.values()].filter((p) => p.fc && p.fc.readyState === 'open');
  if (!ready.length) notice('No connected peer to send the file to.', 'info');
  await Promise.all(ready.map((p) => p.sendFile(file.name, buffer, sha256)));
  fileInput.value = '';
});

// ---- relay only ----

relayBox.checked = relayOnly;
relayBox.addEventListener('change', () => {
  relayOnly = relayBox.checked;
  const url = new URL(window.location.href);
  if (relayOnly) url.searchParams.set('relay', '1');
  else url.searchParams.delete('relay');
  window.history.replaceState(null, '', url);
  log(`relay only: ${relayOnly}; rebuilding ${peers.size} connection(s)`);
  for (const peer of peers.values()) peer.requestNewConnection();
});

// ---- media ----

async function getMedia() {
  const status = byTestId('media-status');
  if (!navigator.mediaDevices?.getUserMedia) {
    mediaState = 'none';
    status.textContent = window.isSecureContext
      ? 'no camera API in this browser: data only'
      : 'camera and microphone need HTTPS (or localhost): data only';
    return null;
  }
  const video = { width: { ideal: 640 }, height: { ideal: 360 } };
  const attempts = [
    [{ video, audio: true }, 'camera and microphone'],
    [{ audio: true }, 'microphone only'],
    [{ video }, 'camera only'],
  ];
  let lastError = null;
  for (const [constraints, label] of attempts) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      mediaState = label;
      status.textContent = label;
      return stream;
    } catch (err) {
      lastError = err;
      // Denied is denied: asking for less will not help.
      if (err.name === 'NotAllowedError' || err.name === 'SecurityError') break;
    }
  }
  mediaState = 'none';
  const why = lastError?.name === 'NotAllowedError' ? 'permission denied' : `unavailable (${lastError?.name ?? 'error'})`;
  status.textContent = `camera and microphone ${why}: continuing with data (chat) only`;
  return null;
}

// ---- signaling ----

const sigText = byTestId('signaling');
const sigDot = byTestId('signaling-dot');

sig.on('state', ({ state, delayMs }) => {
  sigDot.dataset.state = state;
  if (state === 'joined') sigText.textContent = `connected as ${sig.id}`;
  else if (state === 'reconnecting') sigText.textContent = delayMs ? `reconnecting in ${(delayMs / 1000).toFixed(1)} s…` : 'reconnecting…';
  else if (state === 'connecting') sigText.textContent = 'connecting…';
  else if (state === 'closed') sigText.textContent = 'disconnected';
});

sig.on('joined', (m) => {
  iceServers = Array.isArray(m.iceServers) ? m.iceServers : [];
  const others = (m.peers ?? []).filter((id) => id !== m.id);
  if (m.resumed && m.id === myId) {
    // Same id: keep the connections, reconcile with the room's list.
    log(`resumed as ${m.id}`);
    for (const id of [...peers.keys()]) if (!others.includes(id)) removePeer(id);
    for (const id of others) addPeer(id, false); // joined while we were away: they offer
    for (const peer of peers.values()) {
      if (!peer.pc) continue;
      try {
        peer.pc.setConfiguration(rtcConfig()); // fresh TURN credentials for later restarts
      } catch {
        // a closed connection, or a change the browser refuses: keep the old one
      }
    }
  } else {
    if (myId) log(`joined afresh as ${m.id} (was ${myId}): rebuilding every connection`);
    else log(`joined ${m.room} as ${m.id} with ${others.length} other(s)`);
    removeAllPeers();
    myId = m.id;
    byTestId('name', selfCard).textContent = `${myId} (you)`;
    for (const id of others) addPeer(id, true);
  }
  if (noticeEl.dataset.kind === 'signaling') notice('');
});

sig.on('peer-joined', ({ id }) => addPeer(id));
sig.on('peer-left', ({ id }) => removePeer(id));
sig.on('signal', ({ type, from, data }) => {
  if (type === 'message') return; // directed app messages: unused by this page
  const peer = type === 'bye' ? peers.get(from) : addPeer(from);
  if (peer) peer.onSignal(type, data);
});
sig.on('error', (e) => {
  log('signaling error', e);
  if (e.code === 'resume-failed') {
    notice('The server had forgotten this page (it restarted, or we were away too long): rejoined with a new id.', 'info');
  } else if (e.fatal) {
    notice(`Could not join the room: ${e.message || e.code} (${e.code}).`, 'error');
  } else if (e.code !== 'unknown-peer') {
    notice(`Signaling: ${e.message || e.code} (${e.code}).`, 'signaling');
  }
});

window.addEventListener('pagehide', () => {
  // Tell the others now instead of letting them wait for the grace window.
  for (const peer of peers.values()) peer.signal('bye', {});
  sig.leave();
  for (const peer of peers.values()) peer.closePc();
});
window.addEventListener('pageshow', (ev) => {
  if (ev.persisted) window.location.reload(); // restored from the back-forward cache: we left
});

// ---- test hook ----

Object.defineProperty(window, 'turnpike', {
  value: Object.freeze({
    get id() {
      return myId;
    },
    get room() {
      return room;
    },
    get relayOnly() {
      return relayOnly;
    },
    signaling: () => sig.state,
    media: () => mediaState,
    peers: () => [...peers.values()].map((p) => p.snapshot()),
    messages: () => messages.map((m) => ({ ...m })),
    sendChat: (text) => sendChat(text),
    transfers: () => transfers.map(({ el, chunks, ...t }) => ({ ...t })),
  }),
  writable: false,
  configurable: false,
});

// ---- start ----

const selfCard = createCard('you', 'self');
selfCard.classList.add('self');
const selfBadge = byTestId('state', selfCard);
selfBadge.textContent = 'you';
selfBadge.dataset.state = 'self';
selfCard.querySelector('.facts').remove();
peersEl.append(selfCard);

byTestId('room-name').textContent = room || '(none)';
document.title = `${room || 'Room'} · Turnpike`;

setInterval(() => {
  for (const peer of peers.values()) peer.updateStats();
}, STATS_INTERVAL_MS);

async function start() {
  if (!isValidRoom(room)) {
    notice('A room name is 1–64 letters, digits, dots, dashes or underscores. Pick one on the home page.', 'error');
    sig.close();
    return;
  }
  localStream = await getMedia();
  if (localStream) {
    const video = selfCard.querySelector('video');
    video.muted = true;
    selfCard.classList.add('mirror');
    attachStream(video, localStream, null);
  }
  try {
    await sig.join(room, { token });
  } catch (err) {
    log('join failed', err);
    if (!noticeEl.textContent) notice(`Could not join the room: ${err.message}`, 'error');
  }
}

start();

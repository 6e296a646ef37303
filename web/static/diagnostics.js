// Diagnostics page (like the WebRTC "trickle ICE" sample), and the small script of the index
// page (the server embeds a fixed list of files, so both pages share this module; each part runs
// only on its own page, chosen by <body data-page>).
//
// Test hook on /diagnostics (read-only): window.turnpikeDiagnostics = {
//   candidates() -> [{ms, type, foundation, protocol, address, port, priority, typePref, localPref,
//                     component, url, relayProtocol, relatedAddress, relatedPort, candidate}],
//   errors() -> [{ms, url, address, port, errorCode, errorText}],
//   gathering() -> 'idle' | 'gathering' | 'complete',
//   verdict() -> string ('' until a gathering has finished),
//   relayResult() -> null | {ok, rttMs, localType, remoteType, reason, sent, received} }

// Chrome gives up on a STUN/TURN server that does not answer after about 40 s (error 701).
const GATHER_TIMEOUT_MS = 45000;
const SLOW_HINT_MS = 3000;
const RELAY_CONNECT_TIMEOUT_MS = 20000;
const RELAY_PINGS = 10;
const PING_TIMEOUT_MS = 3000;

const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

/** GET /api/ice-servers → {iceServers, iceTtl}. A `?token=` of this page is passed on as a
 * Bearer token: a server with a signaling secret hands TURN credentials only for one. */
async function fetchIceServers() {
  const headers = { accept: 'application/json' };
  const token = new URLSearchParams(location.search).get('token');
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch('/api/ice-servers', { cache: 'no-store', headers });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const body = await res.json();
  return { iceServers: Array.isArray(body.iceServers) ? body.iceServers : [], iceTtl: body.iceTtl ?? null };
}

/** Each URL of an RTCIceServer[] with its username and credential. */
function flattenServers(iceServers) {
  const out = [];
  for (const s of iceServers) {
    const urls = Array.isArray(s.urls) ? s.urls : [s.urls ?? s.url].filter(Boolean);
    for (const uri of urls) out.push({ uri: String(uri), username: s.username ?? '', credential: s.credential ?? '' });
  }
  return out;
}

function scheme(uri) {
  return String(uri).split(':', 1)[0].toLowerCase();
}

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

// ======================================================================= index page

function initIndex() {
  const form = byTestId('join-form');
  const input = byTestId('room-input');
  const relay = byTestId('join-relay-only');
  const list = byTestId('ice-servers');
  const roomRe = /^[A-Za-z0-9._-]{1,64}$/;

  input.addEventListener('input', () => input.setCustomValidity(''));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = input.value.trim().replace(/\s+/g, '-');
    if (!roomRe.test(name)) {
      input.setCustomValidity('1–64 letters, digits, dots, dashes or underscores');
      input.reportValidity();
      return;
    }
    window.location.assign(`/room/${encodeURIComponent(name)}${relay.checked ? '?relay=1' : ''}`);
  });

  fetchIceServers()
    .then(({ iceServers }) => {
      list.replaceChildren();
      const uris = [...new Set(flattenServers(iceServers).map((s) => s.uri))];
      if (uris.length === 0) list.append(el('li', 'none configured', 'hint'));
      for (const uri of uris) {
        const li = el('li');
        li.append(el('code', uri));
        list.append(li);
      }
    })
    .catch((err) => {
      list.replaceChildren(el('li', `could not load /api/ice-servers: ${err.message}`, 'hint'));
    });
}

// ======================================================================= diagnostics page

/** Candidate fields, from the RTCIceCandidate or, where the browser leaves them out, its string. */
function describeCandidate(c, url, ms) {
  const parts = c.candidate.replace(/^a=/, '').split(/\s+/);
  const field = (name) => {
    const i = parts.indexOf(name);
    return i >= 0 ? parts[i + 1] : null;
  };
  const priority = Number(c.priority ?? parts[3]);
  const out = {
    ms,
    type: c.type ?? field('typ'),
    foundation: c.foundation ?? parts[0].replace(/^candidate:/, ''),
    protocol: (c.protocol ?? parts[2] ?? '').toLowerCase(),
    address: c.address ?? parts[4],
    port: Number(c.port ?? parts[5]),
    priority,
    // RFC 8445 5.1.2.1: priority = 2^24 type pref + 2^8 local pref + (256 - component)
    typePref: priority >>> 24,
    localPref: (priority >>> 8) & 0xffff,
    component: 256 - (priority & 0xff),
    url: url ?? c.url ?? null,
    relayProtocol: null,
    relatedAddress: c.relatedAddress ?? field('raddr'),
    relatedPort: c.relatedPort ?? (field('rport') === null ? null : Number(field('rport'))),
    candidate: c.candidate,
  };
  if (out.type === 'relay') out.relayProtocol = relayProtocolOf({ relayProtocol: c.relayProtocol, url: out.url });
  return out;
}

/** Plain-language reason for failing to get a candidate from `urls`, from icecandidateerror events. */
function explainErrors(errors, urls, what) {
  const mine = errors.filter((e) => urls.includes(e.url));
  const codes = new Set(mine.map((e) => e.errorCode));
  if (codes.has(401)) return `check the TURN credentials (401 ${mine.find((e) => e.errorCode === 401).errorText || 'Unauthorized'})`;
  if (codes.has(403)) return 'the TURN server refused the request (403 Forbidden)';
  if (codes.has(486)) return 'the TURN server refused: allocation quota reached (486)';
  if (codes.has(508)) return 'the TURN server has no relay port free (508)';
  if (codes.has(701) && mine.filter((e) => e.errorCode === 701).every((e) => /lookup/i.test(e.errorText))) {
    return `cannot resolve the host name of ${urls.length > 1 ? 'the servers' : urls[0]} (701)`;
  }
  if (codes.has(701)) {
    const silent = [...new Set(mine.filter((e) => e.errorCode === 701).map((e) => e.url))];
    const reach = [...new Set(silent.map((u) => `${transportOf(u)} ${portOf(u)}`))];
    return `no answer from ${silent.length > 1 ? 'the servers' : silent[0]}: check that ${reach.join(' and ')} `
      + `${reach.length > 1 ? 'are' : 'is'} reachable (701)`;
  }
  if (mine.length) return mine.map((e) => `${e.errorCode} ${e.errorText}`.trim()).join('; ');
  const ports = [...new Set(urls.map(portOf))].join('/');
  return what === 'UDP/TCP'
    ? `check the TURN credentials (401) or that UDP/TCP ${ports} is reachable`
    : `check that UDP ${ports} is reachable`;
}

/** How a relay candidate reaches its TURN server: the browser's relayProtocol, else the URL's. */
function relayProtocolOf(c) {
  if (c.relayProtocol) return c.relayProtocol;
  if (!c.url) return null;
  if (scheme(c.url) === 'turns') return 'tls';
  const m = /[?&]transport=(udp|tcp)/i.exec(c.url);
  return m ? m[1].toLowerCase() : 'udp';
}

/** The transport a STUN/TURN URI uses: UDP, TCP or TLS. */
function transportOf(uri) {
  const s = scheme(uri);
  if (s === 'turns' || s === 'stuns') return 'TLS';
  const m = /[?&]transport=(udp|tcp)/i.exec(uri);
  return m ? m[1].toUpperCase() : 'UDP';
}

function portOf(uri) {
  const m = /^[a-z]+:(\[[^\]]+\]|[^:?]+)(?::(\d+))?/i.exec(uri);
  if (m && m[2]) return m[2];
  return scheme(uri) === 'turns' || scheme(uri) === 'stuns' ? '5349' : '3478';
}

/** The verdict of one gathering: {text, state: 'ok'|'warn'|'fail', details: [string]}. */
function judge({ servers, policy, candidates, errors, timedOut }) {
  const uris = servers.map((s) => s.uri);
  const stunUris = uris.filter((u) => ['stun', 'stuns'].includes(scheme(u)));
  const turnUris = uris.filter((u) => ['turn', 'turns'].includes(scheme(u)));
  const of = (type) => candidates.filter((c) => c.type === type);
  const uniq = (xs) => [...new Set(xs)];
  const parts = [];
  let state = 'ok';
  const worse = (s) => {
    if (s === 'fail' || (s === 'warn' && state === 'ok')) state = s;
  };

  if (policy === 'relay') {
    parts.push('host and srflx not gathered (policy relay)');
  } else {
    const host = of('host');
    if (host.length) {
      const hidden = host.every((c) => String(c.address).endsWith('.local'));
      parts.push(hidden ? 'host ok (addresses hidden as .local names)' : 'host ok');
    } else {
      parts.push('host none (no usable network interface?)');
      worse('warn');
    }
    const srflx = of('srflx');
    if (srflx.length) {
      parts.push(`srflx ok (public address ${uniq(srflx.map((c) => c.address)).join(', ')})`);
    } else if (stunUris.length + turnUris.length === 0) {
      parts.push('srflx not tested (no STUN server)');
    } else if (errors.some((e) => uris.includes(e.url) && e.errorCode === 701) && of('relay').length === 0) {
      parts.push(`srflx failed: ${explainErrors(errors, stunUris.length ? stunUris : turnUris, 'UDP')}`);
      worse('warn');
    } else {
      // Browsers drop a server-reflexive candidate equal to a host candidate (no NAT).
      parts.push('srflx none (no NAT in the way, or the STUN server did not answer)');
      worse('warn');
    }
  }

  const relay = of('relay');
  if (turnUris.length === 0) {
    parts.push('relay not tested (no TURN server)');
    if (policy === 'relay') worse('fail');
  } else if (relay.length) {
    const via = uniq(relay.map((c) => c.relayProtocol).filter(Boolean));
    parts.push(`relay ok (${uniq(relay.map((c) => c.address)).join(', ')}${via.length ? ` via ${via.join('/')}` : ''})`);
  } else {
    parts.push(`relay failed: ${explainErrors(errors, turnUris, 'UDP/TCP')}`);
    worse('fail');
  }
  if (candidates.length === 0) worse('fail');

  const details = servers.map(({ uri }) => {
    const got = candidates.filter((c) => c.url === uri);
    const errs = errors.filter((e) => e.url === uri);
    const gotText = got.length ? got.map((c) => `${c.type} ${c.address}:${c.port}`).join(', ') : 'no candidate';
    const errText = errs.length ? `; errors: ${uniq(errs.map((e) => `${e.errorCode} ${e.errorText}`.trim())).join(', ')}` : '';
    return `${uri}: ${gotText}${errText}`;
  });
  if (timedOut) details.push(`gathering stopped after ${GATHER_TIMEOUT_MS / 1000} s without completing`);
  return { text: parts.join(', '), state, details };
}

function initDiagnostics() {
  const serverBody = byTestId('servers').tBodies[0];
  const rowTemplate = document.getElementById('server-row');
  const candBody = byTestId('candidates').tBodies[0];
  const errBody = byTestId('errors').tBodies[0];
  const policySel = byTestId('policy');
  const gatherBtn = byTestId('gather');
  const relayBtn = byTestId('relay-test');
  const verdictEl = byTestId('verdict');
  const detailsEl = byTestId('verdict-details');
  const relayEl = byTestId('relay-result');
  const gatherState = byTestId('gathering-state');
  const gatherDone = byTestId('gathering-done');
  const serversStatus = byTestId('servers-status');

  let fetched = [];
  let candidates = [];
  let errors = [];
  let gathering = 'idle';
  let verdict = '';
  let relayResult = null;
  let current = null; // the gathering RTCPeerConnection

  function addServerRow({ uri = '', username = '', credential = '' } = {}) {
    const tr = rowTemplate.content.firstElementChild.cloneNode(true);
    tr.querySelector('.uri').value = uri;
    tr.querySelector('.username').value = username;
    tr.querySelector('.credential').value = credential;
    tr.querySelector('.remove').addEventListener('click', () => tr.remove());
    serverBody.append(tr);
    return tr;
  }

  function setServers(list) {
    serverBody.replaceChildren();
    for (const s of list) addServerRow(s);
  }

  /** The table's entries, as flat rows and as an RTCIceServer[]. */
  function readServers() {
    const rows = [];
    for (const tr of serverBody.rows) {
      const uri = tr.querySelector('.uri').value.trim();
      if (!uri) continue;
      rows.push({ uri, username: tr.querySelector('.username').value, credential: tr.querySelector('.credential').value });
    }
    const iceServers = rows.map(({ uri, username, credential }) => {
      const s = { urls: uri };
      if (username) s.username = username;
      if (credential) s.credential = credential;
      return s;
    });
    return { rows, iceServers };
  }

  byTestId('add-server').addEventListener('click', () => addServerRow().querySelector('.uri').focus());
  byTestId('reset-servers').addEventListener('click', () => setServers(fetched));

  fetchIceServers()
    .then(({ iceServers, iceTtl }) => {
      fetched = flattenServers(iceServers);
      setServers(fetched);
      serversStatus.textContent = fetched.length
        ? `Loaded ${fetched.length} URI(s) from /api/ice-servers${iceTtl ? `; the credential is valid for ${Math.round(iceTtl / 60)} min` : ''}.`
        : '/api/ice-servers lists no server: add some below.';
    })
    .catch((err) => {
      serversStatus.textContent = `Could not load /api/ice-servers (${err.message}): add servers below.`;
    });

  function setVerdict(text, state, details = []) {
    verdict = state === 'busy' ? '' : text;
    verdictEl.textContent = text;
    verdictEl.dataset.state = state;
    detailsEl.replaceChildren(...details.map((d) => el('li', d)));
  }

  function addCandidateRow(c) {
    const tr = el('tr');
    tr.dataset.type = c.type;
    const typeCell = el('td', c.type, `type type-${c.type}`);
    if (c.relayProtocol) typeCell.title = `relay reached over ${c.relayProtocol}`;
    tr.append(
      el('td', c.ms, 'num'),
      typeCell,
      el('td', c.foundation),
      el('td', c.protocol + (c.relayProtocol ? ` (${c.relayProtocol} to TURN)` : '')),
      el('td', c.address, 'addr'),
      el('td', c.port, 'num'),
      el('td', c.priority, 'num'),
      el('td', `${c.typePref} | ${c.localPref} | ${c.component}`, 'num'),
      el('td', c.url ?? '', 'addr'),
    );
    candBody.append(tr);
  }

  function addErrorRow(e) {
    const tr = el('tr');
    tr.append(
      el('td', e.ms, 'num'),
      el('td', e.url, 'addr'),
      el('td', e.address ? `${e.address}:${e.port}` : '', 'addr'),
      el('td', e.errorCode, 'num'),
      el('td', e.errorText),
    );
    errBody.append(tr);
  }

  function errorOf(ev, t0) {
    return {
      ms: Math.round(performance.now() - t0),
      url: ev.url ?? '',
      address: ev.address ?? null,
      port: ev.port ?? null,
      errorCode: ev.errorCode,
      errorText: ev.errorText ?? '',
    };
  }

  async function gather() {
    if (current) current.close();
    const { rows, iceServers } = readServers();
    const policy = policySel.value === 'relay' ? 'relay' : 'all';
    candidates = [];
    errors = [];
    candBody.replaceChildren();
    errBody.replaceChildren();
    gatherDone.textContent = '';
    verdict = '';
    setVerdict('gathering…', 'busy');
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: policy });
    } catch (err) {
      gathering = 'complete';
      gatherState.textContent = 'not started';
      setVerdict(`invalid ICE server list: ${err.message}`, 'fail');
      return;
    }
    current = pc;
    gathering = 'gathering';
    gatherState.textContent = 'gathering';
    gatherBtn.disabled = true;
    const t0 = performance.now();
    let finished = false;
    let timer = null;
    const finish = (timedOut) => {
      if (finished || current !== pc) return;
      finished = true;
      clearTimeout(timer);
      const ms = Math.round(performance.now() - t0);
      gathering = 'complete';
      gatherState.textContent = timedOut ? 'stopped' : 'complete';
      gatherDone.textContent = timedOut ? ` — stopped after ${ms} ms` : ` — done after ${ms} ms`;
      const v = judge({ servers: rows, policy, candidates, errors, timedOut });
      setVerdict(v.text, v.state, v.details);
      gatherBtn.disabled = false;
      pc.close();
    };
    pc.onicecandidate = (ev) => {
      if (!ev.candidate) {
        finish(false);
        return;
      }
      if (!ev.candidate.candidate) return; // end of a generation
      const c = describeCandidate(ev.candidate, ev.url, Math.round(performance.now() - t0));
      candidates.push(c);
      addCandidateRow(c);
    };
    pc.onicecandidateerror = (ev) => {
      const e = errorOf(ev, t0);
      errors.push(e);
      addErrorRow(e);
    };
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState === 'complete') finish(false);
    };
    timer = setTimeout(() => finish(true), GATHER_TIMEOUT_MS);
    setTimeout(() => {
      if (!finished && current === pc) {
        setVerdict('gathering… a server has not answered yet: the browser waits about 40 s before it gives up on one', 'busy');
      }
    }, SLOW_HINT_MS);
    try {
      pc.createDataChannel('probe');
      await pc.setLocalDescription(await pc.createOffer());
    } catch (err) {
      finished = true;
      clearTimeout(timer);
      gathering = 'complete';
      gatherBtn.disabled = false;
      setVerdict(`could not start gathering: ${err.message}`, 'fail');
    }
  }

  async function selectedPair(pc) {
    const report = await pc.getStats();
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId && !pair) pair = report.get(s.selectedCandidatePairId) ?? null;
    });
    if (!pair) {
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && !pair) pair = s;
      });
    }
    if (!pair) return { localType: null, remoteType: null };
    return {
      localType: report.get(pair.localCandidateId)?.candidateType ?? null,
      remoteType: report.get(pair.remoteCandidateId)?.candidateType ?? null,
    };
  }

  function setRelayResult(result, text) {
    relayResult = result;
    relayEl.textContent = text;
    relayEl.dataset.state = result ? (result.ok ? 'ok' : 'fail') : 'busy';
  }

  async function relayTest() {
    const { rows, iceServers } = readServers();
    const turnUris = rows.map((r) => r.uri).filter((u) => ['turn', 'turns'].includes(scheme(u)));
    relayBtn.disabled = true;
    setRelayResult(null, 'relay test running…');
    const fail = (reason, extra = {}) => {
      setRelayResult({ ok: false, rttMs: null, localType: null, remoteType: null, reason, ...extra }, `relay test failed: ${reason}`);
    };
    if (turnUris.length === 0) {
      fail('no TURN server in the list');
      relayBtn.disabled = false;
      return;
    }
    let a;
    let b;
    const timers = [];
    try {
      const config = { iceServers, iceTransportPolicy: 'relay' };
      a = new RTCPeerConnection(config);
      b = new RTCPeerConnection(config);
      const errs = [];
      const relays = { a: 0, b: 0 };
      const t0 = performance.now();
      const wire = (from, to, name) => {
        from.onicecandidate = (ev) => {
          if (!ev.candidate || !ev.candidate.candidate) return;
          if (ev.candidate.type === 'relay' || / typ relay /.test(ev.candidate.candidate)) relays[name] += 1;
          to.addIceCandidate(ev.candidate).catch(() => {});
        };
        from.onicecandidateerror = (ev) => errs.push(errorOf(ev, t0));
      };
      wire(a, b, 'a');
      wire(b, a, 'b');
      b.ondatachannel = ({ channel }) => {
        channel.onmessage = (ev) => channel.send(ev.data); // echo
      };
      const dc = a.createDataChannel('ping', { ordered: true });
      const opened = new Promise((resolve, reject) => {
        dc.onopen = resolve;
        const check = () => {
          if (a.connectionState === 'failed' || b.connectionState === 'failed') reject(new Error('ice-failed'));
        };
        a.onconnectionstatechange = check;
        b.onconnectionstatechange = check;
        timers.push(setTimeout(() => reject(new Error('timeout')), RELAY_CONNECT_TIMEOUT_MS));
      });
      await a.setLocalDescription();
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription();
      await a.setRemoteDescription(b.localDescription);
      try {
        await opened;
      } catch (err) {
        if (relays.a === 0 || relays.b === 0) {
          fail(`no relay candidate: ${explainErrors(errs, turnUris, 'UDP/TCP')}`);
        } else if (err.message === 'ice-failed') {
          fail('relay candidates were gathered but the two relays could not reach each other: the TURN server must '
            + 'allow peers that are its own relay addresses (and permissions for them)');
        } else {
          fail(`no connection within ${RELAY_CONNECT_TIMEOUT_MS / 1000} s (relay candidates: ${relays.a} and ${relays.b})`);
        }
        return;
      }
      // Pings, one at a time, each echoed by the other connection.
      const rtts = [];
      let pending = null;
      dc.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (pending && msg.seq === pending.seq) pending.resolve(performance.now() - msg.t);
      };
      for (let seq = 0; seq < RELAY_PINGS; seq += 1) {
        const rtt = await new Promise((resolve) => {
          pending = { seq, resolve };
          timers.push(setTimeout(() => resolve(null), PING_TIMEOUT_MS));
          dc.send(JSON.stringify({ seq, t: performance.now() }));
        });
        if (rtt !== null) rtts.push(rtt);
      }
      const pair = await selectedPair(a);
      if (rtts.length === 0) {
        fail(`the data channel opened but none of ${RELAY_PINGS} pings came back`, pair);
        return;
      }
      rtts.sort((x, y) => x - y);
      const p50 = Math.round(rtts[Math.floor((rtts.length - 1) / 2)] * 10) / 10;
      const ok = pair.localType === 'relay' && pair.remoteType === 'relay';
      const result = { ok, rttMs: p50, ...pair, sent: RELAY_PINGS, received: rtts.length };
      const pairText = `selected pair ${pair.localType ?? '?'} ↔ ${pair.remoteType ?? '?'}`;
      if (ok) {
        setRelayResult(result, `relay test passed: RTT ${p50} ms (p50), ${pairText} (${rtts.length}/${RELAY_PINGS} pings answered)`);
      } else {
        result.reason = `${pairText}, expected relay ↔ relay`;
        setRelayResult(result, `relay test failed: ${result.reason}`);
      }
    } catch (err) {
      fail(err.message);
    } finally {
      for (const t of timers) clearTimeout(t);
      if (a) a.close();
      if (b) b.close();
      relayBtn.disabled = false;
    }
  }

  gatherBtn.addEventListener('click', () => gather());
  relayBtn.addEventListener('click', () => relayTest());

  Object.defineProperty(window, 'turnpikeDiagnostics', {
    value: Object.freeze({
      candidates: () => candidates.map((c) => ({ ...c })),
      errors: () => errors.map((e) => ({ ...e })),
      gathering: () => gathering,
      verdict: () => verdict,
      relayResult: () => (relayResult ? { ...relayResult } : null),
    }),
    writable: false,
    configurable: false,
  });
}

// ======================================================================= start

if (document.body.dataset.page === 'index') initIndex();
else if (document.body.dataset.page === 'diagnostics') initDiagnostics();

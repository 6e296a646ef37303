// Turnpike signaling client: the WebSocket protocol of docs/signaling.md.
//
//   import { Signaling } from '/static/signaling.js';
//   const sig = new Signaling();                  // ws(s)://<this host>/ws
//   sig.on('peer-joined', (m) => …);              // m is the server's frame
//   const joined = await sig.join('room', { token });
//   sig.send(peerId, 'offer', data);
//
// Events (each listener gets the server's frame as a plain object; also dispatched as
// CustomEvents on the instance, with the frame in `detail`):
//   joined        {id, room, peers, resume, resumed, iceServers, iceTtl, previousId}
//   peer-joined   {id}
//   peer-left     {id}
//   offer, answer, candidate, bye, message   {type, from, data}   (directed frames)
//   signal        every directed frame, whatever its type
//   broadcast     {from, data}
//   error         {code, message, ref?, fatal}
//   state         {state, previous, delayMs?, attempt?}
//
// The client answers the server's `ping` with `pong`, and reconnects on its own when the socket
// closes or goes silent: exponential backoff from 250 ms, capped at 5 s, rejoining with the
// `resume` token of the last `joined` so it keeps its peer id (`resumed: true`). If the server
// answers `resume-failed`, it joins afresh and gets a new id (`joined` with `resumed: false` and
// `previousId` set). Directed frames sent while disconnected are queued and sent after a resumed
// join (dropped after a fresh one: they were for the old id's sessions).

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5000;
// The server sends a frame at least every 20 s (a ping every 10 s unless traffic both ways made
// it unnecessary); 35 s of silence means the connection is dead.
const SILENCE_MS = 35000;
const WATCHDOG_MS = 5000;
const MAX_QUEUE = 256;
const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;

export const DIRECTED_TYPES = Object.freeze(['offer', 'answer', 'candidate', 'bye', 'message']);

/** The signaling endpoint on the origin of `loc`: ws://host/ws, or wss:// under https. */
export function signalingUrl(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}

/** Whether `name` is a valid room name (1–64 of [A-Za-z0-9._-]). */
export function isValidRoom(name) {
  return typeof name === 'string' && ROOM_RE.test(name);
}

export class SignalingError extends Error {
  constructor(frame) {
    super(`${frame.code}: ${frame.message}`);
    this.name = 'SignalingError';
    this.code = frame.code;
    this.ref = frame.ref;
  }
}

export class Signaling extends EventTarget {
  /**
   * @param {object} [options]
   * @param {string} [options.url] WebSocket URL (default: /ws on this page's origin)
   * @param {number} [options.minBackoffMs]
   * @param {number} [options.maxBackoffMs]
   * @param {number} [options.silenceMs] reconnect when nothing arrived for this long
   */
  constructor(options = {}) {
    super();
    this.url = options.url ?? signalingUrl();
    this.minBackoffMs = options.minBackoffMs ?? MIN_BACKOFF_MS;
    this.maxBackoffMs = options.maxBackoffMs ?? MAX_BACKOFF_MS;
    this.silenceMs = options.silenceMs ?? SILENCE_MS;
    /** 'idle' | 'connecting' | 'joined' | 'reconnecting' | 'closed' */
    this.state = 'idle';
    this.id = null;
    this.room = null;
    this.iceServers = [];
    this.iceTtl = null;
    this.reconnects = 0;
    this._token = undefined;
    this._resume = null;
    this._ws = null;
    this._attempt = 0;
    this._timer = null;
    this._watchdog = null;
    this._lastRx = 0;
    this._queue = [];
    this._joinWaiters = null;
    this._onOnline = () => {
      if (this.state === 'reconnecting') {
        clearTimeout(this._timer);
        this._open();
      }
    };
  }

  /** Subscribes `fn(frame)` to event `type`; returns a function that unsubscribes. */
  on(type, fn) {
    const listener = (ev) => fn(ev.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /**
   * Connects and joins `room`. Resolves with the first `joined` frame; rejects on a join error
   * (bad room, bad token, room full) or when closed before joining. Reconnects by itself
   * afterwards.
   */
  join(room, { token } = {}) {
    if (this.state !== 'idle') {
      return Promise.reject(new Error(`join() called in state ${this.state}`));
    }
    if (!isValidRoom(room)) {
      return Promise.reject(new Error(`invalid room name ${JSON.stringify(room)}: 1–64 of A-Z a-z 0-9 . _ -`));
    }
    this.room = room;
    this._token = token || undefined;
    const joined = new Promise((resolve, reject) => {
      this._joinWaiters = { resolve, reject };
    });
    window.addEventListener('online', this._onOnline);
    this._watchdog = setInterval(() => this._checkSilence(), WATCHDOG_MS);
    this._open();
    return joined;
  }

  /**
   * Sends a directed frame (`offer`, `answer`, `candidate`, `bye`, `message`) to peer `to`.
   * Queued while reconnecting. Returns false if the frame was dropped (closed, or queue full).
   */
  send(to, type, data) {
    if (!DIRECTED_TYPES.includes(type)) throw new Error(`not a directed type: ${type}`);
    return this._sendOrQueue({ type, to, data });
  }

  /** Sends `data` to every other peer of the room. */
  broadcast(data) {
    return this._sendOrQueue({ type: 'broadcast', data });
  }

  /** Leaves the room at once (the others see `peer-left` now) and stops reconnecting. */
  leave() {
    if (this._ws && this._ws.readyState === WebSocket.OPEN && this.state === 'joined') {
      try {
        this._ws.send(JSON.stringify({ type: 'leave' }));
      } catch {
        // closing anyway
      }
    }
    this.close();
  }

  /** Closes the connection without `leave` (the server keeps the id for its grace window). */
  close() {
    this._shutdown();
    this._setState('closed');
  }

  // ---- internals ----

  _shutdown() {
    clearTimeout(this._timer);
    clearInterval(this._watchdog);
    window.removeEventListener('online', this._onOnline);
    this._detach(1000, 'bye');
    this._queue = [];
    if (this._joinWaiters) {
      this._joinWaiters.reject(new Error('signaling closed before joining'));
      this._joinWaiters = null;
    }
  }

  _setState(state, extra = {}) {
    const previous = this.state;
    this.state = state;
    this._emit('state', { state, previous, ...extra });
  }

  _emit(type, frame) {
    this.dispatchEvent(new CustomEvent(type, { detail: frame }));
  }

  _open() {
    this._setState(this._attempt === 0 && !this.id ? 'connecting' : 'reconnecting', { attempt: this._attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this._emit('error', { code: 'connect-failed', message: String(err), fatal: true });
      this._fail(err);
      return;
    }
    this._ws = ws;
    this._lastRx = Date.now();
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._sendJoin();
    };
    ws.onmessage = (ev) => {
      if (this._ws !== ws) return;
      this._lastRx = Date.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        console.warn('signaling: frame is not JSON', ev.data);
        return;
      }
      if (frame && typeof frame === 'object' && typeof frame.type === 'string') this._onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._scheduleReconnect(`closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`);
    };
    ws.onerror = () => {
      // A close event follows.
    };
  }

  _sendJoin() {
    const frame = { type: 'join', room: this.room };
    if (this._token) frame.token = this._token;
    if (this._resume) frame.resume = this._resume;
    this._ws.send(JSON.stringify(frame));
  }

  _detach(code, reason) {
    const ws = this._ws;
    this._ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  _checkSilence() {
    if (this._ws && Date.now() - this._lastRx > this.silenceMs) {
      this._detach(4000, 'silent');
      this._scheduleReconnect('no frame for ' + Math.round(this.silenceMs / 1000) + ' s');
    }
  }

  _scheduleReconnect(why) {
    if (this.state === 'closed') return;
    const base = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** this._attempt);
    // Up to 20 % jitter below the nominal delay, so a room's peers do not reconnect in lockstep.
    const delayMs = Math.round(base * (0.8 + 0.2 * Math.random()));
    this._attempt += 1;
    clearTimeout(this._timer);
    this._setState('reconnecting', { delayMs, attempt: this._attempt, why });
    this._timer = setTimeout(() => this._open(), delayMs);
  }

  _fail(err) {
    if (this._joinWaiters) {
      this._joinWaiters.reject(err);
      this._joinWaiters = null;
    }
    this._shutdown();
    this._setState('closed');
  }

  _sendOrQueue(frame) {
    if (this.state === 'closed') return false;
    if (this.state === 'joined' && this._ws && this._ws.readyState === WebSocket.OPEN) {
      this._ws.send(JSON.stringify(frame));
      return true;
    }
    if (this._queue.length >= MAX_QUEUE) return false;
    this._queue.push(frame);
    return true;
  }

  _onFrame(frame) {
    switch (frame.type) {
      case 'ping':
        this._ws.send(JSON.stringify({ type: 'pong' }));
        return;
      case 'pong':
        return;
      case 'joined':
        this._onJoined(frame);
        return;
      case 'error':
        this._onError(frame);
        return;
      case 'peer-joined':
      case 'peer-left':
      case 'broadcast':
        this._emit(frame.type, frame);
        return;
      default:
        if (DIRECTED_TYPES.includes(frame.type)) {
          this._emit(frame.type, frame);
          this._emit('signal', frame);
        } else {
          console.warn('signaling: unknown frame type', frame.type);
        }
    }
  }

  _onJoined(frame) {
    const previousId = this.id;
    const wasReconnect = this._attempt > 0 || previousId !== null;
    this.id = frame.id;
    this.room = frame.room ?? this.room;
    this._resume = frame.resume ?? null;
    this.iceServers = Array.isArray(frame.iceServers) ? frame.iceServers : [];
    this.iceTtl = frame.iceTtl ?? null;
    this._attempt = 0;
    if (wasReconnect) this.reconnects += 1;
    const queued = this._queue;
    this._queue = [];
    this._setState('joined', { resumed: !!frame.resumed });
    this._emit('joined', { ...frame, previousId });
    // After a fresh join with a new id, frames queued for the old id's sessions are dropped.
    if (frame.resumed || previousId === null) {
      for (const f of queued) this._sendOrQueue(f);
    }
    if (this._joinWaiters) {
      this._joinWaiters.resolve(frame);
      this._joinWaiters = null;
    }
  }

  _onError(frame) {
    const joining = this.state !== 'joined';
    if (frame.code === 'resume-failed') {
      // Our old id is gone: join afresh on this connection (new id).
      this._emit('error', { ...frame, fatal: false });
      this._resume = null;
      if (this._ws && this._ws.readyState === WebSocket.OPEN) this._sendJoin();
      return;
    }
    // bad-token closes the connection; a join refused for its room or capacity will not succeed
    // by retrying either.
    const fatal = frame.code === 'bad-token' || (joining && (frame.ref === 'join' || frame.code === 'room-full'));
    this._emit('error', { ...frame, fatal });
    if (fatal) this._fail(new SignalingError(frame));
  }
}

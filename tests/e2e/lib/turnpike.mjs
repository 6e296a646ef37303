// Runs the real `turnpike serve` binary for a test: free loopback ports, waits for its JSON
// "listening" and "ready" log lines, and stops it with SIGTERM (the caller asserts exit 0).

import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export function turnpikeBin() {
  let bin = process.env.TURNPIKE_BIN || path.join(REPO, 'target', 'debug', 'turnpike');
  // A relative TURNPIKE_BIN (target/release/turnpike) may be meant from the repository root.
  if (!path.isAbsolute(bin) && !fs.existsSync(bin) && fs.existsSync(path.join(REPO, bin))) bin = path.join(REPO, bin);
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`turnpike binary not found at ${bin}: run \`cargo build -p turnpike\` or set TURNPIKE_BIN`);
  }
  return bin;
}

/** A port free for both UDP and TCP on `host` (default 127.0.0.1; closed again before returning). */
export async function freePort(host = '127.0.0.1') {
  for (let attempt = 0; attempt < 50; attempt++) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, host, () => resolve(udp.address().port));
    });
    const tcp = net.createServer();
    const ok = await new Promise((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
    await new Promise((resolve) => udp.close(resolve));
    if (ok) {
      await new Promise((resolve) => tcp.close(resolve));
      return port;
    }
  }
  throw new Error(`no free UDP+TCP port on ${host}`);
}

/**
 * `size` consecutive ports in 20000..32767 that all bind for UDP on every IP of `ips`:
 * `{ min, max }`. The default relay range (49152–65535) is shared with every program on the
 * machine (and Linux's ephemeral ports); one holding many of them made Allocates fail with 508
 * (issue #13). The sockets close again; the server's own retries absorb a port taken meanwhile.
 */
export async function freeRelayRange(ips = ['0.0.0.0'], size = 200) {
  const [floor, ceiling] = [20000, 32767];
  for (let attempt = 0; attempt < 100; attempt++) {
    const min = floor + Math.floor(Math.random() * (ceiling - floor - size + 2));
    const held = [];
    let ok = true;
    for (let port = min; ok && port < min + size; port++) {
      for (const ip of ips) {
        const udp = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4');
        held.push(udp);
        ok = await new Promise((resolve) => {
          udp.once('error', () => resolve(false));
          udp.bind(port, ip, () => resolve(true));
        });
        if (!ok) break;
      }
    }
    await Promise.all(held.map((udp) => new Promise((resolve) => {
      try { udp.close(resolve); } catch { resolve(); }
    })));
    if (ok) return { min, max: min + size - 1 };
  }
  throw new Error(`no ${size} free consecutive UDP ports on ${ips.join(', ')}`);
}

/** The `--relay-ip` values in `args`, or 0.0.0.0 (the server's detected IPs are all in it). */
function relayIps(args) {
  const ips = args.flatMap((a, i) => (a === '--relay-ip' && i + 1 < args.length ? [args[i + 1]] : []));
  return ips.length ? ips : ['0.0.0.0'];
}

let servesHttpCache;
/** Whether this `turnpike serve` has an HTTP listener (flag --http-listen). */
function servesHttp() {
  if (servesHttpCache === undefined) {
    const help = spawnSync(turnpikeBin(), ['serve', '--help'], { encoding: 'utf8', timeout: 20_000 });
    servesHttpCache = (help.stdout || '').includes('--http-listen');
  }
  return servesHttpCache;
}

/**
 * Starts `turnpike serve --listen HOST:PORT --log-format json ...args` and resolves once it
 * logged "ready". Retries on a port taken in the meantime.
 *
 * Options: `host` is the STUN/TURN listen IP (default 127.0.0.1; `0.0.0.0` to be reachable on
 * every address of this machine), `httpHost` the HTTP listen IP (default 127.0.0.1). The
 * server's `port` and `httpPort` are free ports chosen here.
 */
export async function startTurnpike(args = [], { host = '127.0.0.1', httpHost = '127.0.0.1' } = {}) {
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort(host);
    const cmd = [
      'serve', '--listen', `${host}:${port}`, '--log-format', 'json', '--log-level',
      process.env.TURNPIKE_TEST_LOG_LEVEL || 'info',
    ];
    // The metrics listener defaults to 127.0.0.1:9641, which servers side by side would fight
    // over.
    cmd.push('--metrics-listen', 'off');
    // The HTTP listener defaults to 0.0.0.0:8080: give it a free port instead.
    let httpPort = null;
    if (servesHttp()) {
      do httpPort = await freePort(httpHost); while (httpPort === port);
      cmd.push('--http-listen', `${httpHost}:${httpPort}`);
    }
    cmd.push(...args);
    // SIGTERM drains until the last allocation ends: the test's SIGTERM must stop it at once.
    if (!args.includes('--drain-timeout')) cmd.push('--drain-timeout', '0');
    if (!args.some((a) => a === '--min-port' || a === '--max-port' || a === '--config')) {
      const range = await freeRelayRange(relayIps(args));
      cmd.push('--min-port', String(range.min), '--max-port', String(range.max));
    }
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('TURNPIKE_') && k !== 'RUST_LOG'),
    );
    const proc = spawn(turnpikeBin(), cmd, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new Server(proc, port, cmd);
    server.host = host;
    server.httpPort = httpPort;
    try {
      await server.ready();
      return server;
    } catch (e) {
      lastError = e;
      await server.kill();
      if (!/in use|os error 98/i.test(server.output())) throw e;
    }
  }
  throw lastError;
}

class Server {
  constructor(proc, port, args) {
    this.proc = proc;
    this.port = port;
    this.args = args;
    this.lines = [];
    this.listening = [];
    this.exit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    let buffered = '';
    const onData = (chunk) => {
      buffered += chunk.toString();
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        this.onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    this.readyPromise = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.exit.then(({ code, signal }) =>
        reject(new Error(`turnpike exited (code ${code}, signal ${signal}) before "ready":\n${this.output()}`)));
    });
  }

  onLine(line) {
    this.lines.push(line);
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    const fields = entry.fields || {};
    if (fields.message === 'listening') this.listening.push({ transport: fields.transport, address: fields.address });
    if (fields.message === 'ready') this.resolveReady();
  }

  async ready() {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`turnpike not ready within ${READY_TIMEOUT_MS} ms:\n${this.output()}`)), READY_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.readyPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  output() {
    return `$ turnpike ${this.args.join(' ')}\n${this.lines.slice(-100).join('\n')}`;
  }

  /** SIGTERM, then the exit status ({code, signal}); kills after STOP_TIMEOUT_MS. */
  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), STOP_TIMEOUT_MS);
    });
    const result = await Promise.race([this.exit, timeout]);
    clearTimeout(timer);
    if (result === null) {
      await this.kill();
      return { code: null, signal: 'timeout' };
    }
    return result;
  }

  async kill() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exit;
    }
  }
}

// `turnpike p2p` as a child process for the browser tests: stdin piped (chat lines), stdout and
// stderr collected line by line, waiting for a line, and a stop that reports the exit status.

import { spawn } from 'node:child_process';

import { until } from './browser.mjs';
import { turnpikeBin } from './turnpike.mjs';

export class P2p {
  /** Starts `turnpike p2p --signal ws://<host>:<httpPort>/ws --room <room> ...args`. */
  constructor(server, room, args = []) {
    this.args = ['p2p', '--signal', `ws://${server.host}:${server.httpPort}/ws`, '--room', room, ...args];
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('TURNPIKE_') && k !== 'RUST_LOG'),
    );
    env.RUST_LOG = process.env.TURNPIKE_TEST_P2P_LOG || 'info';
    this.proc = spawn(turnpikeBin(), this.args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.stdout = [];
    this.stderr = [];
    this.exit = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited = null;
    this.exit.then((status) => { this.exited = status; });
    collect(this.proc.stdout, this.stdout);
    collect(this.proc.stderr, this.stderr);
  }

  /** Waits for a stdout line matching `re`; returns the line. */
  async line(re, what, timeout = 30_000) {
    const found = await until(
      `${what} (turnpike p2p stdout /${re.source}/)`,
      () => ({ line: this.stdout.find((l) => re.test(l)) ?? null, exited: this.exited, tail: this.stdout.slice(-5) }),
      (s) => s.line !== null || s.exited !== null,
      { timeout, interval: 100 },
    );
    if (found.line === null) throw new Error(`turnpike p2p exited (${JSON.stringify(found.exited)}) before ${what}`);
    return found.line;
  }

  /** Types one line into the chat. */
  type(text) {
    this.proc.stdin.write(`${text}\n`);
  }

  /** Closes stdin (the end of the chat) and waits for the exit status, killing after `timeout` ms. */
  async finish(timeout = 15_000) {
    this.proc.stdin.end();
    return this.waitExit(timeout);
  }

  async waitExit(timeout = 15_000) {
    let timer;
    const killed = new Promise((resolve) => {
      timer = setTimeout(() => {
        this.proc.kill('SIGKILL');
        resolve(null);
      }, timeout);
    });
    const status = await Promise.race([this.exit, killed]);
    clearTimeout(timer);
    return status ?? { code: null, signal: 'SIGKILL (timed out)' };
  }

  /** Kills it if still running. */
  async kill() {
    if (this.exited === null) {
      this.proc.kill('SIGKILL');
      await this.exit;
    }
  }

  output() {
    return `$ turnpike ${this.args.join(' ')}\n--- stdout ---\n${this.stdout.slice(-60).join('\n')}\n--- stderr ---\n${this.stderr.slice(-60).join('\n')}`;
  }
}

function collect(stream, into) {
  let buffered = '';
  stream.on('data', (chunk) => {
    buffered += chunk.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      into.push(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
}

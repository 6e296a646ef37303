// A real `redis-server` (Debian's, installed by scripts/install-test-deps) for a test: a free
// loopback port, no persistence, stopped by PID (shared/TESTING-NOTES.md "Redis").

import { spawn } from 'node:child_process';
import net from 'node:net';

import { freePort } from './turnpike.mjs';

const START_TIMEOUT_MS = 20_000;

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts `redis-server --port P --bind 127.0.0.1 --save '' --appendonly no` on a free port and
 * resolves once it accepts connections: `{ port, url, stop() }`. `stop()` (SIGKILL, then the
 * exit) may be called more than once.
 */
export async function startRedis() {
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startRedisOn(await freePort());
    } catch (e) {
      // Another program took the port between the check and redis-server's bind: another.
      if (!/in use/i.test(e.message)) throw e;
      lastError = e;
    }
  }
  throw lastError;
}

async function startRedisOn(port) {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (chunk) => { output += chunk; });
  proc.stderr.on('data', (chunk) => { output += chunk; });
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
    proc.once('error', (error) => resolve({ error }));
  });
  const redis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) proc.kill('SIGKILL');
      await exited;
    },
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) {
      const how = await exited;
      throw new Error(`redis-server on port ${port} did not start (${JSON.stringify(how)}; scripts/install-test-deps installs it):\n${output}`);
    }
    if (await accepts(port)) return redis;
    if (Date.now() > deadline) {
      await redis.stop();
      throw new Error(`redis-server did not accept connections on port ${port} within ${START_TIMEOUT_MS} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The room page (web/room.html) seen through its test hook `window.turnpike` and its
// data-testids (docs/web.md): joining, the peers it is connected to, a peer's card, the chat.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { until } from './browser.mjs';

/** A room name no other test uses. */
export function randomRoom() {
  return `e2e-${crypto.randomBytes(4).toString('hex')}`;
}

/** Waits for the room page to have joined; returns its peer id. */
export async function joined(page, name) {
  const s = await until(
    `${name} to join the room`,
    () => page.evaluate(() => ({ id: window.turnpike?.id ?? null, signaling: window.turnpike?.signaling() })),
    (s) => s.id && s.signaling === 'joined',
  );
  return s.id;
}

/**
 * Waits until `page` lists exactly `ids` as peers, each `connected` with a known path and RTT;
 * returns its peers().
 */
export async function connectedTo(page, name, ids, timeout = 30_000) {
  return until(
    `${name} connected to ${ids.join(', ')}`,
    () => page.evaluate(() => window.turnpike.peers()),
    (peers) => peers.length === ids.length
      && ids.every((id) => peers.some((p) => p.id === id && p.state === 'connected' && p.localType && p.remoteType
        && p.rtt !== null && p.channel === 'open')),
    { timeout },
  );
}

/** The card of peer `id` in `page`, as the user sees it. */
export async function card(page, id) {
  return page.evaluate((peerId) => {
    const el = document.querySelector(`[data-testid="peer-${peerId}"]`);
    if (!el) return null;
    const q = (t) => el.querySelector(`[data-testid="${t}"]`);
    const path = q('path');
    return {
      state: q('state').textContent,
      path: path.textContent,
      localType: path.dataset.localType,
      remoteType: path.dataset.remoteType,
      pathTitle: path.title,
      rtt: q('rtt').textContent,
      channel: q('channel').textContent,
      hasVideo: el.classList.contains('has-video'),
    };
  }, id);
}

export async function listedPeers(page) {
  return page.evaluate(() => ({
    peers: window.turnpike.peers().map((p) => p.id),
    cards: [...document.querySelectorAll('[data-testid^="peer-"]')].map((e) => e.dataset.testid.slice('peer-'.length)),
  }));
}

/** Types `text` into the chat of `from` and waits for it in `to`'s log, attributed to `fromId`. */
export async function chat(from, to, fromId, text) {
  await from.fill('[data-testid="chat-input"]', text);
  await from.click('[data-testid="chat-send"]');
  const got = await until(
    `chat message "${text}" from ${fromId}`,
    () => to.evaluate((t) => ({
      hook: window.turnpike.messages().filter((m) => m.text === t),
      log: [...document.querySelectorAll('[data-testid="chat-log"] li')].map((li) => ({
        from: li.querySelector('.from')?.textContent, text: li.querySelector('.text')?.textContent,
      })).filter((m) => m.text === t),
    }), text),
    (s) => s.hook.length > 0 && s.log.length > 0,
    { timeout: 10_000 },
  );
  assert.deepEqual(got.hook.map(({ from: f, self }) => ({ from: f, self })), [{ from: fromId, self: false }]);
  assert.deepEqual(got.log, [{ from: fromId, text }]);
  // The sender's own log has it too, marked as its own.
  const own = await from.evaluate((t) => window.turnpike.messages().filter((m) => m.text === t), text);
  assert.deepEqual(own.map(({ from: f, self }) => ({ from: f, self })), [{ from: fromId, self: true }]);
}

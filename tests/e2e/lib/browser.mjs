// Headless Chromium for the browser tests: launching it with the flags known to work here, polling
// a page until a condition holds, and the pages a test opened (console, uncaught errors,
// screenshots in test-output/, every browser closed at the end).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { REPO } from './turnpike.mjs';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const OUTPUT = path.join(REPO, 'test-output');

// Flags known to work headless as root here (shared/TESTING-NOTES.md); playwright adds
// --headless and a fresh temporary --user-data-dir per launched browser. Fake camera and
// microphone, permission prompts accepted, and host candidates with real addresses instead of
// mDNS names (merged into playwright's own --disable-features below: Chrome only honours the
// last --disable-features switch).
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
];
const DISABLED_FEATURES = ['WebRtcHideLocalIpsWithMdns'];

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `text` as a file-name part: lower-case letters, digits and dashes. */
export function slug(text) {
  return text.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase().slice(0, 80);
}

let playwrightDisableFeatures; // playwright's own `--disable-features=…` switch, or null

/**
 * A fresh headless Chromium: its own process and temporary user-data-dir. Launched as a browser
 * server and connected to, so that its process is known (`browser.process()`, for the hard-kill
 * test); `browser.close()` also stops the process.
 */
export async function launchBrowser() {
  if (playwrightDisableFeatures === undefined) {
    const probe = await chromium.launchServer({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    try {
      playwrightDisableFeatures = probe.process().spawnargs.find((a) => a.startsWith('--disable-features=')) ?? null;
    } finally {
      await probe.close();
    }
  }
  const features = [
    ...(playwrightDisableFeatures ? playwrightDisableFeatures.slice('--disable-features='.length).split(',') : []),
    ...DISABLED_FEATURES,
  ].filter(Boolean);
  const server = await chromium.launchServer({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, `--disable-features=${features.join(',')}`],
    ignoreDefaultArgs: playwrightDisableFeatures ? [playwrightDisableFeatures] : [],
  });
  let browser;
  try {
    browser = await chromium.connect(server.wsEndpoint());
  } catch (e) {
    await server.close();
    throw e;
  }
  const close = browser.close.bind(browser);
  browser.close = async () => {
    await close().catch(() => {});
    await server.close();
  };
  browser.process = () => server.process();
  return browser;
}

/**
 * Polls `probe()` (async, returns a state object) until `done(state)`; returns the last state.
 * Throws after `timeout` ms with `what` and the last state in the message.
 */
export async function until(what, probe, done, { timeout = 20_000, interval = 200 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const state = await probe();
    if (done(state)) return state;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last state: ${JSON.stringify(state, null, 1)}`);
    }
    await sleep(interval);
  }
}

/**
 * The browsers and pages of one test. Every page opened with `open` is screenshotted by
 * `close()` (unless `screenshot` already took it) to test-output/<prefix>-<page>.png; `close()`
 * also closes every browser. `report()` is each page's console and uncaught errors, for a
 * failure message.
 */
export class Pages {
  constructor(prefix) {
    this.prefix = prefix;
    this.browsers = [];
    this.entries = []; // {page, name, console: [], errors: [], shot: bool}
  }

  shotName(name) {
    return path.join(OUTPUT, `${this.prefix}-${slug(name)}.png`);
  }

  /** A fresh Chromium (its own process), closed by `close()`. */
  async browser() {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: run scripts/install-test-deps (Debian package chromium)`);
    const b = await launchBrowser();
    this.browsers.push(b);
    return b;
  }

  /**
   * A page in a new browser context (its own cookies and storage) of `browser`, at `url`;
   * `init(context)` runs before the page loads (for `addInitScript`).
   */
  async open(browser, url, name, { init } = {}) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    if (init) await init(context);
    const page = await context.newPage();
    const entry = { page, name, console: [], errors: [], shot: false };
    this.entries.push(entry);
    page.on('console', (msg) => entry.console.push(`${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => entry.errors.push(String(err && err.stack ? err.stack : err)));
    await page.goto(url);
    return page;
  }

  /** Saves a screenshot now, named after the page (then none is taken at the end) or `label`. */
  async screenshot(page, label) {
    const entry = this.entries.find((p) => p.page === page);
    fs.mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: this.shotName(label ?? entry.name), fullPage: true });
    if (label === undefined || label === entry.name) entry.shot = true;
  }

  /** Fails if any page threw an uncaught error. */
  assertNoErrors() {
    for (const p of this.entries) assert.deepEqual(p.errors, [], `uncaught errors in page ${p.name}`);
  }

  /** Screenshots the pages not yet taken, then closes every browser; never throws. */
  async close() {
    fs.mkdirSync(OUTPUT, { recursive: true });
    for (const p of this.entries) {
      if (!p.shot && !p.page.isClosed()) await p.page.screenshot({ path: this.shotName(p.name), fullPage: true }).catch(() => {});
    }
    for (const b of this.browsers) await b.close().catch(() => {});
  }

  /** Each page's last console lines and its uncaught errors. */
  report() {
    let text = '';
    for (const p of this.entries) {
      text += `\n--- page ${p.name} console (last 40) ---\n${p.console.slice(-40).join('\n')}`;
      if (p.errors.length) text += `\n--- page ${p.name} uncaught errors ---\n${p.errors.join('\n')}`;
    }
    return text;
  }
}

/**
 * Drive a real VS Code (code-server) in Debian's Chromium with puppeteer-core, one JSON
 * request a line on stdin, one JSON answer a line on stdout. tests/e2e/test_vscode_real.py
 * starts it; the test computes what jpilot should show and asserts on what this reports.
 *
 *   node drive.mjs CONFIG.json
 *
 * CONFIG: {codeServer, vsix, folder, home, userDataDir, extensionsDir, artifacts,
 *          chromium, userSettings, env (added to code-server's environment)}. At start it installs the .vsix, writes the user
 * settings, starts code-server on a free loopback port with no auth, opens `folder` in
 * headless Chromium and answers {"ready": true, "version": ...}. Requests are
 * {"op": NAME, ...}; answers are {"ok": true, ...} or {"ok": false, "error": ...}.
 * Log lines go to stderr (the test keeps them with the screenshots).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import puppeteer from 'puppeteer-core';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const env = { ...process.env, ...(config.env ?? {}), HOME: config.home, XDG_CONFIG_HOME: path.join(config.home, '.config') };
const log = (...args) => console.error(`[drive ${new Date().toISOString()}]`, ...args);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let server;
let browser;
let page;

/** Run code-server with `args` to completion; reject with its output on failure. */
function codeServerOnce(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(config.codeServer, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`code-server ${args.join(' ')} exited ${code}: ${out}`))));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Poll `probe` (run in the page) until it returns a truthy value; return it or the last value on timeout. */
async function pollPage(probe, arg, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(probe, arg);
    if (last || Date.now() > deadline) {
      return last;
    }
    await sleep(intervalMs);
  }
}

async function start() {
  const common = ['--user-data-dir', config.userDataDir, '--extensions-dir', config.extensionsDir];
  log(await codeServerOnce(['--install-extension', config.vsix, ...common]));
  const userDir = path.join(config.userDataDir, 'User');
  fs.mkdirSync(userDir, { recursive: true });
  fs.writeFileSync(path.join(userDir, 'settings.json'), JSON.stringify(config.userSettings, null, 2));
  const version = (await codeServerOnce(['--version'])).trim().split('\n').pop();
  const port = await freePort();
  const cfgFile = path.join(config.userDataDir, 'code-server.yaml');
  fs.writeFileSync(cfgFile, 'auth: none\n');
  server = spawn(config.codeServer, [
    '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--config', cfgFile,
    '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override',
    '--ignore-last-opened', ...common,
  ], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  server.stdout.on('data', (d) => process.stderr.write(`[code-server] ${d}`));
  server.stderr.on('data', (d) => process.stderr.write(`[code-server] ${d}`));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 600 || server.exitCode !== null) throw new Error(`code-server did not start (exit ${server.exitCode})`);
    await sleep(100);
  }
  browser = await puppeteer.launch({
    executablePath: config.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1400,900'],
    defaultViewport: { width: 1400, height: 900 },
    userDataDir: path.join(config.userDataDir, 'chromium'),
  });
  page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') log('[page]', m.text());
  });
  // Record every text the jpilot status bar item shows, from the first render.
  await page.evaluateOnNewDocument(() => {
    window.__jpilotStatus = [];
    setInterval(() => {
      const item = [...document.querySelectorAll('.statusbar-item')].find((e) => /Toggle inline suggestions/.test(e.getAttribute('aria-label') ?? ''));
      if (!item) return;
      const icon = [...item.querySelectorAll('.codicon')].map((c) => [...c.classList].find((k) => k.startsWith('codicon-') && k !== 'codicon-modifier-spin')).join(' ');
      const entry = `${icon}|${item.textContent.trim()}|${item.getAttribute('aria-label') ?? ''}`;
      const seen = window.__jpilotStatus;
      if (seen[seen.length - 1] !== entry) seen.push(entry);
    }, 25);
    // And every notification message shown (a toast without actions hides after ~20 s).
    window.__notifications = [];
    setInterval(() => {
      for (const e of document.querySelectorAll('.notification-list-item-message')) {
        const text = e.textContent.trim();
        if (!window.__notifications.includes(text)) window.__notifications.push(text);
      }
    }, 25);
  });
  await page.goto(`${base}/?folder=${encodeURIComponent(config.folder)}`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 120000 });
  await page.waitForSelector('.monaco-workbench .part.sidebar, .monaco-workbench .part.editor', { timeout: 120000 });
  return { ready: true, version, url: base };
}

async function keys(combo) {
  // "Control+Shift+P" -> hold the modifiers, press the last key.
  const parts = combo.split('+');
  const key = parts.pop();
  for (const m of parts) await page.keyboard.down(m);
  await page.keyboard.press(key);
  for (const m of parts.reverse()) await page.keyboard.up(m);
}

/** The ghost text in the active editor: the part on the cursor line, then whole lines below. */
function readGhost() {
  const editor = document.querySelector('.editor-group-container.active .monaco-editor') ??
    document.querySelector('.monaco-editor');
  if (!editor) return null;
  const text = (e) => e.textContent.replace(/\u00a0/g, ' ');
  const leaf = (e) => !e.querySelector('[class*="ghost-text"]');
  const inline = [...editor.querySelectorAll('.view-lines [class*="ghost-text"]')].filter(leaf).map(text).join('');
  const lines = [...editor.querySelectorAll('.view-zones [class*="ghost-text"] .view-line')].map(text);
  if (inline === '' && lines.length === 0) return null;
  return [inline, ...lines].join('\n');
}

function jpilotStatus() {
  // jpilot's own item (not the window progress item that also says "jpilot"): its
  // tooltip, part of the aria-label, names the toggle command.
  const item = [...document.querySelectorAll('.statusbar-item')].find((e) => /Toggle inline suggestions/.test(e.getAttribute('aria-label') ?? ''));
  const icon = item ? [...item.querySelectorAll('.codicon')].map((c) => [...c.classList].find((k) => k.startsWith('codicon-') && k !== 'codicon-modifier-spin')).join(' ') : null;
  if (item) {
    // The recorder polls every 25 ms: make the history end with what is on show now.
    const entry = `${icon}|${item.textContent.trim()}|${item.getAttribute('aria-label') ?? ''}`;
    const seen = window.__jpilotStatus;
    if (seen[seen.length - 1] !== entry) seen.push(entry);
  }
  return item ? { text: item.textContent.trim(), icon, label: item.getAttribute('aria-label'), history: window.__jpilotStatus } : { text: null, history: window.__jpilotStatus };
}

async function quickInput(combo, text) {
  await keys(combo);
  await page.waitForSelector('.quick-input-widget .quick-input-box input', { visible: true, timeout: 20000 });
  await page.keyboard.type(text, { delay: 10 });
}

const ops = {
  async open({ file }) {
    await quickInput('Control+P', file);
    // Enter picks the focused row: wait until that is the file (not a recently opened one
    // still on top while the filter catches up).
    const row = await pollPage((name) => [...document.querySelectorAll('.quick-input-list .monaco-list-row.focused')]
      .some((r) => r.getAttribute('aria-label')?.startsWith(name)), file, 20000);
    if (!row) throw new Error(`quick open found no ${file}`);
    await page.keyboard.press('Enter');
    const opened = await pollPage((name) => {
      const tab = document.querySelector('.editor-group-container.active .tab.active');
      return tab && (tab.getAttribute('aria-label') ?? '').startsWith(name) && document.activeElement?.closest('.monaco-editor') !== null;
    }, file, 20000);
    if (!opened) throw new Error(`${file} did not open in a focused editor`);
    return {};
  },
  async keys({ combo }) {
    await keys(combo);
    return {};
  },
  async type({ text, delay = 40 }) {
    await page.keyboard.type(text, { delay });
    return {};
  },
  async ghost({ want = null, timeoutMs = 60000 }) {
    const seen = new Set();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ghost = await page.evaluate(readGhost);
      seen.add(JSON.stringify(ghost));
      if (want === null ? ghost !== null : ghost === want) return { ghost, seen: [...seen].map((s) => JSON.parse(s)) };
      if (Date.now() > deadline) return { ghost, seen: [...seen].map((s) => JSON.parse(s)), timedOut: true };
      await sleep(50);
    }
  },
  async noGhost({ forMs = 1500, timeoutMs = 20000 }) {
    // Wait until no ghost text shows, then make sure none comes back for `forMs`.
    const deadline = Date.now() + timeoutMs;
    let since = null;
    let last = null;
    while (Date.now() < deadline) {
      last = await page.evaluate(readGhost);
      if (last !== null) since = null;
      else if (since === null) since = Date.now();
      else if (Date.now() - since >= forMs) return { ghost: null };
      await sleep(50);
    }
    return { ghost: last, timedOut: true };
  },
  async save({ file, timeoutMs = 30000 }) {
    // Ctrl+S, then wait until the editor's tab is no longer dirty and the file on disk is
    // stable: code-server writes in place (truncate, then write), so a read can catch it
    // empty or half written, and only a content two reads 300 ms apart agree on counts.
    // (Auto save may have written it already; then nothing on disk changes.) On a loaded
    // machine the key can be dropped while the workbench is busy: press it again every 5 s.
    const where = path.join(config.folder, file);
    await keys('Control+S');
    const deadline = Date.now() + timeoutMs;
    let pressed = Date.now();
    for (;;) {
      await sleep(100);
      const dirty = await page.evaluate(() =>
        document.querySelector('.editor-group-container.active .tab.active')?.classList.contains('dirty') ?? false);
      const content = fs.readFileSync(where, 'utf8');
      if (!dirty) {
        await sleep(300);
        const again = fs.readFileSync(where, 'utf8');
        if (again === content) return { content };
        continue;
      }
      if (Date.now() > deadline) return { content, timedOut: true };
      if (Date.now() - pressed > 5000) {
        await keys('Control+S');
        pressed = Date.now();
      }
    }
  },
  async goto({ line, column }) {
    await quickInput('Control+G', `${line}:${column}`);
    await page.keyboard.press('Enter');
    await sleep(200);
    return {};
  },
  async hover({ timeoutMs = 60000 }) {
    await keys('Control+K');
    await keys('Control+I');
    const text = await pollPage(() => {
      const hover = [...document.querySelectorAll('.monaco-hover:not(.hidden) .hover-contents')];
      const t = hover.map((h) => h.innerText).join('\n').trim();
      return t && !/^Loading/.test(t) ? t : null;
    }, null, timeoutMs);
    await sleep(300); // a second provider round would have replaced it by now
    const final = await page.evaluate(() => [...document.querySelectorAll('.monaco-hover:not(.hidden) .hover-contents')]
      .map((h) => h.innerText).join('\n').trim());
    await keys('Escape');
    return { text: final || text };
  },
  async codeActions({ pick = null, timeoutMs = 60000 }) {
    // Open the lightbulb menu (Ctrl+.) until it lists `pick` (diagnostics arrive late),
    // then choose it; without `pick`, report the titles of the first non-empty menu.
    const deadline = Date.now() + timeoutMs;
    let titles = [];
    for (;;) {
      await keys('Control+.');
      titles = (await pollPage(() => {
        const rows = [...document.querySelectorAll('.action-widget .monaco-list-row')];
        const t = rows.map((r) => (r.querySelector('.title') ?? r).textContent.trim()).filter((x) => x);
        return t.length ? t : null;
      }, null, 5000)) ?? [];
      if (pick !== null && titles.includes(pick)) break;
      await keys('Escape');
      if ((pick === null && titles.length) || Date.now() > deadline) return { titles, picked: null };
      await sleep(500);
    }
    const rows = await page.$$('.action-widget .monaco-list-row');
    for (const row of rows) {
      const title = await row.evaluate((r) => (r.querySelector('.title') ?? r).textContent.trim());
      if (title === pick) {
        await row.click();
        return { titles, picked: pick };
      }
    }
    await keys('Escape');
    return { titles, picked: null };
  },
  async waitFile({ file, want, timeoutMs = 30000 }) {
    // Save repeatedly until the file on disk holds `want` (an edit applied after a resolve).
    const deadline = Date.now() + timeoutMs;
    let content;
    for (;;) {
      content = (await ops.save({ file, timeoutMs: 2000 })).content;
      if (content === want || Date.now() > deadline) return { content };
      await sleep(300);
    }
  },
  async command({ title }) {
    await quickInput('F1', title);
    const found = await pollPage((t) => [...document.querySelectorAll('.quick-input-list .monaco-list-row')]
      .some((r) => (r.getAttribute('aria-label') ?? '').includes(t)), title, 20000);
    if (!found) throw new Error(`the command palette has no "${title}"`);
    await page.keyboard.press('Enter');
    await sleep(300);
    return {};
  },
  async status({ wantIcon = null, wantText = null, wantLabel = null, timeoutMs = 60000 }) {
    // wantLabel: a text the item's aria-label (its text, then its tooltip) must hold.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await page.evaluate(jpilotStatus);
      const iconOk = wantIcon === null || s.icon === wantIcon;
      const textOk = wantText === null || new RegExp(wantText).test(s.text ?? '');
      const labelOk = wantLabel === null || (s.label ?? '').includes(wantLabel);
      const ok = iconOk && textOk && labelOk;
      if (ok || Date.now() > deadline) return { ...s, timedOut: !ok };
      await sleep(100);
    }
  },
  async notifications({ want = null, timeoutMs = 30000 }) {
    // texts: the messages on show now; seen: every message shown since the page loaded.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { texts, seen } = await page.evaluate(() => ({
        texts: [...document.querySelectorAll('.notification-list-item-message')].map((e) => e.textContent.trim()),
        seen: window.__notifications,
      }));
      if (want === null || seen.some((t) => t.includes(want)) || Date.now() > deadline) return { texts, seen };
      await sleep(200);
    }
  },
  async clearNotifications() {
    await page.evaluate(() => document.querySelectorAll('.notification-toast .codicon-notifications-clear, .notification-toast .codicon-close')
      .forEach((b) => b.click()));
    return {};
  },
  async output({ want = null, timeoutMs = 20000 }) {
    // The Output panel's visible text and which channel it shows.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = await page.evaluate(() => {
        const panel = document.querySelector('.part.panel');
        const visible = panel !== null && panel.offsetParent !== null;
        const lines = panel ? [...panel.querySelectorAll('.monaco-editor .view-line')].map((l) => l.textContent.replace(/\u00a0/g, ' ')) : [];
        const select = panel?.querySelector('select.monaco-select-box');
        const channel = select ? select.options[select.selectedIndex]?.text : null;
        return { visible, channel, text: lines.join('\n') };
      });
      if (want === null || (seen.visible && seen.channel === want) || Date.now() > deadline) return seen;
      await sleep(200);
    }
  },
  async writeSettings({ settings }) {
    // Through VS Code's JSON settings editor, as a user would (it reads its own save at
    // once): select all, insert the settings as one line, save, close.
    const file = path.join(config.userDataDir, 'User', 'settings.json');
    await ops.command({ title: 'Preferences: Open User Settings (JSON)' });
    const opened = await pollPage(() => {
      const tab = document.querySelector('.editor-group-container.active .tab.active');
      return tab && /settings\.json/.test(tab.getAttribute('aria-label') ?? '') && document.activeElement?.closest('.monaco-editor') !== null;
    }, null, 20000);
    if (!opened) throw new Error('the user settings.json did not open');
    await keys('Control+A');
    await keys('Delete');
    await page.keyboard.sendCharacter(JSON.stringify(settings));
    await keys('Shift+Control+End'); // brackets the editor closed on its own
    await keys('Delete');
    const want = JSON.stringify(settings);
    await keys('Control+S');
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline) {
      let now;
      try {
        now = JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8')));
      } catch {
        now = null;
      }
      if (now === want) break;
      await sleep(100);
    }
    await keys('Control+W');
    return { written: JSON.parse(fs.readFileSync(file, 'utf8')) };
  },
  async restricted({ timeoutMs = 30000 }) {
    const found = await pollPage(() => /Restricted Mode/.test(document.querySelector('.part.statusbar')?.textContent ?? ''), null, timeoutMs);
    return { restricted: Boolean(found) };
  },
  async screenshot({ name }) {
    const file = path.join(config.artifacts, `${name}.png`);
    await page.screenshot({ path: file });
    return { file };
  },
  async quit() {
    return { bye: true };
  },
};

async function shutdown() {
  try {
    await browser?.close();
  } catch (err) {
    log('closing the browser:', String(err));
  }
  if (server && server.exitCode === null) {
    try {
      process.kill(-server.pid, 'SIGTERM'); // code-server and the extension host under it
    } catch {
      // already gone
    }
  }
}

const reply = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
try {
  reply(await start());
} catch (err) {
  log(String(err.stack ?? err));
  try {
    if (page) await page.screenshot({ path: path.join(config.artifacts, 'start.png') });
  } catch {
    // no page to show
  }
  reply({ ready: false, error: String(err) });
  await shutdown();
  process.exit(1);
}
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const request = JSON.parse(line);
  try {
    const answer = await ops[request.op](request);
    reply({ ok: true, ...answer });
  } catch (err) {
    log(`${request.op} failed:`, String(err.stack ?? err));
    reply({ ok: false, error: String(err) });
  }
  if (request.op === 'quit') break;
}
await shutdown();
process.exit(0);

// Drive `jpilot serve` the way the VS Code extension does, over vscode-languageserver-protocol
// (the library vscode-languageclient is built on), and assert exact results.
//
// Environment (set by tests/e2e/test_vscode_client.py):
//   JPILOT_PYTHON        Python with jpilot installed (required)
//   JPILOT_BUNDLE        model bundle folder, e.g. the tiny random test bundle (required)
//   JPILOT_CAPABILITIES  optional JSON file: the client capabilities to send (VS Code's)
//
// Run: node --test test-client/   (after `npm run build`, which writes dist/)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';


const require = createRequire(import.meta.url);
const {
  CodeActionRequest,
  CodeActionResolveRequest,
  CompletionRequest,
  ConfigurationRequest,
  createProtocolConnection,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  HoverRequest,
  InitializedNotification,
  InitializeRequest,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  LogMessageNotification,
  PublishDiagnosticsNotification,
  RegistrationRequest,
  ShowMessageNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgressCreateRequest,
} = require('vscode-languageserver-protocol/node');
const { expandPath, serverCommand, toServerSettings } = require('../dist/serverSettings.js');
const { preflight } = require('../dist/preflight.js');

const PYTHON = process.env.JPILOT_PYTHON;
const BUNDLE = process.env.JPILOT_BUNDLE;
if (!PYTHON || !BUNDLE) {
  throw new Error('set JPILOT_PYTHON and JPILOT_BUNDLE (tests/e2e/test_vscode_client.py does)');
}
const STEP_MS = 60_000; // bound on every wait for the server

// What a user's VS Code settings hold, flattened like `getConfiguration('jpilot').get(key)`.
// server.* and trace.* are client-only and must not reach the server.
const VSCODE_SETTINGS = {
  'server.command': [],
  'server.pythonPath': PYTHON,
  'trace.server': 'verbose',
  'model.path': BUNDLE,
  'model.device': 'cpu',
  'completion.maxTokens': 24,
  'completion.timeoutMs': 120000, // a loaded CI machine must not cut generation short
  'completion.latencyBudgetMs': 60000, // ... nor make the adaptive budget shorten it
  plugins: {},
};
const SETTINGS = toServerSettings((key) => VSCODE_SETTINGS[key]);

// The cursor is after "sum(" on line 4: a block opener, so a multi-line suggestion is allowed,
// and text follows the cursor line, so the prompt has a suffix too.
const TEXT = 'import os\n\n\ndef total(xs):\n    return sum(\n\n\nprint(total([1, 2]))\n';
const LINE = 4;
const CHARACTER = '    return sum('.length;

// Valid Python for hover, code actions and explain (TEXT stops inside "sum(").
const OTHER_TEXT = 'import os\n\n\ndef total(xs):\n    return sum(xs)\n\n\nprint(total([1, 2]))\n';

const workdir = realpathSync(mkdtempSync(join(tmpdir(), 'jpilot-vscode-')));
const file = join(workdir, 'demo.py');
const uri = pathToFileURL(file).href;
const otherUri = pathToFileURL(join(workdir, 'other.py')).href;
writeFileSync(file, TEXT);

/** Compute the expected suggestion independently, with `jpilot complete` on the same text. */
async function expectedCompletion() {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    ['-m', 'jpilot.lsp.cli', 'complete', file, '--line', String(LINE + 1), '--col',
      String(CHARACTER + 1), '--json', '--bundle', BUNDLE, '--settings', JSON.stringify(SETTINGS)],
    { cwd: workdir, timeout: STEP_MS },
  );
  return JSON.parse(stdout);
}

function withTimeout(promise, what, ms = STEP_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function defaultCapabilities() {
  return {
    general: { positionEncodings: ['utf-16'] },
    window: { workDoneProgress: true, showMessage: {} },
    workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true },
      workspaceFolders: true },
    textDocument: {
      synchronization: { dynamicRegistration: true, didSave: true },
      inlineCompletion: { dynamicRegistration: true },
      completion: { completionItem: { snippetSupport: true }, contextSupport: true },
      hover: { contentFormat: ['markdown', 'plaintext'] },
      codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ['', 'quickfix',
        'refactor', 'refactor.rewrite', 'source'] } }, resolveSupport: { properties: ['edit'] } },
      publishDiagnostics: { relatedInformation: true },
    },
  };
}

describe('the extension helpers', () => {
  test('only server settings go to the server, nested as the server reads them', () => {
    assert.deepEqual(SETTINGS, {
      model: { path: BUNDLE, device: 'cpu' },
      completion: { maxTokens: 24, timeoutMs: 120000, latencyBudgetMs: 60000 },
      plugins: {},
    });
  });

  test('the server command comes from server.command, then pythonPath, then PATH', () => {
    assert.deepEqual(serverCommand(['/x/jpilot', 'serve'], PYTHON),
      { command: '/x/jpilot', args: ['serve'], source: 'jpilot.server.command' });
    assert.deepEqual(serverCommand([], PYTHON),
      { command: PYTHON, args: ['-m', 'jpilot.lsp.cli', 'serve'], source: 'jpilot.server.pythonPath' });
    assert.deepEqual(serverCommand([], ''), { command: 'jpilot', args: ['serve'], source: 'PATH' });
  });

  test('~ and ${...} in the server paths are expanded, as docs/EDITORS.md writes them', () => {
    const vars = { home: '/home/ada', workspaceFolder: '/work/proj', env: { VENV: '/opt/venv' } };
    assert.equal(expandPath('~/.jpilot/bin/python', vars), '/home/ada/.jpilot/bin/python');
    assert.equal(expandPath('~', vars), '/home/ada');
    assert.equal(expandPath('${workspaceFolder}/.venv/bin/python', vars), '/work/proj/.venv/bin/python');
    assert.equal(expandPath('${userHome}/py', vars), '/home/ada/py');
    assert.equal(expandPath('${env:VENV}/bin/python', vars), '/opt/venv/bin/python');
    assert.equal(expandPath('/a/~b/python', vars), '/a/~b/python'); // only a leading ~
    assert.equal(expandPath('${workspaceFolder}/py', { home: '/h' }), '${workspaceFolder}/py');
    assert.equal(expandPath('${env:NOPE}/py', vars), '${env:NOPE}/py');
    assert.deepEqual(serverCommand([], '~/.jpilot/bin/python', vars),
      { command: '/home/ada/.jpilot/bin/python', args: ['-m', 'jpilot.lsp.cli', 'serve'],
        source: 'jpilot.server.pythonPath' });
    assert.deepEqual(serverCommand(['${workspaceFolder}/bin/jpilot', 'serve'], '', vars),
      { command: '/work/proj/bin/jpilot', args: ['serve'], source: 'jpilot.server.command' });
  });

  test('a pythonPath under ~ reaches a real Python', async () => {
    const home = mkdtempSync(join(tmpdir(), 'jpilot-home-'));
    mkdirSync(join(home, '.jpilot', 'bin'), { recursive: true });
    writeFileSync(join(home, '.jpilot', 'bin', 'python'), `#!/bin/sh\nexec "${PYTHON}" "$@"\n`,
      { mode: 0o755 });
    const server = serverCommand([], '~/.jpilot/bin/python', { home });
    assert.equal(server.command, join(home, '.jpilot', 'bin', 'python'));
    assert.deepEqual(await preflight(server), { ok: true, message: '' });
  });

  test('preflight accepts a Python that has jpilot', async () => {
    assert.deepEqual(await preflight(serverCommand([], PYTHON)), { ok: true, message: '' });
  });

  test('preflight says how to fix a missing Python', async () => {
    const missing = join(workdir, 'no-such-python');
    const result = await preflight(serverCommand([], missing));
    assert.equal(result.ok, false);
    assert.match(result.message, /Python was not found/);
    assert.ok(result.message.includes(missing), result.message);
    assert.match(result.message, /jpilot\.server\.pythonPath/);
  });

  test('preflight says how to fix a Python without jpilot', async () => {
    // -I (isolated) and -S: a Python that cannot see the environment jpilot is installed in.
    const shim = join(workdir, 'bare-python');
    writeFileSync(shim, `#!/bin/sh\nexec "${PYTHON}" -I -S "$@"\n`, { mode: 0o755 });
    const result = await preflight(serverCommand([], shim));
    assert.equal(result.ok, false);
    assert.match(result.message, /has no jpilot installed/);
  });
});

describe('jpilot serve over stdio', () => {
  const seen = { messages: [], progress: [], configurationAsked: 0, diagnostics: new Map() };
  let proc;
  let conn;
  let stderr = '';
  let init;
  let exited;

  before(async () => {
    const server = serverCommand([], PYTHON); // exactly what the extension spawns
    proc = spawn(server.command, server.args, { cwd: workdir, stdio: ['pipe', 'pipe', 'pipe'] });
    proc.stderr.on('data', (chunk) => { stderr += chunk; });
    exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    conn = createProtocolConnection(new StreamMessageReader(proc.stdout),
      new StreamMessageWriter(proc.stdin));
    conn.onRequest(ConfigurationRequest.type, (params) => {
      seen.configurationAsked += 1;
      return params.items.map((item) => (item.section === 'jpilot' ? SETTINGS : null));
    });
    conn.onRequest(WorkDoneProgressCreateRequest.type, () => null);
    conn.onRequest(RegistrationRequest.type, () => null);
    conn.onNotification(ShowMessageNotification.type, (m) => seen.messages.push(m));
    conn.onNotification(LogMessageNotification.type, () => {});
    conn.onNotification(PublishDiagnosticsNotification.type, (p) => seen.diagnostics.set(p.uri, p.diagnostics));
    conn.onUnhandledProgress((p) => seen.progress.push(p.value));
    conn.listen();
    const capabilities = process.env.JPILOT_CAPABILITIES
      ? JSON.parse(readFileSync(process.env.JPILOT_CAPABILITIES, 'utf8'))
      : defaultCapabilities();
    init = await withTimeout(conn.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      clientInfo: { name: 'jpilot-test-client', version: '0' },
      rootUri: pathToFileURL(workdir).href,
      workspaceFolders: [{ uri: pathToFileURL(workdir).href, name: 'work' }],
      capabilities,
      initializationOptions: SETTINGS,
    }), 'initialize');
    await conn.sendNotification(InitializedNotification.type, {});
    await conn.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: 'python', version: 1, text: TEXT },
    });
  });

  after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill();
    }
    conn?.dispose();
    rmSync(workdir, { recursive: true, force: true });
    if (process.exitCode) {
      console.error(`--- jpilot serve stderr ---\n${stderr.slice(-4000)}`);
    }
  });

  test('initialize advertises inline completion, completion items and incremental sync', () => {
    const caps = init.capabilities;
    assert.equal(init.serverInfo?.name, 'jpilot');
    assert.ok(caps.inlineCompletionProvider, 'inlineCompletionProvider is missing');
    assert.ok(caps.completionProvider, 'completionProvider is missing');
    const sync = typeof caps.textDocumentSync === 'object' ? caps.textDocumentSync.change : caps.textDocumentSync;
    assert.equal(sync, 2, 'textDocumentSync should be incremental');
    assert.equal(caps.positionEncoding ?? 'utf-16', 'utf-16');
  });

  test('the model loads, and the settings the extension sends raise no warning', async () => {
    const commands = init.capabilities.executeCommandProvider?.commands ?? [];
    assert.ok(commands.includes('jpilot.status'), `no jpilot.status command in ${commands}`);
    const deadline = Date.now() + STEP_MS;
    let status;
    do {
      status = await withTimeout(conn.sendRequest(ExecuteCommandRequest.type,
        { command: 'jpilot.status', arguments: [] }), 'jpilot.status');
      if (status.model.state !== 'loading') break;
      await new Promise((r) => setTimeout(r, 200));
    } while (Date.now() < deadline);
    assert.equal(status.model.state, 'ready', `model: ${JSON.stringify(status.model)}`);
    assert.equal(realpathSync(status.model.path), realpathSync(BUNDLE));
    // A typo in the extension's schema would come back as "jpilot settings: unknown setting".
    assert.deepEqual(seen.messages.filter((m) => m.type <= 2), [], 'warnings or errors were shown');
  });

  test('inline completion: exactly the text and range `jpilot complete` computes', async () => {
    const want = await expectedCompletion();
    assert.equal(want.status, 'ok', `jpilot complete found nothing to suggest: ${JSON.stringify(want)}`);
    assert.ok(want.text.length > 0);
    const result = await withTimeout(conn.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri },
      position: { line: LINE, character: CHARACTER },
      context: { triggerKind: InlineCompletionTriggerKind.Automatic },
    }), 'textDocument/inlineCompletion');
    const items = Array.isArray(result) ? result : result.items;
    assert.equal(items.length, 1, JSON.stringify(result));
    assert.equal(items[0].insertText, want.text);
    assert.deepEqual(items[0].range, want.range);
    assert.deepEqual(items[0].range, {
      start: { line: LINE, character: CHARACTER }, end: { line: LINE, character: CHARACTER },
    });
  });

  test('completion item: replaces the word before the cursor with the word plus the suggestion', async () => {
    const want = await expectedCompletion();
    const result = await withTimeout(conn.sendRequest(CompletionRequest.type, {
      textDocument: { uri }, position: { line: LINE, character: CHARACTER },
    }), 'textDocument/completion');
    const items = Array.isArray(result) ? result : result.items;
    assert.equal(items.length, 1, JSON.stringify(result));
    // The cursor follows "(", so the word before it is empty: the edit is a pure insertion.
    assert.deepEqual(items[0].textEdit, {
      range: { start: { line: LINE, character: CHARACTER }, end: { line: LINE, character: CHARACTER } },
      newText: want.text,
    });
  });

  test('hover over a name', async (t) => {
    if (!init.capabilities.hoverProvider) {
      t.skip('the server does not advertise hoverProvider (the docs plugin is not there yet)');
      return;
    }
    // Opened only now: an open document becomes a prompt snippet for the earlier tests.
    await conn.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri: otherUri, languageId: 'python', version: 1, text: OTHER_TEXT },
    });
    const position = { line: 3, character: 'def to'.length }; // inside "total"
    const hover = await withTimeout(conn.sendRequest(HoverRequest.type,
      { textDocument: { uri: otherUri }, position }), 'textDocument/hover');
    assert.ok(hover !== null, 'hover over a function name returned nothing');
    assert.equal(hover.contents.kind, 'markdown');
    // The signature comes from the buffer itself; a model summary may follow it.
    assert.ok(hover.contents.value.startsWith('```python\ndef total(xs)\n```'), hover.contents.value);
    if (hover.range) {
      assert.equal(hover.range.start.line, 3);
    }
  });

  test('code actions for a range, and resolving one', async (t) => {
    if (!init.capabilities.codeActionProvider) {
      t.skip('the server does not advertise codeActionProvider (the debug/docs plugins are not there yet)');
      return;
    }
    const range = { start: { line: 3, character: 0 }, end: { line: 4, character: 18 } };
    const actions = await withTimeout(conn.sendRequest(CodeActionRequest.type, {
      textDocument: { uri: otherUri }, range, context: { diagnostics: seen.diagnostics.get(otherUri) ?? [] },
    }), 'textDocument/codeAction');
    assert.ok(Array.isArray(actions) && actions.length > 0, `no code actions: ${JSON.stringify(actions)}`);
    const titles = actions.map((a) => a.title);
    assert.ok(titles.includes('Generate docstring for total'), JSON.stringify(titles));
    for (const action of actions) {
      assert.equal(typeof action.title, 'string');
      assert.ok(action.title.length > 0);
    }
    if (!init.capabilities.codeActionProvider.resolveProvider) {
      return;
    }
    const docstring = actions.find((a) => a.title === 'Generate docstring for total');
    const resolved = await withTimeout(conn.sendRequest(CodeActionResolveRequest.type, docstring),
      'codeAction/resolve');
    const changes = resolved.edit?.documentChanges ?? [];
    assert.equal(changes.length, 1, JSON.stringify(resolved));
    assert.deepEqual(changes[0].textDocument, { uri: otherUri, version: 1 });
    for (const edit of changes[0].edits) {
      assert.deepEqual(edit.range.start, edit.range.end, 'a docstring is an insertion');
      assert.equal(edit.range.start.line, 4, 'the docstring goes under "def total(xs):"');
    }
  });

  test('the explain command answers for a line range', async (t) => {
    const commands = init.capabilities.executeCommandProvider?.commands ?? [];
    const explain = commands.find((c) => /explain/i.test(c));
    if (explain === undefined) {
      t.skip(`the server has no explain command (commands: ${commands})`);
      return;
    }
    const range = { start: { line: 3, character: 0 }, end: { line: 4, character: 18 } };
    const result = await withTimeout(conn.sendRequest(ExecuteCommandRequest.type,
      { command: explain, arguments: [otherUri, range] }), explain);
    assert.equal(result.line, 3, JSON.stringify(result));
    assert.equal(typeof result.comment, 'string');
    assert.equal(typeof result.explanation, 'string');
  });

  test('shutdown, then exit, ends the server with status 0', async () => {
    const result = await withTimeout(conn.sendRequest(ShutdownRequest.type), 'shutdown');
    assert.equal(result ?? null, null);
    await conn.sendNotification(ExitNotification.type);
    const { code, signal } = await withTimeout(exited, 'the server process to exit', 15000);
    assert.equal(signal, null);
    assert.equal(code, 0, `exit code ${code}; stderr:\n${stderr.slice(-2000)}`);
  });
});

/**
 * The jpilot VS Code extension: starts `jpilot serve` over stdio with vscode-languageclient,
 * which brings inline completions (ghost text), completion items, hover, code actions and
 * diagnostics through its built-in LSP features. This file adds settings, the status bar
 * item, commands, and clear messages when Python, jpilot or the model is missing.
 */
import * as os from 'os';
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  State,
  type ErrorHandler,
  type LanguageClientOptions,
  type ServerOptions,
  type WorkDoneProgressBegin,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
} from 'vscode-languageclient/node';
import { preflight } from './preflight';
import { serverCommand, toServerSettings, type ServerCommand } from './serverSettings';
import { StatusItem } from './status';

const STATUS_COMMAND = 'jpilot.status';
const MAX_RESTARTS = 4; // crashes within RESTART_WINDOW_MS before jpilot gives up
const RESTART_WINDOW_MS = 3 * 60 * 1000;
const RECHECK_MS = 5000; // a failed preflight reads the settings once more after this

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel;
let status: StatusItem;
let enabled = true;
let starting: Promise<void> | undefined;

/** Read the server's settings from the `jpilot` configuration section. */
function currentServerSettings(scope?: vscode.ConfigurationScope): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration('jpilot', scope);
  return toServerSettings((key) => config.get(key));
}

/** Stop a crash loop: restart after a crash, but not more than MAX_RESTARTS times a window. */
function makeErrorHandler(): ErrorHandler {
  const crashes: number[] = [];
  return {
    error: () => ({ action: ErrorAction.Continue }),
    closed: () => {
      const now = Date.now();
      crashes.push(now);
      while (crashes.length > 0 && now - crashes[0] > RESTART_WINDOW_MS) {
        crashes.shift();
      }
      if (crashes.length > MAX_RESTARTS) {
        status.set('error', 'the server crashed repeatedly');
        const message =
          `jpilot: the server crashed ${crashes.length} times in 3 minutes and was not restarted. ` +
          'See the log for the traceback, then run "jpilot: Restart server".';
        void vscode.window.showErrorMessage(message, 'Show log', 'Restart server').then((pick) => {
          if (pick === 'Show log') {
            output.show(true);
          } else if (pick === 'Restart server') {
            void vscode.commands.executeCommand('jpilot.restartServer');
          }
        });
        return { action: CloseAction.DoNotRestart, handled: true };
      }
      status.set('loading', 'the server stopped; restarting');
      return {
        action: CloseAction.Restart,
        message: 'jpilot: the server stopped unexpectedly and is being restarted. See "jpilot: Show log".',
      };
    },
  };
}

/** Update the status bar from the server's model-loading progress ($/progress). */
function onProgress(
  params: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd,
): void {
  if (params.kind === 'begin' && /model/i.test(params.title)) {
    status.set('loading', params.title);
  } else if (params.kind === 'end' && status.state === 'loading') {
    const failed = /no model|fail|error/i.test(params.message ?? '');
    status.set(failed ? 'error' : 'ready', params.message ?? '');
    // The report can trail the jpilot.status answer (a missing model fails at once):
    // ask again, so the tooltip keeps the server's reason, not just "no model".
    if (client !== undefined && client.state === State.Running) {
      void refreshStatus(client);
    }
  }
}

/** Say which model-written features the model's measured scores (or the settings) turn on. */
function featureText(features: Record<string, boolean> | undefined): string {
  if (!features) {
    return '';
  }
  const on = Object.keys(features).filter((name) => features[name]);
  const off = Object.keys(features).filter((name) => !features[name]);
  let text = `; on: ${on.length ? on.join(', ') : 'completion only'}`;
  if (off.length) {
    text += `; off: ${off.join(', ')} (for a model that can: jpilot model pull Salesforce/codegen-350M-mono)`;
  }
  return text;
}

/** Name the plugins the server could not load (jpilot.status plugins.failed). */
function pluginText(plugins: { failed?: Record<string, string> } | undefined): string {
  const failed = Object.keys(plugins?.failed ?? {});
  return failed.length ? `; plugins not loaded: ${failed.join(', ')} (see the log)` : '';
}

/** Ask the server for its state with the `jpilot.status` command, if it has one. */
async function refreshStatus(c: LanguageClient): Promise<void> {
  const commands = c.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  if (!commands.includes(STATUS_COMMAND)) {
    status.set('ready', 'the server has no status command');
    return;
  }
  // The model loads in the background; poll until it is no longer "loading" (bounded).
  for (let i = 0; i < 600 && c.state === State.Running; i++) {
    try {
      const result = (await c.sendRequest(ExecuteCommandRequest.type, {
        command: STATUS_COMMAND,
        arguments: [],
      })) as {
        model?: {
          state?: string;
          error?: string | null;
          path?: string | null;
          features?: Record<string, boolean>;
        };
        plugins?: { failed?: Record<string, string> };
      } | null;
      const model = result?.model;
      if (model?.state === 'ready') {
        status.set(
          'ready',
          `model ${model.path ?? '(embedded default)'}${featureText(model.features)}${pluginText(result?.plugins)}`,
        );
        return;
      }
      if (model?.state === 'failed') {
        status.set('error', model.error ?? 'the model could not be loaded');
        return;
      }
      status.set('loading', 'loading the model');
    } catch (err) {
      output.warn(`jpilot.status failed: ${String(err)}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Commands this extension contributes itself (package.json). */
const OWN_COMMANDS = new Set(['jpilot.toggle', 'jpilot.explainSelection', 'jpilot.restartServer', 'jpilot.showLog']);

/**
 * vscode-languageclient registers every server command as a VS Code command, and fails to
 * start when one is already registered. The server's commands (`jpilot.status`,
 * `jpilot.explain`) differ from ours today; this filter keeps a future server command
 * named like one of ours from stopping the extension.
 */
function keepOwnCommands(c: LanguageClient): void {
  const feature = c.getFeature(ExecuteCommandRequest.method);
  const initialize = feature.initialize.bind(feature);
  feature.initialize = (capabilities, documentSelector) => {
    const provider = capabilities.executeCommandProvider;
    const filtered = provider
      ? { ...capabilities, executeCommandProvider: { ...provider, commands: provider.commands.filter((n) => !OWN_COMMANDS.has(n)) } }
      : capabilities;
    initialize(filtered, documentSelector);
  };
}

/** The server command the settings give now. */
function configuredServer(): ServerCommand {
  const config = vscode.workspace.getConfiguration('jpilot');
  return serverCommand(config.get('server.command'), config.get('server.pythonPath'), {
    home: os.homedir(),
    workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    env: process.env,
  });
}

/** Start the language client (after a preflight check of the server command). */
async function start(context: vscode.ExtensionContext): Promise<void> {
  const server = configuredServer();
  status.set('loading', `starting ${server.command}`);
  const check = await preflight(server);
  if (!check.ok) {
    output.error(check.message);
    status.set('error', check.message);
    // Not awaited: the message stays until the user closes it, and a start that waited for
    // that click would hold back every restart, the one a settings change asks for included
    // (code-server can hand the extension its user settings after activation).
    void vscode.window.showErrorMessage(check.message, 'Open settings', 'Show log').then((pick) => {
      if (pick === 'Open settings') {
        void vscode.commands.executeCommand('workbench.action.openSettings', 'jpilot.server');
      } else if (pick === 'Show log') {
        output.show(true);
      }
    });
    // The settings may still change without an event reaching us (code-server 4.93 was
    // seen activating the extension before the user settings applied): look once more.
    setTimeout(() => {
      const now = configuredServer();
      if (client === undefined && starting === undefined && JSON.stringify(now) !== JSON.stringify(server)) {
        output.info(`the server settings changed to ${now.command}; starting again`);
        void restart(context);
      }
    }, RECHECK_MS);
    return;
  }

  const serverOptions: ServerOptions = {
    command: server.command,
    args: server.args,
    options: { env: { ...process.env, PYTHONUNBUFFERED: '1' } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'python' },
      { scheme: 'untitled', language: 'python' },
    ],
    initializationOptions: currentServerSettings(),
    outputChannel: output,
    traceOutputChannel: output,
    errorHandler: makeErrorHandler(),
    middleware: {
      handleWorkDoneProgress: (token, params, next) => {
        onProgress(params);
        next(token, params);
      },
      // workspace/configuration: answer the "jpilot" section without client-only keys.
      workspace: {
        configuration: async (params, token, next) => {
          const answers = await next(params, token);
          if (!Array.isArray(answers)) {
            return answers;
          }
          return params.items.map((item, i) =>
            item.section === 'jpilot'
              ? currentServerSettings(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined)
              : answers[i],
          );
        },
      },
      provideInlineCompletionItems: async (document, position, ctx, token, next) => {
        if (!enabled) {
          return null;
        }
        const t0 = Date.now();
        const result = await next(document, position, ctx, token);
        if (!token.isCancellationRequested) {
          status.latency(Date.now() - t0);
        }
        return result;
      },
      provideCompletionItem: async (document, position, ctx, token, next) =>
        enabled ? next(document, position, ctx, token) : null,
    },
  };
  client = new LanguageClient('jpilot', 'jpilot', serverOptions, clientOptions);
  keepOwnCommands(client);
  context.subscriptions.push(
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped && status.state !== 'error') {
        status.set('off', 'the server is stopped');
      }
    }),
  );
  try {
    await client.start();
  } catch (err) {
    const message =
      `jpilot: the server did not start: ${String(err)}. ` +
      'Run "jpilot: Show log" for its output; check jpilot.server.pythonPath / jpilot.server.command.';
    output.error(message);
    status.set('error', message);
    void vscode.window.showErrorMessage(message, 'Show log').then((pick) => {
      if (pick) {
        output.show(true);
      }
    });
    return;
  }
  await refreshStatus(client);
}

async function stop(): Promise<void> {
  const c = client;
  client = undefined;
  if (c !== undefined && c.needsStop()) {
    try {
      await c.stop(5000);
    } catch (err) {
      output.warn(`stopping the server: ${String(err)}`);
    }
  }
}

async function restart(context: vscode.ExtensionContext): Promise<void> {
  if (starting) {
    await starting;
  }
  starting = (async () => {
    await stop();
    await start(context);
  })();
  try {
    await starting;
  } finally {
    starting = undefined;
  }
}

/** Explain the selection with the server's explain command, when the server has one. */
async function explainSelection(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || client === undefined || client.state !== State.Running) {
    void vscode.window.showWarningMessage('jpilot: open a Python file with the server running first.');
    return;
  }
  const commands = client.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  const explain = commands.find((c) => /explain/i.test(c));
  if (explain === undefined) {
    void vscode.window.showInformationMessage(
      'jpilot: this server has no explain command. Enable the docs plugin ' +
        '(jpilot.plugins: {"docs": {"enabled": true}}) with a jpilot version that ships it.',
    );
    return;
  }
  // jpilot's explain command takes [uri, range] and answers {line, comment, explanation}.
  const uri = editor.document.uri.toString();
  const range = client.code2ProtocolConverter.asRange(editor.selection);
  const c = client;
  const result = (await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: 'jpilot: explaining' },
    () => c.sendRequest(ExecuteCommandRequest.type, { command: explain, arguments: [uri, range] }),
  )) as { explanation?: string; comment?: string } | string | null;
  if (result === null || result === undefined) {
    void vscode.window.showInformationMessage('jpilot: no explanation (is the model loaded?)');
    return;
  }
  const text =
    typeof result === 'string'
      ? result
      : [result.explanation ?? '', result.comment ? '```python\n' + result.comment + '\n```' : '']
          .filter((part) => part.trim() !== '')
          .join('\n\n') || '(the model wrote no explanation)';
  const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: text });
  await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('jpilot', { log: true });
  status = new StatusItem();
  context.subscriptions.push(output, status);
  context.subscriptions.push(
    vscode.commands.registerCommand('jpilot.toggle', () => {
      enabled = !enabled;
      status.setEnabled(enabled);
      void vscode.window.setStatusBarMessage(`jpilot suggestions ${enabled ? 'on' : 'off'}`, 2000);
    }),
    vscode.commands.registerCommand('jpilot.restartServer', () => restart(context)),
    vscode.commands.registerCommand('jpilot.showLog', () => output.show(true)),
    vscode.commands.registerCommand('jpilot.explainSelection', explainSelection),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration('jpilot')) {
        return;
      }
      if (e.affectsConfiguration('jpilot.server')) {
        await restart(context);
      } else if (client !== undefined && client.state === State.Running) {
        // Push the whole server section; the server also re-reads workspace/configuration.
        await client.sendNotification(DidChangeConfigurationNotification.type, {
          settings: currentServerSettings(),
        });
        await refreshStatus(client);
      }
    }),
  );
  await restart(context);
}

export async function deactivate(): Promise<void> {
  await stop();
}

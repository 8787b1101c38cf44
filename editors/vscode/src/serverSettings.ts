/**
 * Pure helpers shared by the extension and the Node test client (no `vscode` import):
 * which VS Code settings go to the server, and how the server is started.
 */

/** Settings keys (under `jpilot.`) that the server reads; `server.*` and `trace.*` stay client-side. */
export const SERVER_SETTING_KEYS = [
  'model.path',
  'model.device',
  'model.threads',
  'completion.maxTokens',
  'completion.branches',
  'completion.multiline',
  'completion.temperature',
  'completion.topP',
  'completion.latencyBudgetMs',
  'completion.timeoutMs',
  'completion.typeThrough',
  'context.maxTokens',
  'context.suffixTokens',
  'context.snippets',
  'context.snippetTokens',
  'debug.logPrompts',
  'docs.summary',
  'docs.timeoutMs',
  'hints.threshold',
  'hints.minBits',
  'hints.slips',
  'hints.maxPerFile',
  'hints.severity',
  'hints.maxFileKb',
  'hints.debounceMs',
  'hints.timeoutMs',
  'plugins',
] as const;

export type SettingsObject = { [key: string]: unknown };

/**
 * Build the server's settings object (`{"model": {"path": ...}, ...}`, as in
 * initializationOptions and the `jpilot` configuration section) from a getter of
 * `jpilot.*` values. Undefined values are left out, so the server keeps its default.
 */
export function toServerSettings(get: (key: string) => unknown): SettingsObject {
  const out: SettingsObject = {};
  for (const key of SERVER_SETTING_KEYS) {
    const value = get(key);
    if (value === undefined || value === null) {
      continue;
    }
    const [section, name] = key.split('.');
    if (name === undefined) {
      out[section] = value;
      continue;
    }
    const bucket = (out[section] ??= {}) as SettingsObject;
    bucket[name] = value;
  }
  return out;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** How the command was chosen, for error messages. */
  source: 'jpilot.server.command' | 'jpilot.server.pythonPath' | 'PATH';
}

/** Choose how to start the server from `jpilot.server.command` / `jpilot.server.pythonPath`. */
export function serverCommand(command: unknown, pythonPath: unknown): ServerCommand {
  if (Array.isArray(command) && command.length > 0 && command.every((c) => typeof c === 'string')) {
    const [head, ...rest] = command as string[];
    if (head.trim() !== '') {
      return { command: head, args: rest, source: 'jpilot.server.command' };
    }
  }
  if (typeof pythonPath === 'string' && pythonPath.trim() !== '') {
    return {
      command: pythonPath,
      args: ['-m', 'jpilot.lsp.cli', 'serve'],
      source: 'jpilot.server.pythonPath',
    };
  }
  return { command: 'jpilot', args: ['serve'], source: 'PATH' };
}

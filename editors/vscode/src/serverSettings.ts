/**
 * Pure helpers shared by the extension and the Node test client (no `vscode` import):
 * which VS Code settings go to the server, and how the server is started.
 */

/** Settings keys (under `jpilot.`) that the server reads; `server.*` and `trace.*` stay client-side. */
export const SERVER_SETTING_KEYS = [
  'model.path',
  'model.device',
  'model.threads',
  'model.url',
  'model.tokenEnv',
  'model.name',
  'completion.maxTokens',
  'completion.branches',
  'completion.minConfidence',
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
  'context.workspaceSnippets',
  'context.largeFileKb',
  'debug.logPrompts',
  'docs.summary',
  'docs.docstring',
  'docs.explain',
  'docs.timeoutMs',
  'hints.surprisal',
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

/** What `~` and `${...}` in a path setting stand for. */
export interface PathVariables {
  home: string;
  workspaceFolder?: string; // the first workspace folder, if one is open
  env?: Record<string, string | undefined>;
}

/**
 * Expand `~`, `${userHome}`, `${workspaceFolder}` and `${env:NAME}` in a path setting, as
 * VS Code's own settings do; VS Code leaves an extension's settings unexpanded. A variable
 * with no value (no folder open, an unset variable) is left as written, so the error that
 * follows names it.
 */
export function expandPath(value: string, vars: PathVariables): string {
  let out = value.trim();
  if (out === '~' || out.startsWith('~/')) {
    out = vars.home + out.slice(1);
  }
  return out.replace(/\$\{(userHome|workspaceFolder|env:([A-Za-z_][A-Za-z0-9_]*))\}/g,
    (whole: string, name: string, envName?: string) => {
      const value = envName !== undefined ? vars.env?.[envName]
        : name === 'userHome' ? vars.home : vars.workspaceFolder;
      return value ?? whole;
    });
}

/** Choose how to start the server from `jpilot.server.command` / `jpilot.server.pythonPath`. */
export function serverCommand(
  command: unknown,
  pythonPath: unknown,
  vars: PathVariables = { home: '' },
): ServerCommand {
  const expand = (value: string) => (vars.home ? expandPath(value, vars) : value);
  if (Array.isArray(command) && command.length > 0 && command.every((c) => typeof c === 'string')) {
    const [head, ...rest] = command as string[];
    if (head.trim() !== '') {
      return { command: expand(head), args: rest, source: 'jpilot.server.command' };
    }
  }
  if (typeof pythonPath === 'string' && pythonPath.trim() !== '') {
    return {
      command: expand(pythonPath),
      args: ['-m', 'jpilot.lsp.cli', 'serve'],
      source: 'jpilot.server.pythonPath',
    };
  }
  return { command: 'jpilot', args: ['serve'], source: 'PATH' };
}

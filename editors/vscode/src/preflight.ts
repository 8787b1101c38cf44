/**
 * Check, before starting the server, that its command exists and (for a Python) that
 * jpilot is importable, so the user gets a message that says how to fix it instead of
 * "connection to server is erroring". No `vscode` import: the test client runs it too.
 */
import { execFile } from 'node:child_process';
import type { ServerCommand } from './serverSettings';

export interface PreflightResult {
  ok: boolean;
  /** What is wrong and how to fix it; empty when ok. */
  message: string;
}

const INSTALL_HINT =
  'Install jpilot into a Python 3.11+ environment (`python -m pip install /path/to/jpilot`, ' +
  'a jpilot checkout), then set jpilot.server.pythonPath to that ' +
  "environment's python, or jpilot.server.command to its `jpilot` executable plus `serve`.";

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | string | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, windowsHide: true }, (error, _stdout, stderr) => {
      if (!error) {
        resolve({ code: 0, stderr: String(stderr) });
        return;
      }
      const err = error as NodeJS.ErrnoException & { code?: number | string | null };
      resolve({ code: err.code ?? 1, stderr: String(stderr || err.message) });
    });
  });
}

/** Check that the server command can start; never throws. */
export async function preflight(server: ServerCommand, timeoutMs = 20000): Promise<PreflightResult> {
  const isPython = server.source === 'jpilot.server.pythonPath';
  const args = isPython ? ['-c', 'import jpilot.lsp.cli'] : ['--version'];
  const { code, stderr } = await run(server.command, args, timeoutMs);
  if (code === 0) {
    return { ok: true, message: '' };
  }
  if (code === 'ENOENT' || code === 'EACCES') {
    const what = isPython ? 'Python' : 'the jpilot server';
    return {
      ok: false,
      message: `jpilot: ${what} was not found: \`${server.command}\` (from ${server.source}) ` +
        `${code === 'EACCES' ? 'is not executable' : 'does not exist or is not on PATH'}. ${INSTALL_HINT}`,
    };
  }
  const detail = stderr.trim().split('\n').slice(-1)[0] ?? '';
  if (isPython && /No module named/.test(stderr)) {
    return {
      ok: false,
      message: `jpilot: \`${server.command}\` has no jpilot installed (${detail}). ${INSTALL_HINT}`,
    };
  }
  return {
    ok: false,
    message: `jpilot: \`${server.command} ${args.join(' ')}\` failed (${code}): ${detail}. ${INSTALL_HINT}`,
  };
}

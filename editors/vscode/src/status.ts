/** The status bar item: loading / ready / error / off, and the last completion latency. */
import * as vscode from 'vscode';

export type ServerState = 'loading' | 'ready' | 'error' | 'off';

const ICONS: Record<ServerState, string> = {
  loading: '$(loading~spin)',
  ready: '$(sparkle)',
  error: '$(error)',
  off: '$(circle-slash)',
};

export class StatusItem implements vscode.Disposable {
  state: ServerState = 'off';
  private readonly item: vscode.StatusBarItem;
  private detail = '';
  private lastMs: number | undefined;
  private enabled = true;

  constructor() {
    this.item = vscode.window.createStatusBarItem('jpilot.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'jpilot';
    this.item.command = 'jpilot.showLog';
    this.render();
    this.item.show();
  }

  /** Set the server state with a one-line reason shown in the tooltip. */
  set(state: ServerState, detail: string): void {
    this.state = state;
    this.detail = detail;
    this.render();
  }

  /** Record the latency of the last inline completion request. */
  latency(ms: number): void {
    this.lastMs = ms;
    this.render();
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.render();
  }

  private render(): void {
    const latency = this.lastMs === undefined ? '' : ` ${this.lastMs} ms`;
    const paused = this.enabled ? '' : ' (paused)';
    this.item.text = `${ICONS[this.state]} jpilot${this.state === 'ready' ? latency : ''}${paused}`;
    const lines = [`jpilot: ${this.state}${paused}`];
    if (this.detail) {
      lines.push(this.detail);
    }
    if (this.lastMs !== undefined) {
      lines.push(`last suggestion: ${this.lastMs} ms`);
    }
    lines.push('Click to show the log; "jpilot: Toggle inline suggestions" pauses them.');
    this.item.tooltip = lines.join('\n');
    this.item.backgroundColor =
      this.state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

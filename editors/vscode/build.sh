#!/usr/bin/env bash
# Build the VS Code extension from a clean checkout: install the locked npm packages,
# type-check, bundle with esbuild and package editors/vscode/jpilot-<version>.vsix.
# .ci/run calls this before the Python tests (tests/e2e/test_vscode_client.py reuses
# node_modules/ and dist/).
set -euo pipefail
cd "$(dirname "$0")"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
npm ci --no-progress
npm run typecheck
npm run build
npm run package
ls -l jpilot-*.vsix

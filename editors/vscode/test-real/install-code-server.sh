#!/usr/bin/env bash
# Install code-server VERSION from npm into a cache folder outside the repository, once:
#   bash install-code-server.sh 4.99.4   ->  prints the path of its bin/code-server
# The folder is ${JPILOT_E2E_CACHE:-$HOME/.cache/jpilot-e2e}/code-server-VERSION; a second
# run finds it installed and only prints the path. Needs node 20, npm, and the Debian
# packages .ci/run installs (libkrb5-dev libxkbfile-dev libsecret-1-dev libx11-dev
# pkg-config ripgrep, plus a C++ toolchain for node-pty). See ../../../docs/EDITORS.md.
set -euo pipefail
version="${1:?usage: install-code-server.sh VERSION}"
cache="${JPILOT_E2E_CACHE:-$HOME/.cache/jpilot-e2e}"
dest="$cache/code-server-$version"
bin="$dest/node_modules/.bin/code-server"
if [ -f "$dest/.installed" ] && [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi
rg_path="$(command -v rg || true)"
if [ -z "$rg_path" ]; then
    echo "install-code-server: no rg on PATH; apt-get install ripgrep" >&2
    exit 1
fi
rm -rf "$dest"
mkdir -p "$dest/tmp"
# @vscode/ripgrep's postinstall downloads rg from GitHub, which is not reachable here. It
# takes an archive already in $TMPDIR/vscode-ripgrep-cache-<its version>/ instead: seed
# that cache with Debian's rg for every version code-server's releases use.
tar -czf "$dest/tmp/rg.tar.gz" -C "$(dirname "$rg_path")" rg
for minor in $(seq 0 20); do
    dir="$dest/tmp/vscode-ripgrep-cache-1.15.$minor"
    mkdir -p "$dir"
    for tag in v13.0.0-10 v13.0.0-4 v13.0.0-8 v13.0.0-13; do
        ln -f "$dest/tmp/rg.tar.gz" "$dir/ripgrep-$tag-x86_64-unknown-linux-musl.tar.gz"
    done
done
echo '{"private": true}' > "$dest/package.json"
# As root, npm runs install scripts as nobody unless --unsafe-perm; npm_config_yes lets
# node-pty's `npx node-gyp` run without a prompt.
(
    cd "$dest"
    export TMPDIR="$dest/tmp" npm_config_yes=true npm_config_fund=false \
        npm_config_audit=false npm_config_update_notifier=false
    npm install --unsafe-perm --no-progress --loglevel=error "code-server@$version" >&2
)
XDG_CONFIG_HOME="$dest/tmp" XDG_DATA_HOME="$dest/tmp" "$bin" --version >&2
rm -rf "$dest/tmp"
touch "$dest/.installed"
echo "$bin"

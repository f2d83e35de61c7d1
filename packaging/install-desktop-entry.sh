#!/usr/bin/env sh
# Installs the freedesktop entry and icon for the current user, so mmrag-desktop shows up in
# the application menu. Run after `pip install` put `mmrag-desktop` on PATH (or pass its path).
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
exe="${1:-$(command -v mmrag-desktop || true)}"
if [ -z "$exe" ]; then
    echo "mmrag-desktop is not on PATH; pass its path: $0 /path/to/.venv/bin/mmrag-desktop" >&2
    exit 1
fi
exe="$(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$data/applications" "$data/icons/hicolor/scalable/apps"
sed "s|^Exec=mmrag-desktop|Exec=$exe|; s|^TryExec=mmrag-desktop|TryExec=$exe|" \
    "$here/resources/mmrag-desktop.desktop" > "$data/applications/mmrag-desktop.desktop"
cp "$here/resources/mmrag-desktop.svg" "$data/icons/hicolor/scalable/apps/mmrag-desktop.svg"
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
echo "installed $data/applications/mmrag-desktop.desktop"

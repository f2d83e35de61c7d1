#!/usr/bin/env bash
# Builds the Linux bundle from this checkout:
#   dist/mmrag-desktop/                          the PyInstaller onedir app (mmrag, mmrag-desktop)
#   dist/mmrag-desktop-linux-x86_64.tar.zst      it, packed
#   dist/mmrag-desktop-linux-x86_64.squashfs     an AppDir image; the release workflow prepends
#                                                the AppImage runtime to make the .AppImage
# in a build venv without torch (build/bundle-venv; BUNDLE_VENV overrides). Needs python3
# (3.11+), zstd, mksquashfs, and the X11/Wayland client libraries Qt's platform plugins link
# (bundled from the build machine, so that the app finds them on any desktop):
#   apt-get install zstd squashfs-tools libxcb-icccm4 libxcb-keysyms1 libwayland-cursor0 libwayland-egl1 libpulse0
# (libpulse: Qt Multimedia's, for videos in the viewer)
# llama-cpp-python compiles unless pip's cache has its wheel; CMAKE_ARGS as in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in zstd mksquashfs; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing (see the top of $0)" >&2; exit 1; }
done
# The cache is read once into a variable: piped into `grep -q` under pipefail, ldconfig dies of
# SIGPIPE when grep stops at the first match of an output longer than the pipe's buffer, and a
# library that is there reads as missing.
linker_cache=$("$(command -v ldconfig || echo /sbin/ldconfig)" -p)
for lib in libxcb-icccm.so.4 libxcb-keysyms.so.1 libwayland-cursor.so.0 libwayland-egl.so.1 libpulse.so.0; do
    [[ $linker_cache == *"$lib "* ]] || { echo "build.sh: $lib is missing (see the top of $0)" >&2; exit 1; }
done
started=$(date +%s)
venv="${BUNDLE_VENV:-build/bundle-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
mkdir -p build
"$venv/bin/python" packaging/requirements.py > build/bundle-requirements.txt
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
"$venv/bin/pip" install -q -r build/bundle-requirements.txt
"$venv/bin/pip" install -q --no-deps --force-reinstall .
"$venv/bin/pyinstaller" --noconfirm --clean --log-level WARN --distpath dist \
    --workpath build/pyinstaller packaging/mmrag-desktop.spec
app=dist/mmrag-desktop
tar -C dist -cf - mmrag-desktop | zstd -q -19 -T0 -f -o dist/mmrag-desktop-linux-x86_64.tar.zst

# AppDir: the onedir under usr/lib, the desktop entry and icon at the top, AppRun.
appdir=build/AppDir
rm -rf "$appdir"
mkdir -p "$appdir/usr/lib"
cp -a "$app" "$appdir/usr/lib/mmrag-desktop"
cp resources/mmrag-desktop.desktop resources/mmrag-desktop.svg "$appdir/"
ln -s mmrag-desktop.svg "$appdir/.DirIcon"
cp packaging/AppRun "$appdir/AppRun"
chmod +x "$appdir/AppRun"
mksquashfs "$appdir" dist/mmrag-desktop-linux-x86_64.squashfs -root-owned -noappend \
    -comp zstd -quiet >/dev/null

echo "build.sh: built in $(( $(date +%s) - started )) s"
echo "  $app: $(du -sm "$app" | cut -f1) MB unpacked, $(find "$app" -type f | wc -l) files"
for packed in dist/mmrag-desktop-linux-x86_64.tar.zst dist/mmrag-desktop-linux-x86_64.squashfs; do
    echo "  $packed: $(( $(stat -c %s "$packed") / 1048576 )) MB"
done

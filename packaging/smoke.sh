#!/usr/bin/env bash
# packaging/smoke.sh DIR [FIXTURES]: run the onedir bundle in DIR as a new machine would:
# `env -i`, a temporary HOME, only /usr/bin:/bin on PATH, no virtual environment reachable.
# It imports a small ONNX export (the tests' tiny model), downloads the default model from a
# local Hugging Face mirror (HF_ENDPOINT: tests/hub_server.py serving the tiny model in
# rclip's layout under the default model's name), indexes 20 coco-mini photos, a video and two faces-dev photos of one person (found as a person), searches (text, photo, a video's scene, --json), answers `mmrag ask` with the gemma-3-270m fixture, opens
# the GUI headless to a painted window, and checks that the running app maps no library from
# outside the bundle but the system's own, and that ldd resolves every library in it.
# FIXTURES (made by packaging/smoke_fixtures.py) default to a fresh set made with $PYTHON
# (default .venv/bin/python, which needs the test dependencies). Prints timings.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
app="$(cd "${1:?usage: smoke.sh DIR [FIXTURES]}" && pwd)"
work="$(mktemp -d)"
gui_pid=""
hub_pid=""
trap '{ [ -z "$gui_pid" ] || kill "$gui_pid"; [ -z "$hub_pid" ] || kill "$hub_pid"; } 2>/dev/null || true; rm -rf "$work"' EXIT
fixtures="${2:-}"
if [ -z "$fixtures" ]; then
    fixtures="$work/fixtures"
    "${PYTHON:-$repo/.venv/bin/python}" "$repo/packaging/smoke_fixtures.py" "$fixtures" >/dev/null
fi
fixtures="$(cd "$fixtures" && pwd)"
home="$work/home"
photos="$work/photos"
mkdir -p "$home" "$photos"
coco="${COCO:-$repo/../shared/data/coco-mini/images}"
# sed, not head, in pipelines: head exits at once, and under pipefail the writer it leaves
# behind dies of SIGPIPE (exit 141) whenever it had not finished writing (a busy machine).
find "$coco" -name '*.jpg' | sort | sed -n 1,20p | while read -r photo; do cp "$photo" "$photos/"; done
cp "$fixtures/clip.mp4" "$photos/"  # its second scene is coco-mini's 32nd photo
cp "$fixtures/eiffel.jpg" "$fixtures/photo.heic" "$photos/"  # a place to name, a HEIC to decode
faces="${FACES:-$repo/../shared/data/faces-dev/images}"
cp "$faces/obama_1.jpg" "$faces/obama_2.jpg" "$photos/"  # two photos of one person
printf 'roots = ["%s"]\n' "$photos" > "$home/config.toml"  # the default model

fail() { echo "smoke: FAILED: $*" >&2; exit 1; }
# A command as a new machine runs it: "${bundled[@]}" COMMAND…
bundled=(env -i HOME="$home" PATH=/usr/bin:/bin LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen
         MMRAG_HOME="$home" ${SYSTEMROOT:+SYSTEMROOT="$SYSTEMROOT"})  # Windows needs SYSTEMROOT
now() { date +%s.%N; }
seconds() { echo "$1 $2" | awk '{printf "%.2f", $2 - $1}'; }

echo "smoke: $app"
[ -z "$(find "$app" -iname '*torch*' -o -iname 'libcudnn*' -o -iname 'libnvrtc*' \
        -o -iname 'transformers' -o -iname 'triton')" ] || fail "torch or CUDA libraries inside"
[ -n "$(find "$app" -iname '*ffmpegmediaplugin*')" ] \
    || fail "no Qt Multimedia FFmpeg plugin inside: videos would not play in the viewer"

# An export imported (into a home of its own: the tiny model's architecture)...
mkdir -p "$work/imported"
printf 'model = "mmrag-tiny"\npretrained = ""\n' > "$work/imported/config.toml"
env -i HOME="$work/imported" PATH=/usr/bin:/bin LANG=C.UTF-8 MMRAG_HOME="$work/imported" \
    ${SYSTEMROOT:+SYSTEMROOT="$SYSTEMROOT"} "$app/mmrag" models import "$fixtures/export" \
    >/dev/null || fail "models import"
# ...and the default model downloaded from a mirror, as a user behind one would.
python3 "$repo/tests/hub_server.py" "$fixtures/hub" "$work/hub.port" &
hub_pid=$!
for _ in $(seq 1 50); do [ -s "$work/hub.port" ] && break; sleep 0.1; done
[ -s "$work/hub.port" ] || fail "the local Hugging Face mirror did not start"
"${bundled[@]}" HF_ENDPOINT="http://127.0.0.1:$(cat "$work/hub.port")" "$app/mmrag" models download --yes \
    > "$work/download.out" 2>&1 || { cat "$work/download.out"; fail "models download from a mirror"; }
grep -q "rclip-models/ViT-B-32-256-datacomp_s34b_b86k/visual.onnx" "$work/download.out" \
    || fail "the download did not name rclip's files"
kill "$hub_pid"; hub_pid=""
"${bundled[@]}" "$app/mmrag" index > "$work/index.out" 2>&1 || { cat "$work/index.out"; fail "index"; }
count=$("${bundled[@]}" "$app/mmrag" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["photos"])')
[ "$count" = 25 ] || fail "indexed $count photos and videos, not 25"
"${bundled[@]}" "$app/mmrag" people --json > "$work/people.json" || fail "people"
python3 - "$work/people.json" <<'PY' || fail "the two photos of one face are not one person"
import json, sys
people = json.load(open(sys.argv[1]))
assert any(sorted(p.split("/")[-1] for p in person["photos"]) == ["obama_1.jpg", "obama_2.jpg"]
           for person in people), people
PY
"${bundled[@]}" "$app/mmrag" search "Paris" --mode keyword -k 1 --json > "$work/place.json" \
    || fail "place search"
python3 - "$work/place.json" <<'PY' || fail "the photo taken at the Eiffel Tower is not named Paris"
import json, sys
hits = json.load(open(sys.argv[1]))
assert hits and hits[0]["path"].endswith("eiffel.jpg") and "Paris" in hits[0]["place"], hits
PY

"${bundled[@]}" "$app/mmrag" search "a street in Paris since March 2020" --explain --json \
    > "$work/understood.json" || fail "an understood search"
python3 - "$work/understood.json" <<'PY' || fail "dates and a place in a query are not understood"
import json, sys
understood = json.load(open(sys.argv[1]))["understood"]
assert understood["after"] == "2020-03-01" and understood["place"] == "Paris", understood
PY

started=$(now)
"${bundled[@]}" "$app/mmrag" search "a dog on a beach" -k 5 --json > "$work/text.json" || fail "text search"
search_s=$(seconds "$started" "$(now)")
python3 - "$work/text.json" <<'PY' || fail "text search answer"
import json, sys
hits = json.load(open(sys.argv[1]))
assert len(hits) == 5 and all({"path", "score"} <= set(h) for h in hits), hits
PY
example="$(find "$photos" -name '*.jpg' | sort | sed -n 4p)"
"${bundled[@]}" "$app/mmrag" search "$example" -k 1 --json > "$work/photo.json" || fail "photo search"
python3 - "$work/photo.json" "$example" <<'PY' || fail "a photo does not find itself first"
import json, sys
assert json.load(open(sys.argv[1]))[0]["path"] == sys.argv[2]
PY
"${bundled[@]}" "$app/mmrag" search "a red car" -k 3 > /dev/null || fail "plain search"
scene="$(find "$coco" -name '*.jpg' | sort | sed -n 32p)"
"${bundled[@]}" "$app/mmrag" search "$scene" -k 1 --json > "$work/video.json" || fail "video search"
python3 - "$work/video.json" <<'PY' || fail "a video's scene does not find the video at that moment"
import json, sys
hit = json.load(open(sys.argv[1]))[0]
assert hit["path"].endswith("clip.mp4") and 3.0 <= hit["moment"] < 6.0, hit
PY

"${bundled[@]}" "$app/mmrag" vlm set "$fixtures/vlm/model.gguf" "$fixtures/vlm/mmproj.gguf" >/dev/null 2>&1 \
    || fail "vlm set"
"${bundled[@]}" "$app/mmrag" ask "Which photo shows food?" -k 3 > "$work/ask.out" 2>&1 \
    || { cat "$work/ask.out"; fail "ask"; }
[ -s "$work/ask.out" ] || fail "ask answered nothing"

[ ! -e "$home/.cache/Microsoft" ] || fail "ONNX Runtime wrote its telemetry folder"

started=$(now)
shown="$("${bundled[@]}" "$app/mmrag" gui --quit-when-shown 2>/dev/null | sed -n 1p)"
gui_s=$(seconds "$started" "$(now)")
[ "$shown" = shown ] || fail "the GUI did not paint a window"

if [ "$(uname -s)" != Linux ]; then  # the release workflow's Windows and macOS runs
    echo "smoke: passed: import, download from a mirror, index 20 + a GPS photo + a HEIC + a video + two faces, a place, a person, an understood query, text/photo/video/--json search, ask, GUI painted"
    echo "smoke: cold mmrag search ${search_s} s; GUI launch to a painted window ${gui_s} s"
    exit 0
fi
# Linux: the app as a user runs it (the window, the model's helper process, watching), its
# memory maps, and ldd over the whole bundle.
"${bundled[@]}" "$app/mmrag-desktop" > "$work/gui.out" 2>&1 &
gui_pid=$!
helper=""
for _ in $(seq 1 60); do  # the child that runs the model (another is multiprocessing's tracker)
    sleep 0.5
    for child in $(pgrep -P "$gui_pid" || true); do
        grep -q onnxruntime "/proc/$child/maps" 2>/dev/null && helper=$child
    done
    [ -n "$helper" ] && break
done
sleep 1
maps="$(cat "/proc/$gui_pid/maps" ${helper:+"/proc/$helper/maps"} 2>/dev/null | awk '$6 ~ /\.so/ {print $6}' | sort -u)"
kill "$gui_pid" 2>/dev/null || true
wait "$gui_pid" 2>/dev/null || true
[ -n "$helper" ] || { cat "$work/gui.out"; fail "the GUI did not start the model's helper"; }
grep -q onnxruntime <<< "$maps" || fail "the model's helper did not load ONNX Runtime"
outside="$(grep -v "^$app/" <<< "$maps" || true)"
foreign="$(grep -vE '^/(usr/)?lib(64)?/' <<< "$outside" || true)"
[ -z "$foreign" ] || fail "libraries from outside the bundle: $foreign"
grep -qiE 'python|site-packages|qt|onnx|llama|ggml' <<< "$outside" \
    && fail "app libraries from the system: $(grep -iE 'python|site-packages|qt|onnx|llama|ggml' <<< "$outside")"

missing="$(find "$app" -type f \( -name '*.so*' -o -perm -u+x \) -exec sh -c \
    'for f; do LD_LIBRARY_PATH="$0/_internal" ldd "$f" 2>&1 | grep "=> not found" | sed "s|^|$f: |"; done' \
    "$app" {} + | sort -u)"
[ -z "$missing" ] || fail "ldd cannot resolve: $missing"

echo "smoke: passed: import, download from a mirror, index 20 + a GPS photo + a HEIC + a video + two faces, a place, a person, an understood query, text/photo/video/--json search, ask," \
     "GUI painted," \
     "$(wc -l <<< "$maps") libraries mapped ($(wc -l <<< "$outside") from the system), ldd clean"
echo "smoke: cold mmrag search ${search_s} s; GUI launch to a painted window ${gui_s} s"

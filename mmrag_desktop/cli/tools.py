"""Tools: ``mmrag eval`` (Recall@K), ``gui`` and ``bench``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..core.config import home_dir
from .output import ProgressBar, UsageError, open_library


def add_eval(sub) -> None:
    s = sub.add_parser("eval", help="text→image Recall@K on a captioned photo set")
    s.add_argument("captions", help="JSONL: {\"file\": ..., \"captions\": [...]} per line")
    s.add_argument("images", help="folder holding the files")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)


def add_gui(sub) -> None:
    s = sub.add_parser("gui", help="open the desktop app (same as mmrag-desktop)")
    s.add_argument("photo", nargs="?", help="open searching for photos similar to this one")
    s.add_argument("--quit-when-shown", action="store_true",
                   help="print 'shown' once the window is painted, then quit (launch timing)")
    s.set_defaults(func=cmd_gui)


def add_bench(sub) -> None:
    s = sub.add_parser("bench", help="indexing throughput, search latency, ANN recall")
    s.add_argument("photos", nargs="?", help="a folder of photos to benchmark with")
    s.add_argument("--rescan", metavar="N[,N...]",
                   help="benchmark a rescan of synthetic libraries of N photos instead "
                        "(nothing changed): time and the run's peak memory")
    s.add_argument("--vlm", action="store_true",
                   help="benchmark the vision-language model instead: load time, time to "
                        "first token, tokens/s, peak RSS")
    s.add_argument("--vlm-model", default="", help="with --vlm: this GGUF instead of vlm_model")
    s.add_argument("--vlm-mmproj", default="", help="with --vlm-model: its mmproj")
    s.add_argument("--gui", action="store_true",
                   help="benchmark the GUI instead: launch time and the longest event-loop "
                        "stall while indexing, searching and scrolling")
    s.add_argument("--text", action="store_true",
                   help="benchmark text in photos instead: phrases rendered onto the photos, "
                        "OCR ms per photo, search latency during the pass, rank-1 per mode")
    s.add_argument("--video", action="store_true",
                   help="benchmark videos instead: videos made from the photos, keyframe "
                        "selection decoding keyframes only vs every frame, indexing end to "
                        "end, and personal concepts' learning time")
    s.add_argument("--faces", action="store_true",
                   help="benchmark finding faces instead: s/photo, photos/s and, with a "
                        "labels.jsonl (../shared/data/faces-dev), detection recall, "
                        "same-person pair accuracy and the grouping's pairwise precision/recall")
    s.add_argument("--large", type=int, default=24, help="12 MP JPEGs to generate (0: none)")
    s.add_argument("--sizes", default="100000,1000000", help="synthetic ANN set sizes")
    s.add_argument("--queries", type=int, default=1000, help="ANN queries per size")
    s.set_defaults(func=cmd_bench)


def cmd_eval(args) -> int:
    from ..bench.evaluation import evaluate

    home = home_dir()
    images = Path(args.images).resolve()
    slug = "".join(c if c.isalnum() else "_" for c in str(images))[-80:]
    engine = open_library(args, path=home / "eval" / slug)
    result = evaluate(engine, Path(args.captions), images, on_progress=ProgressBar())
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{result['queries']} caption queries over {result['photos']} photos "
              f"({result['model']}):")
        for k in (1, 5, 10):
            print(f"  Recall@{k}: {result[f'recall@{k}']:.4f}")
        print(f"  ANN top-10 overlap with exact top-10: {result['ann_overlap@10']:.4f}")
    return 0


def cmd_gui(args) -> int:
    from ..gui import main as gui_main

    return gui_main([args.photo] if args.photo else [], args.random_weights,
                    args.quit_when_shown)


def cmd_bench(args) -> int:
    if args.rescan:
        from ..bench.speed import bench_rescan

        with tempfile.TemporaryDirectory(prefix="mmrag-bench-") as scratch:
            for n in args.rescan.split(","):
                bench_rescan(int(n), Path(scratch))
        return 0
    if not args.photos:
        raise UsageError("bench: name a folder of photos to benchmark with")
    if args.vlm:
        from ..bench.speed import run_vlm_bench

        run_vlm_bench(Path(args.photos), args.vlm_model, args.vlm_mmproj)
        return 0
    if args.text:
        from ..bench.text import run_text_bench

        run_text_bench(Path(args.photos), random_weights=args.random_weights)
        return 0
    if args.video:
        from ..bench.video import run_video_bench

        run_video_bench(Path(args.photos), random_weights=args.random_weights)
        return 0
    if args.faces:
        from ..bench.faces import run_faces_bench

        run_faces_bench(Path(args.photos))
        return 0
    if args.gui:
        from ..bench.gui import run_gui_bench

        run_gui_bench(Path(args.photos), random_weights=args.random_weights)
        return 0
    from ..bench.speed import run_bench

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    run_bench(Path(args.photos), large=args.large, ann_sizes=sizes, queries=args.queries,
              random_weights=args.random_weights)
    return 0

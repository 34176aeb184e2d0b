"""The command line of ``python -m capsight.training.readers.conceptual_captions``
(the library module hands over to it, and parses no argv itself)."""

from __future__ import annotations

import sys
from pathlib import Path

from capsight._cli.tools import tool_parser
from capsight.errors import CapsightError
from capsight.training.readers.conceptual_captions import (
    _DEADLINE_FACTOR,
    RETRY_FILE,
    fetch_conceptual_captions,
)


def main(argv: list[str] | None = None) -> int:
    """``python -m capsight.training.readers.conceptual_captions TSV CACHE_DIR``: fetch photos."""
    import json
    from dataclasses import asdict

    parser = tool_parser("capsight.training.readers.conceptual_captions",
                         "Fetch the photos of a Conceptual Captions TSV "
                         "into a local cache (resumable; failures skipped and counted).")  # fmt: skip
    parser.add_argument("tsv", help="Conceptual Captions TSV (caption<TAB>URL)")
    parser.add_argument("cache_dir", help="folder the photos go to")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each "
                        f"read from a server (a photo gets {_DEADLINE_FACTOR} times that in all)")  # fmt: skip
    parser.add_argument(
        "--retry-failed", action="store_true", help="retry photos that failed for good before"
    )
    parser.add_argument("--verify", action="store_true", help="decode each cached photo first "
                        "and fetch again those that do not (a disk that filled up, a copy cut short)")  # fmt: skip
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from capsight._cli.progress_bar import ProgressBar

    try:
        with ProgressBar(ProgressBar.wanted(args.quiet)) as on_progress:
            report = fetch_conceptual_captions(args.tsv, args.cache_dir, timeout=args.timeout,
                                               limit=args.limit, retry_failed=args.retry_failed,
                                               verify=args.verify, progress=on_progress)  # fmt: skip
    except CapsightError as exc:
        print(f"error: {exc}", file=sys.stderr)  # (every line of this tool: "error:", "note:")
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the photos fetched so far stay in {args.cache_dir}; run the same "
              "command again to go on", file=sys.stderr)  # fmt: skip
        return 130
    print(json.dumps(asdict(report), indent=2))
    reasons = ", ".join(f"{count} {reason}" for reason, count in report.failures.items())
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    earlier = (f", {report.skipped_known_failures} failed on an earlier run (--retry-failed "
               "tries them again)" if report.skipped_known_failures else "")  # fmt: skip
    retry = Path(args.cache_dir) / RETRY_FILE
    if retry.is_file():  # (named: which URLs timed out or met a server error had been said nowhere)
        earlier += f"; those a rerun tries again are listed in {retry}"
    damaged = (f", {report.damaged} damaged cached photo{'s' if report.damaged != 1 else ''} deleted "
               "and fetched again" if report.damaged else "")  # fmt: skip
    print(f"fetched {report.fetched}{damaged}, {report.cached} already cached, {report.failed} failed"
          + (f" ({reasons})" if reasons else "") + earlier + (f"; stopped early: "
          f"{report.stopped_early}" if report.stopped_early else ""), file=sys.stderr)  # fmt: skip
    if report.rows and not report.fetched + report.cached:
        print(f"error: none of the {report.rows} photos is in {args.cache_dir}", file=sys.stderr)
        return 1
    return 0

"""capsight: describe images in words and find the moments in a video unlike what came before.

    >>> import capsight
    >>> capsight.caption(["cat.jpg"])[0].text
    >>> analysis = capsight.analyze_video("clip.mp4", every=1.0)
    >>> from capsight.novelty.reports import write_outputs
    >>> write_outputs(analysis, "out/")  # analysis.json, moments.csv, novelty.png, report.html, ...

Heavy libraries (torch, transformers) are imported only when a function that needs them runs.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "analyze_video", "caption", "CapsightError"]

from capsight.errors import CapsightError


def __getattr__(name: str):
    if name == "analyze_video":
        from capsight.novelty.pipeline import analyze_video

        return analyze_video
    if name == "caption":
        from capsight.captioning.facade import caption

        return caption
    raise AttributeError(f"module 'capsight' has no attribute {name!r}")

"""The frames a video analysis encodes: sampled, exposure-normalised, with a thumbnail each.

    >>> with FrameBatches("clip.mp4", every=1.0) as batches:     # a decoder process starts now
    ...     for batch in batches:                                # lists of up to 16 Frame
    ...         encode([f.image for f in batch]); keep([f.thumbnail for f in batch])

Where the decoding runs depends on whether torch is imported yet (``process=None``, the default).
In a new process (the CLI) the analysis loads three models while the first frames decode (on
ONNX Runtime, or with torch's import, which holds the interpreter lock for about a second); a
decoding thread would wait for that lock at every packet. So then a child process decodes: a
fork of this process when it has one thread, on Linux (it starts with NumPy, Pillow and PyAV
already imported), else ``python -m capsight.novelty.frames``. It decodes, normalises and
thumbnails on the second core from the first moment, and hands whole batches over a pipe (raw
RGB bytes; about 250 KB per 384-pixel frame). Once torch is loaded (a server, a photo captioned
before) a child only adds its start-up, so a thread in this process decodes instead; so it does
when a child cannot start. A process that analyses several videos on ONNX Runtime gets a child
each time: a fork for the first, ``python -m`` once ONNX Runtime's threads exist.
``process=True`` or ``False`` forces a child or a thread. A forked child says so as soon as it
has decoded its first frame; one that has not within ``FORK_STARTUP_S`` (stuck on a lock some
C library's thread held at the fork, say) is killed and a ``python -m`` child starts over.

The child never imports torch. Errors it meets are sent back as their ``CapsightError`` class
and message and raised in the parent, so a corrupt video reads the same either way.

Exposure normalisation: every sampled frame is shifted and scaled so its luminance has a fixed
mean and spread (gain capped at 4) before encoding. Brightness flicker and darkening multiply
pixel values, so they vanish from what the encoder sees; thumbnails keep the original frame.
"""

from __future__ import annotations

import io
import json
import os
import queue
import select
import signal
import site
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from capsight import errors
from capsight.background import Background
from capsight.io.video import sample_frames

BATCH = 16  # moments encoded and captioned together
FRAME_MAX_SIDE = 384  # frames are decoded at most this large (swscale area downscale)
_TARGET_MEAN, _TARGET_STD, _MAX_GAIN = 118.0, 60.0, 4.0
# the caption of a flat frame (``sharpness`` NaN): nothing to describe
FLAT_CAPTION = "a blank frame"
_FLAT_STD = 0.5 * _TARGET_STD  # a normalised frame this far below the spread hit the gain cap: flat
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_AHEAD = 8  # batches the child may decode ahead of the parent (~32 MB at 384 px)
_HEADER = struct.Struct("<I")  # byte length of the JSON header that starts each message
FORK_STARTUP_S = 30.0  # a forked child decodes its first frame within this, or is replaced


@dataclass
class Frame:
    time: float  # seconds from the start of the video
    image: Image.Image  # RGB, exposure-normalised, at most FRAME_MAX_SIDE on its longer side
    thumbnail: bytes | None  # JPEG of the original frame, or None when not asked for


def normalise_exposure(image: Image.Image) -> Image.Image:
    """Shift and scale pixel values so the luminance has mean 118 and spread 60 (gain <= 4)."""
    x = np.asarray(image, dtype=np.float32)  # (H, W, 3)
    luma = x @ _LUMA  # (H, W)
    mean, std = float(luma.mean()), float(luma.std())
    gain = min(_TARGET_STD / max(std, 1e-3), _MAX_GAIN)
    out = (x - mean) * gain + _TARGET_MEAN
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def sharpness(image: Image.Image) -> float:
    """Mean absolute Laplacian of the luminance at half size: fine detail, which defocus and
    motion blur remove (at full size sensor noise would count as detail). Taken on the
    exposure-normalised frame, so lighting does not move it; NaN for a frame whose spread
    normalisation could not restore (a fade, a dark title card, a blank frame: flat, not
    blurred)."""
    luma = np.asarray(image, dtype=np.float32) @ _LUMA  # (H, W)
    if luma.size == 0 or float(luma.std()) < _FLAT_STD:
        return float("nan")
    h, w = (luma.shape[0] // 2) * 2, (luma.shape[1] // 2) * 2
    luma = luma[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # (H/2, W/2)
    laplacian = (
        4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
    )  # (H/2-2, W/2-2)
    if laplacian.size:
        return float(np.abs(laplacian).mean())
    # A strip a few pixels thin (a 4000x16 video, read at 384 px wide): no room for a Laplacian
    # at half size, and NaN had called every moment of it "a blank frame". The second
    # differences along its length measure its detail instead.
    full = np.asarray(image, dtype=np.float32) @ _LUMA  # (H, W)
    second = np.diff(full, n=2, axis=int(full.shape[1] >= full.shape[0]))
    return float(np.abs(second).mean()) if second.size else 0.0


def thumbnail_jpeg(image: Image.Image, size: int) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.BILINEAR)
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def frame_batches(
    path: str | os.PathLike, every: float, thumbnail_size: int | None,
    first_frame: Callable[[], None] | None = None,
) -> Iterator[list[Frame]]:  # fmt: skip
    """Decode and prepare the sampled frames in this process, BATCH at a time; ``first_frame``
    is called once the first frame is ready."""
    batch: list[Frame] = []
    for sampled in sample_frames(path, every, max_side=FRAME_MAX_SIDE, lean=True):
        thumb = thumbnail_jpeg(sampled.image, thumbnail_size) if thumbnail_size else None
        batch.append(Frame(sampled.time, normalise_exposure(sampled.image), thumb))
        if first_frame is not None:
            first_frame()
            first_frame = None
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class FrameBatches:
    """Batches of prepared frames, decoded by a child process (or a thread); see the module doc.

    Iterate once; ``close`` (or leaving the ``with`` block) stops the decoder early.
    ``seconds`` is how long decoding took, known once the iteration has finished."""

    def __init__(
        self, path: str | os.PathLike, every: float, thumbnail_size: int | None = 320,
        process: bool | None = None,
    ) -> None:  # fmt: skip
        if process is None:
            process = "torch" not in sys.modules
        self.seconds = 0.0
        self._argv = [os.fspath(path), repr(every), str(thumbnail_size or 0)]
        self._child: subprocess.Popen | _ForkedChild | None = None
        self._thread: Background | None = None
        if process:
            try:
                self._child = _ForkedChild(self._argv) if _can_fork() else _python_child(self._argv)
            except OSError:
                self._child = None  # no process for us: decode on a thread instead
        if self._child is None:
            self._thread = Background(frame_batches(path, every, thumbnail_size), buffer=3)

    def __iter__(self) -> Iterator[list[Frame]]:
        if self._thread is not None:
            yield from self._thread
            self.seconds = self._thread.seconds
            return
        assert self._child is not None and self._child.stdout is not None
        stuck = isinstance(self._child, _ForkedChild) and not _readable(
            self._child.stdout, FORK_STARTUP_S
        )
        if stuck:  # a fork stuck before its first frame: start over in a new interpreter
            self.close()
            self._child = _python_child(self._argv)
        while True:
            header, payload = _read_message(self._child.stdout)
            if header is None:
                raise errors.VideoOpenError("the video decoder stopped unexpectedly")
            if header["kind"] == "alive":  # a forked child decoded its first frame
                continue
            if header["kind"] == "batch":
                yield _unpack_batch(header, payload)
            elif header["kind"] == "error":
                error = getattr(errors, header["type"], None)
                if not (isinstance(error, type) and issubclass(error, errors.CapsightError)):
                    error = errors.VideoOpenError
                raise error(header["message"])
            else:  # done
                self.seconds = header["seconds"]
                self._child.wait()  # it leaves right after this message: reap it now
                return

    def close(self) -> None:
        if self._thread is not None:
            self._thread.close()
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
            self._child.wait()
            if self._child.stdout is not None:
                self._child.stdout.close()

    def __del__(self) -> None:  # not closed: stop and reap the child all the same
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __enter__(self) -> FrameBatches:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the child process and its messages ----------------------------------------------------
def _python_child(argv: list[str]) -> subprocess.Popen:
    """``python -P -m capsight.novelty.frames ARGV``: -P keeps the working directory off the
    child's path (a user's queue.py there must not replace the standard module)."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    if package_root not in site.getsitepackages() + [site.getusersitepackages()]:
        # a source checkout, or an editable install: put it on the path, ahead of the rest
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-P", "-m", "capsight.novelty.frames", *argv]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)


def _readable(stream, timeout: float) -> bool:
    """Whether ``stream`` (nothing read from it yet) has data or an end within ``timeout`` s."""
    return bool(select.select([stream], [], [], timeout)[0])


def _can_fork() -> bool:
    """Fork only on Linux, from a process with no other Python thread and before torch or ONNX
    Runtime start their thread pools: a fork copies the calling thread alone, so a lock another
    thread held at that moment would stay locked in the child for ever. (NumPy's OpenBLAS may
    have idle threads already; it resets them in a forked child itself.)"""
    return (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and not {"torch", "onnxruntime"} & set(sys.modules)
    )


class _ForkedChild:
    """The decoder as a fork of this process: the same ``_child_main`` and messages as the
    ``python -m capsight.novelty.frames`` child, but it starts with NumPy, Pillow and PyAV
    already imported, so it decodes ~0.25 s sooner and spends ~0.25 s less CPU. Answers the
    parts of ``subprocess.Popen`` that ``FrameBatches`` uses."""

    def __init__(self, argv: list[str]) -> None:
        read, write = os.pipe()
        try:
            self.pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            raise
        if self.pid == 0:  # the child: decode, then leave without running the parent's exit code
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not a handler of the host app's
                os.close(read)
                code = _child_main(argv, os.fdopen(write, "wb"), forked=True)
            except BaseException:  # Ctrl-C, a closed pipe: the parent reports what matters
                pass
            os._exit(code)
        os.close(write)
        self.returncode: int | None = None
        self.stdout = os.fdopen(read, "rb")

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def _write_message(out, header: dict, payload: list[bytes] = ()) -> None:
    raw = json.dumps(header).encode()
    out.write(_HEADER.pack(len(raw)) + raw)
    for part in payload:
        out.write(part)
    out.flush()


def _read_exactly(stream, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def _read_message(stream) -> tuple[dict | None, bytes]:
    size = _read_exactly(stream, _HEADER.size)
    if size is None:
        return None, b""
    raw = _read_exactly(stream, _HEADER.unpack(size)[0])
    if raw is None:
        return None, b""
    header = json.loads(raw)
    length = header.get("bytes", 0)
    payload = _read_exactly(stream, length) if length else b""
    if payload is None:
        return None, b""
    return header, payload


def _pack_batch(batch: list[Frame]) -> tuple[dict, list[bytes]]:
    frames, parts = [], []
    for f in batch:
        pixels = f.image.tobytes()
        thumb = f.thumbnail or b""
        frames.append({"time": f.time, "size": list(f.image.size), "pixels": len(pixels),
                       "thumbnail": len(thumb) if f.thumbnail is not None else None})  # fmt: skip
        parts += [pixels, thumb]
    return {"kind": "batch", "frames": frames, "bytes": sum(len(p) for p in parts)}, parts


def _unpack_batch(header: dict, payload: bytes) -> list[Frame]:
    view, at, batch = memoryview(payload), 0, []
    for f in header["frames"]:
        image = Image.frombytes("RGB", tuple(f["size"]), view[at : at + f["pixels"]])
        at += f["pixels"]
        thumb = None
        if f["thumbnail"] is not None:
            thumb = bytes(view[at : at + f["thumbnail"]])
            at += f["thumbnail"]
        batch.append(Frame(f["time"], image, thumb))
    return batch


def _child_main(argv: list[str], out, forked: bool = False) -> int:
    """Decode ``PATH EVERY THUMBNAIL_SIZE`` to the binary stream ``out``; never raises (errors
    become messages). A ``forked`` child first says "alive" once its first frame is decoded."""
    started = time.perf_counter()
    pending: queue.Queue = queue.Queue(maxsize=_AHEAD)  # decoded batches the pipe has not taken

    def write_all() -> None:
        try:
            while (item := pending.get()) is not None:
                _write_message(out, *item)
        except OSError:  # the parent stopped reading (closed early or gone): stop decoding too
            os._exit(0)

    writer = threading.Thread(target=write_all, daemon=True)
    writer.start()
    try:
        path, every, thumbnail_size = argv[0], float(argv[1]), int(argv[2])
        alive = (lambda: pending.put(({"kind": "alive"}, []))) if forked else None
        for batch in frame_batches(path, every, thumbnail_size or None, alive):
            pending.put(_pack_batch(batch))
        pending.put(({"kind": "done", "seconds": time.perf_counter() - started}, []))
    except errors.CapsightError as exc:
        pending.put(({"kind": "error", "type": type(exc).__name__, "message": str(exc)}, []))
    except Exception as exc:  # a bug or an FFmpeg surprise: one line for the user, no traceback
        message = f"{argv[0] if argv else 'video'}: decoding failed ({type(exc).__name__}: {exc})"
        pending.put(({"kind": "error", "type": "VideoOpenError", "message": message}, []))
    pending.put(None)
    writer.join()
    return 0


if __name__ == "__main__":
    try:
        code = _child_main(sys.argv[1:], sys.stdout.buffer)
        sys.stdout.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        code = 0
    os._exit(code)  # skip interpreter teardown; nothing to clean up

"""The Ray runner: a batch of videos on a Ray cluster, or on Ray on this machine.

Ray Data maps the list of videos over a pool of ``workers`` actors, each of which loads the
models once and analyses one video at a time (``map_batches`` with a callable class and a
batch size of 1). Every node must see the videos and the output folder at the same paths (a
shared file system); the outcomes stream back to the caller as videos finish.

    $ capsight video archive/ --out /shared/out --ray auto --workers 16

``address``: "auto" joins the cluster this machine belongs to (``ray start``), "local" starts
Ray on this machine for the batch, anything else is a Ray address (``ray://head:10001``).
Needs ``pip install 'capsight[ray]'``. Ray's core may still print a line of its own on stderr (an
actor's restart policy, ray-project/ray#53727); Ray Data's bars and INFO lines are turned off.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Iterator

from capsight.batch.outcome import VideoOutcome, analyze_into
from capsight.errors import CapsightError, MissingDependency

# A Ray actor asks for one CPU: an analysis leaves some of its cores idle (capsight.batch.local),
# so --workers as many as the cores fills them best.
CPUS_PER_WORKER = 1


class VideoAnalyser:
    """A Ray Data actor: the models load in the first analysis and stay for the next."""

    def __init__(self, options: dict):
        self.options = options

    def __call__(self, batch: dict) -> dict:
        outcomes = [
            analyze_into(str(video), str(folder), self.options)
            for video, folder in zip(batch["video"], batch["folder"], strict=True)
        ]
        # Pickled: an outcome (nested analysis, an exception) is no Arrow column.
        return {"outcome": [pickle.dumps(o) for o in outcomes]}


def check_ray() -> None:
    """MissingDependency, in one line, when Ray or Ray Data cannot be imported."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingDependency("--ray needs Ray and Ray Data: pip install 'capsight[ray]' "
                                "(or 'ray[data,client]')") from None  # fmt: skip


def connect(address: str) -> bool:
    """Join or start Ray at ``address``, before any output is written; whether it was started
    here (and is for the batch to shut down). CapsightError, in one line, when it cannot be."""
    check_ray()
    import ray

    if ray.is_initialized():
        return False
    advice = ("check that the head node's Ray Client port is reachable from here"
              if address.startswith("ray://") else
              "start one with `ray start --head`, or pass --ray local")  # fmt: skip
    if (unanswered := _no_answer(address)) is not None:
        raise CapsightError(f"--ray {address}: cannot reach a Ray cluster ({unanswered}); {advice}")
    try:  # "local" is Ray's own word for a new instance on this machine
        with warnings.catch_warnings():  # Ray Client's own warning says what the error says
            warnings.simplefilter("ignore")
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CapsightError(
            f"--ray {address}: cannot reach a Ray cluster ({first}); {advice}"
        ) from None
    return True


# How long a cluster's address may take to answer before the batch gives up on it.
ANSWER_TIMEOUT_S = 10.0


def _no_answer(address: str) -> str | None:
    """Why nothing answers at a ``host:port`` or ``ray://host:port`` address (refused, timed
    out, no such host), or None when something does or the address is no host and port ("auto",
    "local"). Ray itself retried a refused port for minutes before failing."""
    import socket

    where = address.removeprefix("ray://")
    host, colon, port = where.rpartition(":")
    if not colon or not (port.isascii() and port.isdigit()) or not host:  # (not "²")
        return None
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 address in brackets
    if int(port) > 65535:
        return f"{port} is no port number: they go from 0 to 65535"
    if _through_proxy(host):  # the proxy answers for the cluster: only Ray can tell
        return None
    try:
        socket.create_connection((host, int(port)), timeout=ANSWER_TIMEOUT_S).close()
    except TimeoutError:
        return f"nothing answered at {where} within {ANSWER_TIMEOUT_S:g} s"
    except ConnectionRefusedError:
        return f"nothing listens at {where}: connection refused"
    except OSError as exc:  # no such host, no route
        return f"cannot connect to {where}: {getattr(exc, 'strerror', None) or exc}"
    return None


def _through_proxy(host: str) -> bool:
    """Whether Ray reaches ``host`` through a proxy, where a direct connection failing says
    nothing. Ray tells gRPC to ignore proxies unless ``RAY_grpc_enable_http_proxy`` is set
    (ray._private.ray_constants); then gRPC reads grpc_proxy, https_proxy and http_proxy (lower
    case only), unless no_grpc_proxy or no_proxy names the host."""
    import os
    from urllib.request import proxy_bypass_environment

    env = os.environ
    if env.get("RAY_grpc_enable_http_proxy", "").strip().lower() not in ("1", "true"):
        return False
    if not any(env.get(k) for k in ("grpc_proxy", "https_proxy", "http_proxy")):
        return False
    bypass = {"no": env.get("no_grpc_proxy") or env.get("no_proxy", "")}
    return not (bypass["no"] and proxy_bypass_environment(host, bypass))


def disconnect(started: bool) -> None:
    """Shut down the Ray that ``connect`` started here (one it joined keeps running)."""
    if started:
        import ray

        ray.shutdown()


def run_on_ray(tasks, options: dict, workers: int, started: bool) -> Iterator[VideoOutcome]:
    """The (video, folder) pairs of ``tasks`` on ``workers`` Ray actors (Ray already joined:
    ``connect``), outcomes as they come; Ray is shut down at the end if ``started`` here."""
    import ray
    import ray.data

    try:
        # capsight's own bar counts the videos; Ray Data's bars and INFO lines would interleave.
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        items = [{"video": str(video), "folder": str(folder)} for video, folder in tasks]
        outcomes = ray.data.from_items(items).map_batches(
            VideoAnalyser,
            fn_constructor_kwargs={"options": options},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(items)) or 1),
            num_cpus=CPUS_PER_WORKER,
        )
        for row in outcomes.iter_rows():
            yield pickle.loads(row["outcome"])
    finally:
        disconnect(started)

"""ONNX Runtime sends Microsoft usage events unless told not to: with capsight imported it is.

Its telemetry leaves a device id under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` when
it starts (and then uploads): the tell-tale checked here, in a fresh process with its own home.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

_RUN = textwrap.dedent(
    """
    import sys
    if sys.argv[2] == "capsight":
        import capsight  # noqa: F401  before onnxruntime, as every capsight path imports it
    import numpy as np
    import onnxruntime
    session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    print(session.run(None, {"x": np.ones((1, 2), np.float32)})[0].tolist())
    """
)


def _identity_graph(path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.mark.parametrize("first", ["capsight", "onnxruntime"])
def test_onnx_runtime_leaves_no_device_id_once_capsight_is_imported(first, tmp_path):
    graph = tmp_path / "identity.onnx"
    _identity_graph(graph)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORT_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    done = subprocess.run([sys.executable, "-c", _RUN, str(graph), first], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[[1.0, 1.0]]"
    device_id = home / ".cache" / "Microsoft"
    if first == "capsight":
        assert not device_id.exists()
    elif not device_id.exists():  # this onnxruntime build has no telemetry: nothing to show
        pytest.skip("this ONNX Runtime writes no device id even without capsight")

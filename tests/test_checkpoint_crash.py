"""A process killed (SIGKILL) in the middle of a large save leaves the previous file intact."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from nnabla_modules import files

SAVING_CHILD = textwrap.dedent(
    """
    import sys
    import nnabla_modules as nm

    class Big(nm.Module):  # 64 MB
        def __init__(self):
            self.layers = [nm.Affine(1024, 1024) for _ in range(16)]

    model = Big()
    model.get_parameters()
    print("ready", flush=True)
    sys.stdin.readline()
    model.save_parameters(sys.argv[1])
    print("saved", flush=True)
    """
)


def _temporaries(folder):
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


def _kill_while_writing(path, timeout=60.0):
    """Starts a save in a child and SIGKILLs it once a file in the folder has 1 MB of data.

    Returns False if the child finished first (the machine was too fast to catch it).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen(
        [sys.executable, "-c", SAVING_CHILD, str(path)],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and child.poll() is None:
            sizes = [entry.stat().st_size for entry in os.scandir(path.parent)]
            if max(sizes, default=0) > 1 << 20:  # the temporary (or, saving in place, path)
                child.send_signal(signal.SIGKILL)
                child.wait()
                return True
            time.sleep(0.0005)
        return False
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
        child.stdin.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_during_a_large_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "model.h5"
    previous = {"layers/0/affine/W": np.arange(6, dtype=np.float32).reshape(2, 3)}
    files.write_parameters(path, previous)
    previous_bytes = path.read_bytes()
    for _ in range(3):  # a fast machine may finish the save before the kill
        if _kill_while_writing(path):
            break
        files.write_parameters(path, previous)
        previous_bytes = path.read_bytes()
    else:
        pytest.skip("the save always finished before the kill")
    assert path.read_bytes() == previous_bytes
    loaded = files.read_parameters(path)
    np.testing.assert_array_equal(loaded["layers/0/affine/W"][0], previous["layers/0/affine/W"])
    assert len(_temporaries(tmp_path)) == 1  # the killed save's partial temporary, left aside

"""Run a child process that the file permission bits apply to, even when the tests run as root.

Root bypasses permission bits through the capabilities CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
and CAP_FOWNER. ``setpriv`` drops them from the child's bounding set, so the child, still uid
0 (and so still able to run this interpreter and read the test's files, which root owns), is
refused a write to a file or directory whose bits say so. As another user the bits apply
already, and the command runs unchanged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tether

_CAPS = "-dac_override,-dac_read_search,-fowner"
_SRC = str(Path(tether.__file__).resolve().parents[1])


def obeying_permissions(cmd: list[str]) -> list[str]:
    """``cmd`` wrapped so that permission bits bind it."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail(
            "running as root, and setpriv (util-linux) is missing: it is needed to run a "
            "child that permission bits apply to",
            pytrace=False,
        )
    return [setpriv, f"--bounding-set={_CAPS}", *cmd]


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python child bound by permission bits (stdout, stderr as text); it
    imports this checkout's tether."""
    path = os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        obeying_permissions([sys.executable, "-c", textwrap.dedent(code), *args]),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": path},
    )

"""``import zsas_gui`` makes torch's OpenMP threads sleep at barriers (``OMP_WAIT_POLICY=PASSIVE``,
docs/decisions.md D44) unless the user chose a policy, before any torch import of ours, and child
processes inherit it. Checked in fresh interpreters: libgomp reads the variable once, on load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import sys, os, zsas_gui; "
         "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")


def _probe(extra_env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(PYTHONPATH=str(ROOT), **extra_env)
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_import_sets_a_passive_wait_policy_before_torch_loads():
    assert _probe({}) == "PASSIVE False"


def test_a_policy_the_user_chose_is_kept():
    assert _probe({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE False"

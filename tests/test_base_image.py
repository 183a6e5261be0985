"""scripts/base-image: the image's base is used, pulled, or made from the Debian archive where
no registry answers (a stand-in engine and a stand-in mmdebstrap record what they are asked)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import jobs
import pytest

ROOT = Path(__file__).resolve().parents[1]


def stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.serial
@pytest.mark.parametrize(("have", "pull", "expected"), [
    ("0", "0", ["image inspect debian:trixie-slim"]),
    ("1", "0", ["image inspect debian:trixie-slim", "pull debian:trixie-slim"]),
    ("1", "1", ["image inspect debian:trixie-slim", "pull debian:trixie-slim", "import - debian:trixie-slim rootfs"]),
])  # fmt: skip
def test_the_base_is_made_only_where_it_cannot_be_had(tmp_path, have, pull, expected):
    log = tmp_path / "engine.log"
    stub(tmp_path / "engine", f'case "$1 $2" in\n  "image inspect") echo "$*" >> {log}; exit {have};;\n'
         f'  "pull debian:trixie-slim") echo "$*" >> {log}; exit {pull};;\n  "import -") echo "$* $(cat)" >> {log};;\nesac\n')  # fmt: skip
    stub(tmp_path / "mmdebstrap", 'echo rootfs\n')
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    proc = jobs.run([str(ROOT / "scripts" / "base-image"), str(tmp_path / "engine"), "debian:trixie-slim", "trixie"],
                    timeout=60, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == expected
    assert ("making it from the Debian archive" in proc.stderr) == (expected[-1].startswith("import"))

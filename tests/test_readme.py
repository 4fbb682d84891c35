"""The README's test command is exactly what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL)
    test_cmd = next(b.strip() for b in blocks if "pytest" in b)
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines()
                if ln and not ln.startswith("#") and ln not in ("set -euo pipefail",)
                and not ln.startswith("cd ")]
    assert ci_lines == [test_cmd]

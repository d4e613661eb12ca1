"""CI runs what the README says, and no test changes the machine."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"Run the tests[^\n]*\n\n```bash\n(.*?)```", readme, flags=re.DOTALL)
    assert block is not None, "README lost its test command"
    assert block.group(1).strip() == "bash .ci/run"
    assert (ROOT / ".ci" / "run").is_file()


def test_no_test_installs_system_packages() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("*.py")
        if path.name != "test_ci.py"
        and re.search(r"""["'](apt-get|apt|dnf|yum|brew)["']""", path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], f"tests that run a package manager: {offenders}"

"""`pruner completion bash|zsh|fish`: shell completion written from the argument parser itself,
so a new command or option completes without anyone editing a script. Checked in the shells
themselves where they are installed (bash always is)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pruner.cli import main

COMMANDS = ("run", "daemon", "plan", "apply", "simulate", "check-config", "health", "demo")


def _script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_writes_a_script_naming_every_command(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script(shell, capsys)

    for command in (*COMMANDS, "completion"):
        assert command in script, f"{shell}: {command} missing"
    for option in ("listing", "allow-large-deletions", "ignore-config-change"):
        assert option in script, f"{shell}: --{option} missing"


def test_completion_without_a_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion"]) == 2
    assert main(["completion", "powershell"]) == 2
    assert "argument shell: invalid choice: 'powershell'" in capsys.readouterr().err


def _bash_completions(script: Path, line: str, cwd: Path) -> list[str]:
    """What bash offers for `line` (the cursor at its end), as bash-completion would ask."""
    words = line.split(" ")
    program = f"""
        source {script}
        COMP_WORDS=({" ".join(f"'{word}'" for word in words)})
        COMP_CWORD={len(words) - 1}
        COMP_LINE='{line}'
        COMP_POINT=${{#COMP_LINE}}
        _shtab_pruner pruner '{words[-1]}' '{words[-2]}'
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    result = subprocess.run(
        ["bash", "-c", program], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
    )
    return sorted(result.stdout.split())


def test_bash_completes_commands_options_choices_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "pruner.bash"
    script.write_text(_script("bash", capsys), encoding="utf-8")
    (tmp_path / "saved-listing.json").write_text("[]", encoding="utf-8")

    assert _bash_completions(script, "pruner pl", tmp_path) == ["plan"]
    assert _bash_completions(script, "pruner c", tmp_path) == ["check-config", "completion"]
    assert _bash_completions(script, "pruner plan --format ", tmp_path) == ["html", "json", "table"]
    assert "--listing" in _bash_completions(script, "pruner plan --", tmp_path)
    assert _bash_completions(script, "pruner plan --listing saved", tmp_path) == [
        "saved-listing.json"
    ]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_and_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "pruner.fish"
    script.write_text(_script("fish", capsys), encoding="utf-8")

    def offered(line: str) -> list[str]:
        program = f"source {script}; complete -C '{line}'"
        result = subprocess.run(
            ["fish", "--no-config", "-c", program],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return sorted(line.split("\t")[0] for line in result.stdout.splitlines())

    assert offered("pruner pl") == ["plan"]
    assert offered("pruner plan --format ") == ["html", "json", "table"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_reads_its_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "_pruner"
    script.write_text(_script("zsh", capsys), encoding="utf-8")

    result = subprocess.run(
        ["zsh", "-n", str(script)], capture_output=True, text=True, check=False, timeout=30
    )

    assert result.returncode == 0, result.stderr
    assert script.read_text(encoding="utf-8").startswith("#compdef pruner")


def test_only_the_completion_command_loads_shtab() -> None:
    program = """
import sys
from pruner.cli import main
for argv in (["--version"], ["--help"], ["plan", "--help"], ["health"]):
    main(argv)
assert "shtab" not in sys.modules, "shtab loaded before it was needed"
main(["completion", "bash"])
assert "shtab" in sys.modules
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, timeout=60
    )

    assert result.returncode == 0, result.stderr

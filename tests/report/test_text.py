from __future__ import annotations

from pruner.report.text import WIDTH, wrapped


def test_a_paragraph_wraps_to_the_width_with_a_hanging_indent() -> None:
    lines = wrapped("word " * 60, "  ")

    assert all(len(line) <= WIDTH + 1 and line.endswith("\n") for line in lines)
    assert lines[0].startswith("  word")
    assert not lines[0].startswith("   ")
    assert all(line.startswith("      word") for line in lines[1:])


def test_a_url_longer_than_a_line_stays_whole_and_hyphens_do_not_break() -> None:
    url = "https://hc-ping.example/" + "a-b" * 50

    lines = wrapped(f"ping failed: {url} answered 500", end="")

    assert f"    {url}" in lines  # a line of its own, not cut
    assert "".join(lines).replace(" ", "") == f"pingfailed:{url}answered500"

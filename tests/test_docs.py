"""The reference pages in docs/ stay true to the code: a config key, a reason rule, an exit code or
a metric added without its entry fails here, and so does a relative link that leads nowhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pruner import errors
from pruner.config.schema import ACKNOWLEDGEABLE
from pruner.engine.models import COUNT_RULES, WITHIN_RULES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = (
    "configuration.md",
    "retention.md",
    "reasons.md",
    "plan-json.md",
    "exit-codes.md",
    "operating.md",
    "review.md",
)
# Reason rules the engine and the planner emit besides the keep rules of pruner.models.
OTHER_RULES = (
    "keep_all",
    "protected",
    "min_keep",
    "unmanaged",
    "orphan",
    "skipped",
    "not_selected",
    "max_age",
    "max_total_size",
    "pending",
    "unreviewed",
    "forced",
)
GUARDS = ("locked", "stale", "max_delete_fraction", "max_deletions_per_run", "incomplete")


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def prose(text: str) -> str:
    """Markdown without its fenced code blocks, where brackets are code, not links."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def key_paths(prefix: str, value: object) -> Iterator[str]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from key_paths(f"{prefix}.{key}", item)


def config_keys() -> list[str]:
    """Every key config.example.yaml sets: `api.timeout` ...; policy keys as `match.hostnames`."""
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    keys = {path for key, value in example.items() for path in key_paths(key, value)}
    for policy in example["policies"]:
        keys |= {path for key, value in policy.items() for path in key_paths(key, value)}
    return sorted(keys)


def test_the_index_lists_every_page() -> None:
    index = page("README.md")

    missing = [name for name in PAGES if f"]({name})" not in index]

    assert missing == []


@pytest.mark.parametrize("key", config_keys())
def test_every_config_key_has_its_entry(key: str) -> None:
    assert f"`{key}`" in page("configuration.md"), f"docs/configuration.md lacks `{key}`"


@pytest.mark.parametrize("warning", ACKNOWLEDGEABLE)
def test_every_warning_a_policy_can_acknowledge_has_its_row(warning: str) -> None:
    assert f"| `{warning}` |" in page("configuration.md")


@pytest.mark.parametrize("rule", COUNT_RULES + WITHIN_RULES + OTHER_RULES)
def test_every_reason_rule_has_its_entry(rule: str) -> None:
    assert re.search(rf"`{rule}[`:]", page("reasons.md")), f"docs/reasons.md lacks `{rule}`"


@pytest.mark.parametrize("guard", GUARDS)
def test_every_guard_that_skips_a_group_has_its_reason(guard: str) -> None:
    assert f"`skipped:{guard}`" in page("reasons.md")


def test_reasons_are_documented_in_the_order_the_engine_lists_them() -> None:
    section = page("reasons.md").split("## The order of reasons", 1)[1].split("\n## ", 1)[0]

    positions = [section.index(f"`{rule}`") for rule in COUNT_RULES + WITHIN_RULES]

    assert positions == sorted(positions)


@pytest.mark.parametrize(
    "code", sorted({value for name, value in vars(errors).items() if name.startswith("EXIT_")})
)
def test_every_exit_code_has_its_row(code: int) -> None:
    assert re.search(rf"^\| {code} \|", page("exit-codes.md"), re.M), f"no row for exit {code}"


def metric_names() -> list[str]:
    """The metric names pruner's metrics module registers, read from its source."""
    sources = sorted(ROOT.glob("pruner/**/metrics.py"))
    assert sources, "pruner's metrics module has moved: tell this test where"
    texts = [path.read_text(encoding="utf-8") for path in sources]
    return sorted({name for text in texts for name in re.findall(r'"(pruner_[a-z_]+)"', text)})


@pytest.mark.parametrize("metric", metric_names())
def test_every_metric_has_its_row(metric: str) -> None:
    assert f"| `{metric}` |" in page("operating.md"), f"docs/operating.md lacks {metric}"


def headings_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings (duplicates get -1, -2 ...)."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", prose(text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, number = slug, 0
        while anchor in anchors:
            number += 1
            anchor = f"{slug}-{number}"
        anchors.add(anchor)
    return anchors


def relative_links() -> Iterator[tuple[Path, str]]:
    for source in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = re.sub(r"`[^`\n]*`", "", prose(source.read_text(encoding="utf-8")))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if not re.match(r"[a-z]+:", target):
                yield source, target


@pytest.mark.parametrize(
    ("source", "target"),
    list(relative_links()),
    ids=lambda value: value.name if isinstance(value, Path) else str(value),
)
def test_relative_links_resolve(source: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    linked = (source.parent / path).resolve() if path else source

    assert linked.exists(), f"{source.relative_to(ROOT)}: {target} leads nowhere"
    if anchor and linked.suffix == ".md":
        assert anchor in headings_anchors(linked.read_text(encoding="utf-8")), (
            f"{source.relative_to(ROOT)}: {target}: no such heading"
        )


@pytest.mark.parametrize("name", ["README.md", *PAGES])
def test_pages_stand_on_their_own(name: str) -> None:
    """The pages are the reference: they never send a reader to a document outside the repo."""
    assert not re.search(r"SPEC|§|\.\./shared", page(name))


def _shipped_texts() -> list[Path]:
    code = sorted((ROOT / "pruner").rglob("*.py"))
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "config.example.yaml", *code]


@pytest.mark.parametrize("path", _shipped_texts(), ids=lambda path: str(path.relative_to(ROOT)))
def test_code_and_readme_point_at_docs_never_outside_the_repository(path: Path) -> None:
    """A user who clones the repository has no contract document beside it: comments and the
    README point at docs/ instead."""
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"SPEC ?§|SPEC\.md|\.\./shared", text)

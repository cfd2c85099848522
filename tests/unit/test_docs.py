"""Every exception kind the code can raise is documented, with its owner.

Kinds are collected from the source with ``ast`` (string literals in the kind/owner positions of
the calls that raise them), plus the explicit registries (audit ``KINDS``, the run-level alert
kinds). A new kind without a runbook row fails here, not in front of an operator at 3 a.m.
"""

from __future__ import annotations

import ast
import csv
import re
from collections.abc import Iterator
from pathlib import Path

from magsit.sync.audit.kinds import KINDS as AUDIT_KINDS

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "magsit"
RUNBOOK = ROOT / "docs" / "runbook.md"
FINANCE = ROOT / "docs" / "finance.md"
OWNERS = {"ops", "ecommerce", "finance"}

# call name -> (index of the kind argument, index of the owner argument or a fixed owner)
CALLS: dict[str, tuple[int, int | str]] = {
    "fail": (0, 1),  # ctx.fail(kind, owner, key, message, ...)
    "Problem": (0, 1),  # stock/product plans
    "RecordError": (0, 1),  # order/return plans
    "_fail": (1, "ecommerce"),  # customerplan._fail(email, kind, message): sync-customers fails as ecommerce
    "notify_ops": (2, "ops"),  # alerts.notify_ops(config, job, kind, message): run-level, always ops
}
RECONCILE = PACKAGE / "sync" / "reconcile"


def _strings(node: ast.AST | None) -> set[str]:
    """String constants a kind/owner expression can take (literal, a if c else b, x or "default")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    if isinstance(node, ast.BoolOp):
        return set().union(*(_strings(v) for v in node.values))
    return set()


class _Scope:
    """Values a local name is bound to in one function: `kind = "x"`, `kind, owner = "x", "ops"`,
    `for fld, hint in (("tax", …), …)`."""

    def __init__(self, function: ast.AST) -> None:
        self.values: dict[str, set[str]] = {}
        self.joint: list[dict[str, set[str]]] = []  # names bound together: kind, owner = "x", "ops"
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._bind(target, node.value)
            elif isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple | ast.List):
                for element in node.iter.elts:
                    self._bind(node.target, element)

    def _bind(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.values.setdefault(target.id, set()).update(_strings(value))
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            joint = {}
            for t, v in zip(target.elts, value.elts, strict=True):
                self._bind(t, v)
                if isinstance(t, ast.Name):
                    joint[t.id] = _strings(v)
            self.joint.append(joint)

    def pairs(self, kind: ast.AST | None, owner: ast.AST | None) -> set[tuple[str, str]]:
        """(kind, owner) pairs; names assigned together stay paired (no cross product)."""
        if isinstance(kind, ast.Name) and isinstance(owner, ast.Name):
            together = [j for j in self.joint if kind.id in j and owner.id in j]
            if together:
                return {(k, o) for j in together for k in j[kind.id] for o in j[owner.id]}
        return {(k, o) for k in self.resolve(kind) for o in self.resolve(owner)}

    def resolve(self, node: ast.AST | None) -> set[str]:
        if isinstance(node, ast.Name):
            return set(self.values.get(node.id, set()))
        return _strings(node)


def _functions(tree: ast.AST) -> Iterator[ast.AST]:
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _call_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _arg(call: ast.Call, index: int, name: str) -> ast.AST | None:
    if index < len(call.args):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == name), None)


def raised_kinds() -> dict[str, set[tuple[str, str]]]:
    """kind -> {(owner, "file:line")} for every record-level and run-level kind in the code."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if {"sandbox", "testing"} & set(path.relative_to(PACKAGE).parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(ROOT)
        for function in _functions(tree):
            scope = _Scope(function)
            for node in ast.walk(function):
                if not isinstance(node, ast.Call):
                    continue
                name = _call_name(node)
                if name in CALLS:
                    kind_at, owner_at = CALLS[name]
                    kind_node = _arg(node, kind_at, "kind")
                    if isinstance(owner_at, str):
                        pairs = {(k, owner_at) for k in scope.resolve(kind_node)}
                    else:
                        pairs = scope.pairs(kind_node, _arg(node, owner_at, "owner"))
                elif name == "append" and node.args and isinstance(node.args[0], ast.Tuple):
                    # fulfilment: problems.append((kind, owner, key, message))
                    elts = node.args[0].elts
                    pairs = {(k, o) for k in _strings(elts[0]) for o in _strings(elts[1])} if len(elts) >= 2 else set()
                else:
                    continue
                for kind, owner in pairs:
                    if owner in OWNERS and re.fullmatch(r"[a-z][a-z0-9_]*", kind):
                        found.setdefault(kind, set()).add((owner, f"{where}:{node.lineno}"))
        # Run-level alerts built as dicts: {"kind": "stale_job", ...} (always ops).
        if path.name == "alerts.py":
            for node in ast.walk(tree):
                if isinstance(node, ast.Dict):
                    for key, value in zip(node.keys, node.values, strict=True):
                        if isinstance(key, ast.Constant) and key.value == "kind":
                            for kind in _strings(value):
                                found.setdefault(kind, set()).add(("ops", f"{where}:{node.lineno}"))
    return found


def reconcile_kinds() -> set[str]:
    """Variance kinds: the first argument of ``variance(kind, …)`` in the reconcile flow."""
    kinds: set[str] = set()
    for path in sorted(RECONCILE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in _functions(tree):
            scope = _Scope(function)
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and _call_name(node) == "variance" and node.args:
                    kinds |= scope.resolve(node.args[0])
    return kinds


def _rows(path: Path) -> list[list[str]]:
    """Markdown table rows as cells (a `|` inside backticks does not split)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("|") and not re.fullmatch(r"[|\s:-]+", line):
            rows.append([c.strip() for c in re.split(r"\|(?![^`]*`[^`|]*\|)", line.strip().strip("|"))])
    return rows


def _documented(paths: list[Path]) -> dict[str, set[str]]:
    """kind -> owners of the table rows whose first cell is `kind`."""
    out: dict[str, set[str]] = {}
    for path in paths:
        for cells in _rows(path):
            if match := re.fullmatch(r"`([a-z][a-z0-9_]*)`", cells[0]):
                out.setdefault(match.group(1), set()).update(c for c in cells[1:3] if c in OWNERS)
    return out


def test_the_collector_sees_every_way_kinds_are_raised():
    # If a refactor hides kinds from the parser, fail loudly rather than pass on an empty set.
    kinds = raised_kinds()
    for kind in (
        "unknown_sku",  # ctx.fail literal + RecordError
        "negative_stock",  # Problem
        "sitoo_unavailable",  # kind, owner = "…", "ops"
        "refund_not_invoiced",  # kind = "…" if … else "…"
        "customer_rejected",  # error_kind or "customer_rejected"
        "duplicate_email",  # customerplan._fail
        "unmapped_warehouse",  # problems.append((…))
        "run_failed",  # notify_ops
        "stale_job",  # alert dict
    ):
        assert kind in kinds, kind
    assert {"missing_in_sitoo", "tax", "shipping", "refund_amount", "status_cancelled"} <= reconcile_kinds()


def test_every_raised_kind_is_in_the_runbook_with_its_owner():
    documented = _documented([RUNBOOK])
    problems = []
    for kind, sites in sorted(raised_kinds().items()):
        for owner, where in sorted(sites):
            if owner not in documented.get(kind, set()):
                problems.append(f"{kind} (owner {owner}, raised at {where})")
    assert not problems, (
        "docs/runbook.md has no table row `kind` | owner | … for: " + "; ".join(problems)
    )


def test_every_audit_kind_is_documented_with_its_owner():
    documented = _documented([RUNBOOK, FINANCE])
    missing = [f"{kind} ({owner})" for kind, (owner, _) in AUDIT_KINDS.items() if owner not in documented.get(kind, set())]
    assert not missing, f"document these audit kinds in docs/runbook.md 'audit findings': {missing}"


def test_every_reconcile_variance_kind_is_documented_with_its_owner():
    documented = _documented([FINANCE, RUNBOOK])
    missing = sorted(k for k in reconcile_kinds() if not documented.get(k))
    assert not missing, f"document these reconcile variance kinds in docs/finance.md (kind | owner | …): {missing}"


def test_no_documented_kind_is_stale():
    # A runbook row for a kind nothing raises any more misleads whoever looks it up.
    known = set(raised_kinds()) | set(AUDIT_KINDS) | reconcile_kinds() | {"run_missed"}
    stale = sorted(set(_documented([RUNBOOK, FINANCE])) - known)
    assert not stale, f"docs name kinds the code no longer raises: {stale}"


def test_readme_lists_every_command_and_links_exist():
    from click.testing import CliRunner

    from magsit.cli import cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = sorted(cli.list_commands(None))  # type: ignore[arg-type]
    assert commands and not [c for c in commands if f"`magsit {c}`" not in readme]
    for code in ("0", "1", "2", "3", "4", "130"):
        assert f"| {code} |" in readme
    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        assert (ROOT / link).exists(), f"README links a missing file: {link}"
    # the first code block is the fresh-machine quickstart: install + demo, then the tests
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "pip install" in first_block and "magsit demo" in first_block and "pytest" in first_block
    # --help of the group lists every command with a summary
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and all(c in result.output for c in commands)


def test_reconcile_csv_is_formula_safe_without_bom(tmp_path):
    # reconcile writes through magsit.tabular: a store name typed as a formula is neutralised, and
    # the files stay plain UTF-8 (no BOM) because finance's scripts read them that way.
    from magsit.sync.reconcile.render import write_csv

    empty = {name: [] for name in ("summary", "stores", "payments", "stock_drift", "late_arrivals", "daily")}
    data = {
        **empty,
        "variances": [{"kind": "tax", "order": "=HYPERLINK(\"x\")", "difference": "-11.61"}],
        "period": {"from": "2026-10-01"},
        "tolerance": "0.01",
        "matched_web_orders": 1,
        "variance_count": 1,
        "notes": [],
    }
    write_csv(data, tmp_path)
    raw = (tmp_path / "variances.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    row = next(csv.DictReader(raw.decode("utf-8").splitlines()))
    assert (row["kind"], row["order"], row["difference"]) == ("tax", "'=HYPERLINK(\"x\")", "-11.61")

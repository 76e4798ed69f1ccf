"""The history of a model family: its audited versions on one frozen set and its descendants.

Pure: stored records in (``audits.history_records``), a table out. Nothing is recomputed; the
metric, its interval and each release-gate verdict are the stored ones.

- **The set.** Runs on a corrected child set (``dataset.lineage.parent_fingerprint``) belong to
  the history of the set they descend from; the root is "v1", its children "v2"… When the
  family was audited on several unrelated sets, the one with most runs is shown (ties: the most
  recently audited) and a note names the others, unless ``set_prefix`` picks one.
- **One row per version and set**: the newest run of it, with the number of runs it had.
- **Order**: by semantic version (``packaging.version.Version``: 1.10.0 after 1.9.0, 1.0.0rc1
  before 1.0.0), then set, then time; when a version string is not a version, by audit time,
  and a note says so. ``order="time"`` asks for time order.
- **Gate**: between consecutive rows, the newest stored comparison of exactly those runs (or
  other runs of the same two versions on the same sets), else "not compared" with the
  command that runs it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import msgspec
from packaging.version import InvalidVersion, Version

from audits.errors import AuditError
from audits.history_records import AuditEntry, ComparisonEntry, Lineage

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "ece")
Order = Literal["version", "time"]
#: The metric whose interval the audit stores (Wilson 95%, ``metrics.accuracy_ci_*``).
INTERVAL_METRICS = {"accuracy": ("accuracy_ci_low", "accuracy_ci_high")}
REASON_CHARS = 140


@dataclass(frozen=True)
class Gate:
    """The release gate between a row and the row before it."""

    verdict: str | None  # promote | hold | None: not compared
    reason: str
    comparison_id: str | None = None
    command: str | None = None  # how to run the comparison when none is stored


@dataclass(frozen=True)
class HistoryRow:
    version: str
    run_id: str
    path: str
    set_label: str  # v1, v2…
    fingerprint: str
    created: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n_images: int
    n_runs: int  # runs of this version on this set (re-runs); the newest is shown
    lineage: Lineage | None
    recall: dict[str, float | None]
    gate: Gate | None  # from the row before; None for the first row


@dataclass(frozen=True)
class SetInfo:
    fingerprint: str  # the root set of a lineage tree
    n_runs: int
    newest: str


@dataclass
class History:
    family: str
    metric: str
    order: Order
    rows: list[HistoryRow]
    root: SetInfo
    other_sets: list[SetInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        """Every class in the rows, in the newest row's order, then any others by first sight."""
        names: dict[str, None] = {}
        for row in reversed(self.rows):
            names.update(dict.fromkeys(row.recall))
        return list(names)


def _parents(audits: Iterable[AuditEntry]) -> dict[str, str]:
    """Child fingerprint → parent fingerprint, from every audit's lineage in the store."""
    parents: dict[str, str] = {}
    for a in audits:
        lin = a.dataset.lineage
        if (
            lin is not None
            and lin.parent_fingerprint
            and lin.parent_fingerprint != a.dataset.fingerprint
        ):
            parents.setdefault(a.dataset.fingerprint, lin.parent_fingerprint)
    return parents


def _chain(fp: str, parents: dict[str, str]) -> list[str]:
    """``fp`` and its ancestors, nearest first (a cycle in damaged records stops the walk)."""
    chain = [fp]
    while chain[-1] in parents and parents[chain[-1]] not in chain:
        chain.append(parents[chain[-1]])
    return chain


def known_families(audits: Iterable[AuditEntry]) -> list[str]:
    return sorted({a.model.name for a in audits})


def _pick_root(
    family: list[AuditEntry], parents: dict[str, str], set_prefix: str | None
) -> tuple[SetInfo, list[SetInfo]]:
    by_root: dict[str, list[AuditEntry]] = defaultdict(list)
    for a in family:
        by_root[_chain(a.dataset.fingerprint, parents)[-1]].append(a)
    sets = sorted(
        (SetInfo(fp, len(rs), max(r.created for r in rs)) for fp, rs in by_root.items()),
        key=lambda s: (s.n_runs, s.newest),
        reverse=True,
    )
    if set_prefix:
        wanted = {
            _chain(a.dataset.fingerprint, parents)[-1]
            for a in family
            if a.dataset.fingerprint.startswith(set_prefix)
        }
        if len(wanted) != 1:
            listed = ", ".join(f"{s.fingerprint[:12]} ({s.n_runs} runs)" for s in sets)
            what = "matches no set" if not wanted else "matches several sets; give more characters"
            raise AuditError(f"--set {set_prefix}: {what}; the family's sets: {listed}")
        root = next(s for s in sets if s.fingerprint in wanted)
    else:
        root = sets[0]
    return root, [s for s in sets if s is not root]


def _semantic(rows: Sequence[tuple[AuditEntry, int]]) -> tuple[bool, list[str]]:
    """Whether every version parses as a version, and the ones that do not."""
    bad = []
    for a, _ in rows:
        try:
            Version(a.model.version)
        except InvalidVersion:
            bad.append(a.model.version)
    return not bad, sorted(set(bad))


def _ordered(
    newest: list[tuple[AuditEntry, int]], depth: dict[str, int], order: Order
) -> tuple[list[tuple[AuditEntry, int]], Order, str | None]:
    """The rows by semantic version (then set depth, then time) or by time; the order used and
    a note when version order fell back to time because a version string is not a version."""
    if order == "version":
        ok, bad = _semantic(newest)
        if ok:
            by_version = sorted(
                newest,
                key=lambda p: (
                    Version(p[0].model.version),
                    depth[p[0].dataset.fingerprint],
                    p[0].created,
                ),
            )
            return by_version, order, None
        shown = ", ".join(repr(v) for v in bad[:5]) + (" …" if len(bad) > 5 else "")
        note = f"ordered by audit time: not semantic versions: {shown}"
    else:
        note = None
    return sorted(newest, key=lambda p: (p[0].created, p[0].run_id)), "time", note


def _metric(a: AuditEntry, metric: str) -> tuple[float | None, float | None, float | None]:
    m = a.metrics
    value = getattr(m, metric)
    low_high = INTERVAL_METRICS.get(metric)
    if low_high is None:
        return value, None, None
    return value, getattr(m, low_high[0]), getattr(m, low_high[1])


def _short(text: str) -> str:
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def gate_reason(c: ComparisonEntry) -> str:
    """A hold: its first failed check (and how many more); a promote: its first check."""
    failed = [ch.text for ch in c.checks if ch.ok is False]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return _short(failed[0]) + more
    return _short(c.checks[0].text) if c.checks else c.verdict


def compare_command(a: HistoryRow, b: HistoryRow, store: str) -> str:
    across = " --across-corrections" if a.fingerprint != b.fingerprint else ""
    return f"python -m audits compare {a.run_id} {b.run_id} --store {store}{across}"


def _gate(
    a: HistoryRow,
    b: HistoryRow,
    groups: dict[tuple[str, str], list[AuditEntry]],
    by_pair: dict[tuple[str, str], list[ComparisonEntry]],
    by_versions: dict[tuple[str, str], list[ComparisonEntry]],
    store: str,
) -> Gate:
    """The newest stored comparison of a → b: the shown runs first, then any re-runs of them."""
    found = by_pair.get((a.run_id, b.run_id))
    if not found:
        ids_a = {r.run_id for r in groups[(a.version, a.fingerprint)]}
        ids_b = {r.run_id for r in groups[(b.version, b.fingerprint)]}
        found = [
            c
            for c in by_versions.get((a.version, b.version), [])
            if c.run_a.run_id in ids_a and c.run_b.run_id in ids_b
        ]
    if found:
        c = max(found, key=lambda c: (c.created, c.run_id))
        return Gate(c.verdict, gate_reason(c), comparison_id=c.run_id)
    return Gate(None, "not compared", command=compare_command(a, b, store))


def build_history(
    audits: Sequence[AuditEntry],
    comparisons: Sequence[ComparisonEntry],
    family: str,
    metric: str = "accuracy",
    set_prefix: str | None = None,
    order: Order = "version",
    store: str = "audit-store",
) -> History:
    """The history of ``family`` from the store's audit and comparison records."""
    if metric not in METRICS:
        raise AuditError(f"--metric {metric}: choose one of {', '.join(METRICS)}")
    mine = [a for a in audits if a.model.name == family]
    if not mine:
        known = ", ".join(known_families(audits)) or "none (the store has no audit runs)"
        raise AuditError(
            f"no audit runs of model family {family!r} in {store}; known families: {known}"
        )
    parents = _parents(audits)
    root, others = _pick_root(mine, parents, set_prefix)
    notes = []
    if others and not set_prefix:
        listed = ", ".join(f"{s.fingerprint[:12]} ({s.n_runs} runs)" for s in others)
        notes.append(
            f"{family} was audited on {len(others) + 1} unrelated held-out sets; showing "
            f"{root.fingerprint[:12]} ({root.n_runs} runs, the most); also: {listed} (pick one with --set)"
        )
    depth: dict[str, int] = {}
    groups: dict[tuple[str, str], list[AuditEntry]] = defaultdict(list)
    for a in mine:
        chain = _chain(a.dataset.fingerprint, parents)
        if chain[-1] == root.fingerprint:
            depth[a.dataset.fingerprint] = len(chain) - 1
            groups[(a.model.version, a.dataset.fingerprint)].append(a)
    newest = [(max(rs, key=lambda r: (r.created, r.run_id)), len(rs)) for rs in groups.values()]
    newest, order, note = _ordered(newest, depth, order)
    notes += [note] if note else []
    if metric not in INTERVAL_METRICS:
        notes.append(
            f"{metric} has no stored interval (audits store Wilson intervals for accuracy)"
        )
    by_pair: dict[tuple[str, str], list[ComparisonEntry]] = defaultdict(list)
    by_versions: dict[tuple[str, str], list[ComparisonEntry]] = defaultdict(list)
    for c in comparisons:
        by_pair[(c.run_a.run_id, c.run_b.run_id)].append(c)
        by_versions[(c.run_a.model.version or "", c.run_b.model.version or "")].append(c)
    rows: list[HistoryRow] = []
    for a, n_runs in newest:
        value, low, high = _metric(a, metric)
        row = HistoryRow(
            version=a.model.version,
            run_id=a.run_id,
            path=a.path,
            set_label=f"v{depth[a.dataset.fingerprint] + 1}",
            fingerprint=a.dataset.fingerprint,
            created=a.created,
            value=value,
            ci_low=low,
            ci_high=high,
            n_images=a.dataset.n_images,
            n_runs=n_runs,
            lineage=a.dataset.lineage,
            recall={c.class_: c.recall for c in a.metrics.per_class},
            gate=None,
        )
        if rows:
            row = replace(row, gate=_gate(rows[-1], row, groups, by_pair, by_versions, store))
        rows.append(row)
    return History(family, metric, order, rows, root, others, notes)


def recall_matrix(history: History) -> tuple[list[str], list[list[float | None]]]:
    """(classes, recall[class][row]) for the heatmap: classes × versions."""
    classes = history.classes
    return classes, [[row.recall.get(c) for row in history.rows] for c in classes]


def payload(history: History, store: str, per_class: bool = True) -> dict[str, Any]:
    """``history --json``: the rows with their metric, interval and gate, and the notes."""
    out: dict[str, Any] = {
        "family": history.family,
        "store": store,
        "metric": history.metric,
        "order": history.order,
        "set": {"fingerprint": history.root.fingerprint, "n_runs": history.root.n_runs},
        "other_sets": [
            {"fingerprint": s.fingerprint, "n_runs": s.n_runs} for s in history.other_sets
        ],
        "notes": history.notes,
        "rows": [_row_payload(r) for r in history.rows],
    }
    if per_class:
        classes, matrix = recall_matrix(history)
        out["classes"] = classes
        out["recall"] = matrix  # recall[class][row], rows in "rows" order
    return out


def _row_payload(r: HistoryRow) -> dict[str, Any]:
    lineage = None if r.lineage is None else msgspec.structs.asdict(r.lineage)
    gate = None if r.gate is None else asdict(r.gate)
    return {
        "version": r.version,
        "run_id": r.run_id,
        "path": r.path,
        "set": r.set_label,
        "fingerprint": r.fingerprint,
        "created": r.created,
        "value": r.value,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "n_images": r.n_images,
        "n_runs": r.n_runs,
        "lineage": lineage,
        "gate": gate,
    }


def newest_comparison(
    comparisons: Iterable[ComparisonEntry], b_id: str, a_id: str | None = None
) -> ComparisonEntry | None:
    """The newest stored comparison with candidate ``b_id`` (and baseline ``a_id`` if given);
    without ``a_id`` it is the one the Compare page shows for ``b_id``."""
    found = [
        c
        for c in comparisons
        if c.run_b.run_id == b_id and (a_id is None or c.run_a.run_id == a_id)
    ]
    return max(found, key=lambda c: (c.created, c.run_id), default=None)

"""``review``: walk an audit's review queue and append expert decisions beside the frozen set.

``--list`` (or ``--json``) prints the queue. Otherwise, on a terminal, one image per prompt:
k keep, r relabel (the class with prefix completion), x exclude, s skip, q quit; text after
the key is the reason. Each decision is appended at once to the corrections file beside the
held-out set (``<manifest stem>.corrections.csv``), never to the frozen manifest. ``--answers
FILE`` reads the keys from a file (one per line) instead of the terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditapp.commands.options import default_store, positive_int
from auditapp.json_output import set_result, wants_json
from audits.errors import AuditError

if TYPE_CHECKING:
    import pandas as pd

KEYS = "[k]eep  [r]elabel  e[x]clude  [s]kip  [q]uit  (a reason may follow the key)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review",
        help="review suspect labels, confusions or failure patterns; append expert decisions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="audit run folder, run id in --store, or name@version")
    p.add_argument(
        "--queue",
        nargs="+",
        default=["suspects"],
        metavar="KIND",
        help="suspects | least-confident | pair TRUE:PRED | pattern N (default: suspects)",
    )
    p.add_argument("--reviewer", default="", help="your name, written with each decision")
    p.add_argument("--limit", type=positive_int, default=None, help="at most N images")
    p.add_argument("--list", action="store_true", help="print the queue and stop")
    p.add_argument(
        "--show-decided",
        action="store_true",
        help="include images that already have a decision in force (hidden by default)",
    )
    p.add_argument(
        "--answers",
        type=Path,
        default=None,
        metavar="FILE",
        help="read the keys from FILE (one per line, e.g. 'r carrera', 'x blurred') "
        "instead of the terminal",
    )
    p.add_argument(
        "--store",
        default=None,
        metavar="DIR",
        help="audit store for run ids and the other versions (default: the run's own store)",
    )
    p.set_defaults(handler=main)


def plain(text: Any) -> str:
    """A data string made safe for a terminal: control characters shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _spec(tokens: list[str]):
    from audits.review_queue import QUEUE_KINDS, parse_queue

    if len(tokens) > 2 or tokens[0] not in QUEUE_KINDS[:-1]:
        raise AuditError(
            "--queue must be suspects, least-confident, pair TRUE:PRED or pattern N, got "
            f"{' '.join(tokens)!r}"
        )
    return parse_queue(tokens[0], tokens[1] if len(tokens) > 1 else None)


def complete_class(text: str, classes: list[str]) -> list[str]:
    """The classes ``text`` names: an exact match, else those it is a prefix of (any case)."""
    text = text.strip()
    if text in classes:
        return [text]
    low = text.lower()
    return [c for c in classes if c.lower().startswith(low)] if low else []


def _readline_completion(classes: list[str]) -> None:
    try:
        import readline
    except ImportError:  # not on every platform; typing the whole name still works
        return

    def complete(text: str, state: int) -> str | None:
        found = complete_class(text, classes)
        return found[state] if state < len(found) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")


def describe(item: dict[str, Any], index: int, total: int, root: Path | None) -> list[str]:
    """The lines shown for one image: path, where to open it, label, prediction, top-5."""
    opened = f"  open: {plain(root / item['path'])}" if root is not None else ""
    top5 = ", ".join(f"{plain(c)} {p:.1%}" for c, p in item["top5"])
    lines = [
        f"[{index + 1}/{total}] {plain(item['path'])}",
        *([opened] if opened else []),
        f"  label {plain(item['label'])} · predicted {plain(item['pred'])} "
        f"({item['confidence']:.1%}) · p(label) {item['p_label']:.1%}",
        f"  top-5: {top5}",
        f"  why: {plain(item['why'])}",
    ]
    if item["versions"]:
        others = ", ".join(f"{plain(v)} → {plain(p)}" for v, p in item["versions"].items())
        lines.append(f"  other versions: {others}")
    return lines


def review_loop(
    queue: pd.DataFrame,
    ask: Callable[[str], str],
    say: Callable[[str], None],
    classes: list[str],
    reviewer: str,
    file: Path,
    root: Path | None = None,
) -> dict[str, int]:
    """Ask for a decision on each image; append each one at once. Counts by decision."""
    from audits.corrections import append_decisions
    from audits.review_queue import decision

    counts = {"keep": 0, "relabel": 0, "exclude": 0, "skip": 0}
    items = queue.to_dict("records")
    for i, item in enumerate(items):
        for line in describe(item, i, len(items), root):
            say(line)
        while True:
            answer = ask(f"{KEYS}\n> ").strip()
            key, _, rest = answer.partition(" ")
            key = key.lower()
            if key == "q":
                return counts
            if key == "s" or key == "":
                counts["skip"] += 1
                break
            if key in ("k", "x"):
                verdict = "keep" if key == "k" else "exclude"
                append_decisions(file, [decision(item, verdict, reviewer, reason=rest)])
                counts[verdict] += 1
                break
            if key == "r":
                name, _, reason = rest.partition(" ")
                new = _ask_class(name, ask, say, classes)
                if new is None:
                    continue
                d = decision(item, "relabel", reviewer, new_label=new, reason=reason)
                append_decisions(file, [d])
                counts[d.decision] += 1
                break
            say(f"  unknown key {plain(key)!r}; {KEYS}")
    return counts


def _ask_class(
    typed: str, ask: Callable[[str], str], say: Callable[[str], None], classes: list[str]
) -> str | None:
    """The new class: a unique prefix is enough; an empty answer goes back to the keys."""
    for _ in range(5):
        if not typed:
            typed = ask("  new class (Tab completes; empty to go back): ").strip()
            if not typed:
                return None
        found = complete_class(typed, classes)
        if len(found) == 1:
            return found[0]
        if found:
            say(f"  {plain(typed)!r} could be: {', '.join(found)}")
        else:
            say(f"  {plain(typed)!r} is not a class; classes: {', '.join(classes)}")
        typed = ""
    return None


def _answers(file: Path) -> Iterator[str]:
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AuditError(f"{file}: cannot read the answers file ({exc.strerror})") from None
    yield from lines
    while True:  # the file ran out: stop reviewing
        yield "q"


def main(args: argparse.Namespace) -> int:
    from audits.compare import resolve_run
    from audits.review_queue import (
        corrections_for,
        decided_mask,
        decisions_in_force,
        queue_for_run,
        run_classes,
    )

    spec = _spec(args.queue)
    interactive = not (args.list or wants_json(args))
    if interactive and args.answers is None and not sys.stdin.isatty():
        raise AuditError(
            "review asks one question per image and needs a terminal; use --list (or --json) "
            "to print the queue, or --answers FILE to read the keys from a file"
        )
    run = resolve_run(args.run, args.store or default_store())
    audit = run.audit
    file = corrections_for(audit.dataset)
    queue = queue_for_run(run, spec, args.store)
    decided = decided_mask(queue, decisions_in_force(file))
    n_hidden = 0 if args.show_decided else int(decided.sum())
    if not args.show_decided:
        queue = queue[~decided].reset_index(drop=True)
    if args.limit is not None:
        queue = queue.head(args.limit)
    if not interactive:
        return _list(args, run, spec, queue, file, n_hidden)
    reviewer = args.reviewer.strip()
    ask: Callable[[str], str]
    if args.answers is not None:
        if not reviewer:
            raise AuditError("--answers needs --reviewer NAME (written with each decision)")
        feed = _answers(args.answers)

        def ask(prompt: str) -> str:
            answer = next(feed)
            print(prompt + answer)
            return answer
    else:
        _readline_completion(run_classes(audit))
        ask = input
        while not reviewer:
            reviewer = input("reviewer name (written with each decision): ").strip()
    print(
        f"{len(queue)} image(s) in {spec.title} ({n_hidden} already decided, hidden); "
        f"decisions go to {file} (append-only: a later decision supersedes an earlier one)"
    )
    try:
        counts = review_loop(queue, ask, print, run_classes(audit), reviewer, file, file.parent)
    except EOFError:  # Ctrl-D: what was decided is already in the file
        counts = None
    if counts is not None:
        print(
            f"kept {counts['keep']}, relabelled {counts['relabel']}, excluded {counts['exclude']}, "
            f"skipped {counts['skip']}"
        )
    print(file)
    return 0


def _list(args, run, spec, queue, file, n_hidden) -> int:
    items = [
        {k: v for k, v in item.items() if k != "top5"}
        | {"top5": [{"class": c, "p": p} for c, p in item["top5"]]}
        for item in queue.to_dict("records")
    ]
    if wants_json(args):
        set_result(
            args,
            {
                "run_id": run.run_id,
                "queue": spec.title,
                "corrections": str(file),
                "n": len(items),
                "n_decided_hidden": n_hidden,
                "items": items,
            },
        )
        return 0
    print(f"{len(items)} image(s) in {spec.title}; {n_hidden} already decided (hidden)")
    for item in items:
        top = item["top5"][0] if item["top5"] else {"class": "", "p": float("nan")}
        print(
            f"{item['row']:>6}  {plain(item['path'])}  {plain(item['label'])} → "
            f"{plain(item['pred'])} ({item['confidence']:.1%})  top-1 {plain(top['class'])}"
        )
    print(file)
    return 0

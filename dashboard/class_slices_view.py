"""The class x slice cross-tab (integrity.json's ``class_slices``) and the root-cause callout.

Both only show what ``audits/class_slices.py`` stored: the Overview's callout (what fails, why,
what to do: the same lines as the PDF's page one, from ``reports.present.findings``) and, on
the Integrity page, one row per class x column with the value of the largest recall gap.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from audits.runs import IntegrityRecord, StoredRun
from audits.runs.models_integrity import ClassSlices
from dashboard.components import esc
from reports.present import findings, fmt


def root_cause_callout(run: StoredRun) -> None:
    """One callout: what fails, why and what to do, when the run stores a root cause."""
    if findings.root_cause(run) is None:
        return
    lines = findings.finding_lines(run)
    body = "".join(
        f"<p><b>{esc(head.strip())}</b> {esc(line[len(head) :])}</p>"
        for line in lines
        for head in [next(h for h in _HEADS if line.startswith(h))]
    )
    st.markdown(
        f'<div class="ma-rootcause" style="border-left:4px solid #c0392b;padding:.4rem .9rem;'
        f'margin:.5rem 0 1rem 0;background:rgba(192,57,43,.06)">{body}</div>',
        unsafe_allow_html=True,
    )


_HEADS = (findings.WHAT_FAILS, findings.WHY, findings.WHERE, findings.WHAT_TO_DO)


def cross_tab_rows(block: ClassSlices) -> pd.DataFrame:
    """The stored rows as a table: recall inside and outside the value, with intervals."""
    return pd.DataFrame(
        [
            {
                "class": r.class_,
                "column": r.column,
                "value (largest gap)": str(r.value),
                "recall within": f"{fmt.pct(r.recall)} ({fmt.ci(r.ci_low, r.ci_high)})",
                "n within": r.support,
                "recall on the rest": (
                    f"{fmt.pct(r.rest_recall)} ({fmt.ci(r.rest_ci_low, r.rest_ci_high)})"
                ),
                "n rest": r.rest_support,
                "gap": fmt.pts(r.gap),
                "adj. p": fmt.p_value(r.p_adj),
                "significant": "yes" if r.significant else "no",
            }
            for r in block.rows
        ]
    )


def cross_tab(report: IntegrityRecord) -> None:
    """The Integrity page's class x slice table, or why there is none."""
    block = getattr(report, "class_slices", None)
    st.markdown("#### Recall of each class within each metadata value")
    if not isinstance(block, ClassSlices):
        error = getattr(block, "error", None)
        st.caption(
            f"The class × slice cross-tab failed during the audit: {esc(error)}"
            if error
            else "This run has no class × slice cross-tab (audited before it existed)."
        )
        return
    if block.root_cause is not None:
        st.markdown(f"**Strongest association:** {esc(block.root_cause.sentence)}")
    if not block.rows:
        st.caption(
            f"No class has {fmt.count(block.min_support)} images both within and outside a value."
        )
        return
    st.dataframe(cross_tab_rows(block), hide_index=True, width="stretch", height=320)
    st.caption(
        f"One row per class and column: the value where the class's recall differs most from the "
        f"rest of its images, with Wilson 95% intervals. {esc(block.test)} "
        f"({fmt.count(block.n_tested)} tests; cells need {fmt.count(block.min_support)} images "
        "on each side)."
    )

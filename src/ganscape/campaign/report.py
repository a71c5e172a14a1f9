"""A campaign's report: one page over all its studies.

    report/index.html     the best trial of every cell, then a section per data set x architecture with each
                          of its studies' tables, plots and best samples; every image embedded
    report/summary.md     the same tables in Markdown
    report/<cell>/*.png   each study's plots (the files its own report would write)

Each study's part is ``ganscape.study.report.study_parts``: the same tables and plots as its own report
(score distributions per group, the top 5%, budget curves against trials and against compute).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from ganscape.campaign.engine import CampaignDir, CellDir
from ganscape.study.report import StudyParts, _fmt, _img, best_of, html_table, markdown_table, page_head, study_parts


def best_row(cell: CellDir, parts: StudyParts) -> dict:
    """The best trial of a cell over all its groups: its group, score and parameters (n/a when none finished)."""
    best = best_of([row for rows in parts.groups.values() for row in rows], parts.spec)
    found = best is not None
    params = ", ".join(f"{key[len('param:'):]}={_fmt(value)}" for key, value in sorted(best.items())
                       if key.startswith("param:")) if found else ""
    return {"data": cell.data, "arch": cell.arch, "study": cell.name,
            "metric": parts.spec.objective.metric, "best": best["value"] if found else math.nan,
            "group": best["group"] if found else "n/a", "trial": best["trial"] if found else "n/a",
            "params": params, "trials": parts.counts["complete"]}


def _objective(parts: StudyParts) -> str:
    spec = parts.spec
    return (f"Objective: {spec.objective.reduce} {spec.objective.metric} ({spec.objective.direction}), mean over "
            f"{spec.seeds} seed(s); sampler {spec.sampler}; {parts.counts['complete']} trial(s) complete, "
            f"{parts.counts['pruned']} pruned, {parts.counts['failed']} failed attempt(s).")


def markdown(about: dict, best: list[dict], studies: list[tuple[CellDir, StudyParts]]) -> str:
    text = [f"# {about['name']}\n\n{about['description']}\n\n## Best trial per study\n\n{markdown_table(best)}"]
    for cell, parts in studies:
        text.append(f"\n## {cell.data} x {cell.arch}: {cell.name}\n\n{_objective(parts)}\n\n"
                    f"{markdown_table(parts.table)}" + "".join(f"\n{note}\n" for note in parts.notes)
                    + "".join(f"\n### {title}\n\n{markdown_table(rows)}" for title, rows in parts.tables.items()))
    return "".join(text)


def _study_section(cell: CellDir, parts: StudyParts) -> str:
    figures = "".join(f"<h4>{html.escape(title)}</h4>{_img(png, f'{cell.name}: {title}')}"
                      for title, png in parts.figures.items())
    samples = "".join(f'<figure>{_img(png, f"{cell.name}: {label}")}<figcaption>{html.escape(label)}</figcaption>'
                      f"</figure>" for label, png in parts.samples.items())
    notes = "".join(f"<p>{html.escape(note)}</p>" for note in parts.notes)
    tables = "".join(f"<h4>{html.escape(title)}</h4>{html_table(rows)}" for title, rows in parts.tables.items())
    return (f"<h3>{html.escape(cell.name)}</h3><p>{html.escape(parts.spec.description)}</p>"
            f"<p>{html.escape(_objective(parts))}</p>{html_table(parts.table)}{notes}{tables}{figures}"
            + (f"<h4>Samples of each group's best trial</h4>{samples}" if samples else ""))


def html_page(about: dict, best: list[dict], studies: list[tuple[CellDir, StudyParts]]) -> str:
    sections: dict[tuple[str, str], list[str]] = {}
    for cell, parts in studies:
        sections.setdefault((cell.data, cell.arch), []).append(_study_section(cell, parts))
    body = "".join(f"<h2>{html.escape(data)} x {html.escape(arch)}</h2>{''.join(parts)}"
                   for (data, arch), parts in sections.items())
    return f"""{page_head(f"{about['name']}: campaign report")}
<h1>{html.escape(about['name'])}</h1>
<p>{html.escape(about['description'])}</p>
<h2>Best trial per study</h2>
{html_table(best)}
{body}
</body></html>
"""


def write_report(folder: CampaignDir) -> Path:
    """Write report/ of a campaign folder (see the module docstring); returns the HTML page's path."""
    about, cells = folder.read()
    studies = [(cell, study_parts(cell.study)) for cell in cells]
    best = [best_row(cell, parts) for cell, parts in studies]
    out = folder.path / "report"
    for cell, parts in studies:
        (out / cell.name).mkdir(parents=True, exist_ok=True)
        for title, png in parts.figures.items():
            (out / cell.name / parts.files[title]).write_bytes(png)
    (out / "summary.md").write_text(markdown(about, best, studies))
    page = out / "index.html"
    page.write_text(html_page(about, best, studies))
    return page

"""``ganscape claims``: the papers' claims, checked at the scale this machine allows (``ganscape.claims``).

    ganscape claims run [--only NAME,...] [--device D] [--workers N] [--out DIR] [--page FILE]
    ganscape claims page [--out DIR] [--page FILE]
    ganscape claims list [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = "claims"
DEFAULT_PAGE = "docs/claims.md"


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def cmd_run(args) -> int:
    from ganscape.claims.page import write_page
    from ganscape.claims.runner import run_claims

    run_claims(Path(args.out), _names(args.only), args.device, args.workers,
               on_event=lambda line: print(line, flush=True))
    print(f"wrote {write_page(Path(args.out), Path(args.page))}")
    return 0


def cmd_page(args) -> int:
    from ganscape.claims.page import write_page

    print(f"wrote {write_page(Path(args.out), Path(args.page))}")
    return 0


def cmd_list(args) -> int:
    from ganscape.claims.page import summary
    from ganscape.claims.registry import CLAIMS

    verdicts = summary(Path(args.out))
    for claim in CLAIMS:
        print(f"{claim.name:<26} {claim.paper:<18} {verdicts[claim.name]}")
    return 0


def add_claims_parser(commands: argparse._SubParsersAction) -> None:
    claims = commands.add_parser("claims", help="the papers' claims, checked: run the CPU rows, write docs/claims.md",
                                 description="Each claim of the four papers that a CPU can check is an experiment "
                                             "(a study, resumable); its measurements and the verdict rule make a "
                                             "row of the page.")
    actions = claims.add_subparsers(dest="claims_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run the experiments not yet measured, then write the page")
    run.add_argument("--only", metavar="NAME,...", help="these claims only (ganscape claims list names them)")
    run.add_argument("--device", default="cpu", help="where the experiments train (default: cpu)")
    run.add_argument("--workers", type=int, default=2, help="study workers, one thread each (default: 2)")
    run.set_defaults(func=cmd_run)
    page = actions.add_parser("page", help="write the page from the measurements made so far")
    page.set_defaults(func=cmd_page)
    listing = actions.add_parser("list", help="every claim and its verdict so far")
    listing.set_defaults(func=cmd_list)
    for action in (run, page, listing):
        action.add_argument("--out", default=DEFAULT_OUT, help=f"the claims folder (default: {DEFAULT_OUT})")
    for action in (run, page):
        action.add_argument("--page", default=DEFAULT_PAGE, help=f"the page written (default: {DEFAULT_PAGE})")

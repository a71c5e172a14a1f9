"""``ganscape data download`` and ``data info``: fetch and inspect data sets."""

from __future__ import annotations

import argparse


def cmd_data_download(args) -> int:
    from ganscape.data import DOWNLOADS

    if args.name == "inception":
        from pathlib import Path

        from ganscape.metrics.inception import download_inception_weights

        print(f"FID Inception weights: {download_inception_weights(Path(args.root) if args.root else None)}")
        return 0
    DOWNLOADS[args.name](args.root or "")
    return 0


def cmd_data_info(args) -> int:
    from ganscape.config import load_config
    from ganscape.data import build_dataset
    from ganscape.data.base import FixedImages

    data = build_dataset(load_config(None, [f"data.name={args.name}", *args.overrides]))
    print(repr(data))
    print(f"images: {len(data):,}" if isinstance(data, FixedImages) else "images: generated on the fly")
    print(f"shape: {data.shape}")
    print(f"classes: {data.num_classes}")
    return 0


def add_data_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``data download|info`` on the command's subparsers."""
    from ganscape.data import DOWNLOADS

    data = commands.add_parser("data", help="download and inspect data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = data_commands.add_parser(
        "download", help="fetch a data set's archive (checks its MD5) or the FID Inception weights",
        description="Download a data set's official archive into --root, checking its MD5; or, with 'inception', "
                    "the FID Inception weights into the cache folder (checking their SHA-256), where every "
                    "metric finds them. Apart from these, only the metrics download, once, the Inception weights.")
    download.add_argument("name", choices=[*sorted(DOWNLOADS), "inception"])
    download.add_argument("--root", help="destination folder (default: the data set's default data.root, or the "
                                         "weights cache for inception)")
    download.set_defaults(func=cmd_data_download)
    info = data_commands.add_parser("info", help="build a data set and print its size, shape and classes")
    info.add_argument("name", metavar="NAME")
    info.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.root=DIR")
    info.set_defaults(func=cmd_data_info)

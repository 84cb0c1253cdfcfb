"""``python -m console -c FILE [--operator NAME]``: the dispatcher console on its own (what
``pttbridge console`` runs)."""

from __future__ import annotations

import argparse
import logging
import sys

from config.schema import ConfigError, load_config
from console.app import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m console", description=__doc__)
    parser.add_argument("-c", "--config", required=True, help="TOML configuration with [mqtt], [bridge], [console]")
    parser.add_argument("--operator", help="the dispatcher's name (default: [console] operator, else asked)")
    parser.add_argument("-v", "--verbose", action="count", default=1, help="more detail in {data_dir}/console.log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=max(logging.WARNING - 10 * args.verbose, logging.DEBUG))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.exit(f"configuration error:\n{exc}")
    run(config, args.operator)


if __name__ == "__main__":
    main()

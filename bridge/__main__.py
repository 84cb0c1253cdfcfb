"""``python -m bridge -c FILE``: the bridge on its own (what ``pttbridge bridge -c FILE`` runs)."""

from __future__ import annotations

import argparse
import logging
import sys

from bridge.service import run
from config.schema import ConfigError, load_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bridge", description=__doc__)
    parser.add_argument("-c", "--config", required=True, help="TOML configuration with [mqtt] and [bridge]")
    parser.add_argument("-v", "--verbose", action="count", default=1, help="more log detail (-vv for debug)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=max(logging.WARNING - 10 * args.verbose, logging.DEBUG),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.exit(f"configuration error:\n{exc}")
    run(config)


if __name__ == "__main__":
    main()

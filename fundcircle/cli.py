"""The ``fundcircle`` command line (contract in DESIGN.md). Commands stay thin: parse, call an
operation or a pure function, print. Each command that touches the database builds the app with
``create_app()`` and commits once at the end."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """fundcircle: participatory micro-grants for Fund Circles."""


# --- voting: rules, simulate (fundcircle/voting) -------------------------------------------------

# --- ledger: ledger verify, ledger balance (fundcircle/ledger) ---------------------------------

# --- app: up, db upgrade, demo, tally, export, reconcile ---------------------------------------


if __name__ == "__main__":  # pragma: no cover
    main()

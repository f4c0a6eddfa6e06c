"""Write the schema's SDL to ``schema.graphql`` (``python -m ratel.graphql.export [path]``).

The file is committed so that clients (the Salesforce and Zendesk apps, USSD
gateways) and reviewers see the API's shape; a test fails when it differs
from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ratel.graphql.schema import build_schema

#: Where the SDL lives: the repository root.
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def sdl() -> str:
    """The SDL of the schema, as written to the file."""
    return build_schema().as_str().rstrip() + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else SCHEMA_FILE
    target.write_text(sdl(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

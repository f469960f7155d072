"""Generates the Python models from an OpenAPI document, and the sync resources from the async
ones. Used by clients/generate.sh and by the drift test, so both run the very same generator.

    python scripts/codegen.py OPENAPI_JSON [MODELS_OUT]
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "limitry_selfhosted"

DATAMODEL_ARGS = [
    "--input-file-type", "openapi",
    "--output-model-type", "pydantic_v2.BaseModel",
    "--target-python-version", "3.10",
    # 3.10 is the oldest target the generator knows; without "X | Y" and builtin generics
    # in annotations the models still import on Python 3.9.
    "--no-use-union-operator",
    "--snake-case-field",
    "--allow-population-by-field-name",
    "--use-schema-description",
    "--use-field-description",
    "--use-title-as-name",
    "--field-constraints",
    "--enum-field-as-literal", "all",
    "--use-double-quotes",
    "--disable-timestamp",
    "--formatters", "builtin",
    "--allow-extra-fields",
    "--collapse-root-models",
]


def generate_models(openapi: Path, out: Path) -> None:
    exe = Path(sys.executable).parent / "datamodel-codegen"
    subprocess.run([str(exe), "--input", str(openapi), "--output", str(out), *DATAMODEL_ARGS], check=True)
    text = out.read_text()
    header = (
        "# Generated from clients/openapi.json by clients/generate.sh (datamodel-code-generator).\n"
        "# Do not edit: run clients/generate.sh.\n"
    )
    out.write_text(header + text)


# The async resources are the source; the sync ones are derived line by line, the way
# httpcore keeps its two flavours in step (unasync).
_UNASYNC = [
    (r"\basync def\b", "def"),
    (r"\bawait\s+", ""),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncPager\b", "SyncPager"),
    (r"\bAsyncTransport\b", "SyncTransport"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__anext__\b", "__next__"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\bStopAsyncIteration\b", "StopIteration"),
    (r"\bAsync([A-Z]\w*)\b", r"\1"),  # AsyncLimitry → Limitry, AsyncMetersResource → MetersResource
]


def unasync(source: str) -> str:
    lines = []
    for line in source.splitlines(keepends=True):
        for pattern, replacement in _UNASYNC:
            line = re.sub(pattern, replacement, line)
        lines.append(line)
    text = "".join(lines)
    return text.replace(
        '"""The async resources',
        '"""Generated from _resources_async.py by scripts/codegen.py: do not edit.\n\nThe sync resources',
        1,
    )


def generate_sync(out: Path) -> None:
    out.write_text(unasync((PACKAGE / "_resources_async.py").read_text()))


if __name__ == "__main__":
    openapi = Path(sys.argv[1])
    models_out = Path(sys.argv[2]) if len(sys.argv) > 2 else PACKAGE / "models.py"
    generate_models(openapi, models_out)
    if len(sys.argv) <= 2:
        generate_sync(PACKAGE / "_resources.py")

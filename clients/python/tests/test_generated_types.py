"""The checked-in models are what the generator makes of the document the service serves."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PYTHON_DIR / "scripts"))

import codegen  # noqa: E402


def test_models_match_the_served_openapi_document(server, tmp_path: Path) -> None:
    served = json.load(urllib.request.urlopen(f"{server.url}/v1/openapi.json", timeout=10))
    doc = tmp_path / "openapi.json"
    doc.write_text(json.dumps(served, indent=2, ensure_ascii=False) + "\n")
    out = tmp_path / "models.py"
    codegen.generate_models(doc, out)
    checked_in = (codegen.PACKAGE / "models.py").read_text()
    assert out.read_text() == checked_in, "models.py drifted from /v1/openapi.json: run clients/generate.sh"


def test_sync_resources_match_the_async_source() -> None:
    source = (codegen.PACKAGE / "_resources_async.py").read_text()
    assert codegen.unasync(source) == (codegen.PACKAGE / "_resources.py").read_text(), \
        "_resources.py drifted from _resources_async.py: run clients/generate.sh"

"""What ganlib asks of the machine: TensorFlow's oneDNN CPU kernels (on by `import ganlib` on x86)."""
import json
import os
import subprocess
import sys

import pytest

from ganlib.device import ONEDNN_VARIABLE, is_x86, onednn_hint

PROBE = """
import json, warnings
{first}
from ganlib.device import onednn_enabled
from ganlib.device import warn_without_onednn
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    warn_without_onednn()
print(json.dumps({{"enabled": onednn_enabled(), "variable": __import__("os").environ.get("{var}"),
                  "warnings": [str(w.message) for w in caught]}}))
"""


def probe(first: str, variable=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_VARIABLE}
    if variable is not None:
        env[ONEDNN_VARIABLE] = variable
    code = PROBE.format(first=first, var=ONEDNN_VARIABLE)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_onednn_hint_only_when_off_on_x86_and_not_chosen():
    assert onednn_hint(False, True, None).startswith("TensorFlow runs without its oneDNN")
    assert "TF_ENABLE_ONEDNN_OPTS=1" in onednn_hint(False, True, None)
    assert onednn_hint(False, True, "1")  # asked for but TensorFlow came first: still off
    for chosen in ("0", "false", " OFF "):  # the user turned it off: their choice
        assert onednn_hint(False, True, chosen) == ""
    assert onednn_hint(True, True, None) == ""
    assert onednn_hint(None, True, None) == ""  # TensorFlow does not say
    assert onednn_hint(False, False, None) == ""  # not x86: oneDNN is another story there


@pytest.mark.skipif(not is_x86(), reason="ganlib turns oneDNN on only on x86")
def test_import_ganlib_first_turns_onednn_on_and_respects_the_users_choice():
    on = probe("import ganlib, tensorflow")
    assert on == {"enabled": True, "variable": "1", "warnings": []}
    off = probe("import ganlib, tensorflow", variable="0")
    assert off == {"enabled": False, "variable": "0", "warnings": []}


@pytest.mark.skipif(not is_x86(), reason="ganlib turns oneDNN on only on x86")
def test_tensorflow_imported_first_keeps_its_default_and_says_so_when_that_is_off():
    first = probe("import tensorflow, ganlib")
    # TensorFlow's own default: on for CPUs with AVX512-VNNI/BF16 or AMX, off on others (e.g. AVX2-only).
    assert isinstance(first["enabled"], bool)
    if first["enabled"]:
        assert first["warnings"] == []
    else:
        assert len(first["warnings"]) == 1 and "import ganlib before tensorflow" in first["warnings"][0]


def test_the_device_record_says_whether_onednn_ran():
    from ganlib.device import describe, onednn_enabled

    record = describe()
    assert record["onednn"] == onednn_enabled()
    json.dumps(record)  # goes into summary.json

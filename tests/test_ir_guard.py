"""``qir.ir.check_ir_text`` (the guard before xDSL's parser) on the large dense literals of big
layers: xDSL prints a big constant as one hex string literal (a 10816 x 256 binary dense's
weights: 22 MB), and every ``qir sim``/cocotb bench reads net.mlir through the guard.  Its string
pattern kept a backtracking state per character (about 160 bytes each: 3.5 GB for that literal,
the peak RSS of the whole compile); the unrolled, possessive pattern keeps no state per character or
escape.  Regression: a 16 MB literal and one of 4M escapes under a 1 GB address-space cap, and
the guard's errors kept."""
from __future__ import annotations

import subprocess
import sys

import pytest

from qir.errors import QirError
from qir.ir import check_ir_text

_CAPPED = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from qir.ir import check_ir_text
text = '%0 = qir.const dense<"0x' + '0123456789ABCDEF' * (1 << 20) + '"> : tensor<2097152xi32>\n'
check_ir_text(text)
check_ir_text('%0 = "x"() {s = "' + 'a\\n' * (1 << 22) + '"} : () -> ()\n')  # 4M escapes
print("ok")
"""


def test_large_literal_in_bounded_memory():
    r = subprocess.run([sys.executable, "-c", _CAPPED], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


@pytest.mark.parametrize("text,needle", [('x = "abc\n', "unterminated"), ('x = "a\\q" : i32\n', "unterminated"),
                                         ('x = "' + "a" * 100000, "unterminated")])
def test_guard_errors_kept(text, needle):
    with pytest.raises(QirError, match=needle):
        check_ir_text(text)


def test_escapes_and_comments_pass():
    check_ir_text('// a "quote in a comment\n%0 = "qir.x"() {s = "a\\"b\\n\\\\ \\0A"} : () -> ()\n')

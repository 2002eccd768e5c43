"""``qir-opt``: run qir pass pipelines over textual IR, exactly like mlir-opt / xdsl-opt."""
from __future__ import annotations

import sys

from xdsl.xdsl_opt_main import xDSLOptMain

from xdsl.utils.exceptions import DiagnosticException, ParseError

from qir.errors import QirError


class QirOptMain(xDSLOptMain):
    def register_all_dialects(self):
        super().register_all_dialects()
        from qir.dialect import QIR

        self.ctx.register_dialect("qir", lambda: QIR)

    def output_resulting_program(self, prog) -> str:
        # One trailing newline, as `qir import` writes IR, so qir-opt round trips are byte-identical.
        text = super().output_resulting_program(prog)
        return text.rstrip("\n") + "\n" if text.endswith("\n") else text

    def setup_pipeline(self):
        from qir.flow import parse_pipeline

        parse_pipeline(self.args.passes, "qir-opt -p")  # a bad spec: one QirError line, no traceback
        super().setup_pipeline()

    def register_all_passes(self):
        super().register_all_passes()
        from qir.lowering import get_all_passes

        for name, factory in get_all_passes().items():
            self.register_pass(name, factory)


def main(argv: list[str] | None = None) -> int:
    try:
        QirOptMain(description="qir modular optimizer", args=argv).run()
    except QirError as e:
        print(f"qir-opt: error: {e}", file=sys.stderr)
        return 1
    except (ParseError, DiagnosticException) as e:
        from qir.ir import _first_line

        print(f"qir-opt: error: invalid IR: {_first_line(e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

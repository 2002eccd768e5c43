"""``qir-opt``: run qir pass pipelines over textual IR, exactly like mlir-opt / xdsl-opt."""
from __future__ import annotations

import io
import os
import sys

from xdsl.utils.exceptions import DiagnosticException, ParseError
from xdsl.xdsl_opt_main import xDSLOptMain

from qir.errors import QirError


class _Pending(io.StringIO):
    """The output text, kept after xDSL closes the stream."""

    def close(self) -> None:
        pass


class QirOptMain(xDSLOptMain):
    pending: _Pending | None = None

    def register_all_dialects(self):
        super().register_all_dialects()
        from qir.dialect import QIR

        self.ctx.register_dialect("qir", lambda: QIR)

    def output_resulting_program(self, prog) -> str:
        # One trailing newline, as `qir import` writes IR, so qir-opt round trips are byte-identical.
        text = super().output_resulting_program(prog)
        return text.rstrip("\n") + "\n" if text.endswith("\n") else text

    def get_input_stream(self):
        """The whole input, checked by qir.ir's guards (UTF-8, closed string literals, nesting)
        before xDSL's parser sees it."""
        from qir.ir import check_ir_text, decode_ir

        name = self.get_input_name()
        if self.args.input_file is None:
            data = sys.stdin.buffer.read()
        else:
            try:
                with open(self.args.input_file, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                raise QirError("no such file", where=name) from None
            except OSError as e:
                raise QirError(f"cannot read the IR file: {e.strerror or e}", where=name) from None
        check_ir_text(decode_ir(data, name), name)
        ext = os.path.splitext(self.args.input_file)[1].lstrip(".") if self.args.input_file else "mlir"
        return io.BytesIO(data), ext or "mlir"

    def prepare_output(self):
        """``-o FILE`` is written only after everything succeeded, atomically (``main``): an error
        leaves FILE as it was, so ``qir-opt X.mlir -o X.mlir`` cannot lose X."""
        if self.args.output_file is None:
            return sys.stdout
        self.pending = _Pending()
        return self.pending

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
        tool = QirOptMain(description="qir modular optimizer", args=argv)
        tool.run()
        if tool.pending is not None:
            from qir.safety import atomic_write

            atomic_write(tool.args.output_file, tool.pending.getvalue())
        else:
            sys.stdout.flush()
    except QirError as e:
        print(f"qir-opt: error: {e}", file=sys.stderr)
        return 1
    except (ParseError, DiagnosticException) as e:
        from qir.ir import _first_line

        print(f"qir-opt: error: invalid IR: {_first_line(e)}", file=sys.stderr)
        return 1
    except RecursionError:
        print("qir-opt: error: invalid IR: nested too deeply", file=sys.stderr)
        return 1
    except BrokenPipeError:
        from qir.cli import _broken_pipe

        return _broken_pipe()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Feedback without the hidden tests: their source *and* whatever running them printed.

nbgrader's ``ClearHiddenTests`` removes the ``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS`` lines from the
feedback, but keeps the cell's outputs. A submission can make every executed cell print its own source while it is
autograded (an IPython ``pre_run_cell`` hook printing ``info.raw_cell``, a patched ``print`` or ``sys.stdout``), so
the hidden tests would come back to the student in the outputs of their feedback. :class:`ClearHiddenTestOutputs`
also replaces the outputs of every cell that held hidden tests with one line saying so; the cell's score is still
shown. Outputs of test cells without hidden tests (the public checks) are kept: students need their messages.
The autograded notebooks in ``grading/autograded/`` keep every output for the instructor.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import ClearHiddenTests

NOTE = ("The output of a cell with hidden tests is not shown in feedback (it could repeat the tests); "
        "its score is shown above.\n")


class ClearHiddenTestOutputs(ClearHiddenTests):
    """``ClearHiddenTests`` that also replaces the outputs of cells that held hidden tests by :data:`NOTE`.

    Use it in place of ``ClearHiddenTests`` in ``c.GenerateFeedback.preprocessors`` (``nbgrader_config.py``).
    """

    def _remove_hidden_test_region(self, cell) -> bool:
        removed = super()._remove_hidden_test_region(cell)
        if removed and cell.cell_type == "code":
            cell.outputs = [new_output("stream", name="stdout", text=NOTE)]
        return removed

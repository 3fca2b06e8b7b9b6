"""Running the engine from an algorithm: its progress on the Processing feedback, its errors as
messages for the user."""

from __future__ import annotations

from qgis.core import QgsProcessingException

from ..core.progress import Cancelled, Progress
from ..i18n import tr


def engine_progress(feedback, start: float = 0.0, end: float = 100.0) -> Progress:
    """A core Progress that reports to a QgsProcessingFeedback between ``start`` and ``end``."""

    def report(fraction: float, message: str) -> None:
        feedback.setProgress(start + (end - start) * max(0.0, min(1.0, fraction)))
        if message:
            feedback.setProgressText(message)

    return Progress(report=report, is_cancelled=feedback.isCanceled)


def run_engine(function, *args, **kwargs):
    """Call an engine function, turning its errors into messages for the user."""
    from ..core.problem import ProblemError

    try:
        return function(*args, **kwargs)
    except ProblemError as error:
        raise QgsProcessingException(str(error)) from error
    except Cancelled as error:
        raise QgsProcessingException(tr("Cancelled.")) from error


def check_cancelled(feedback) -> None:
    """Stop the run with the one "Cancelled." message when the user has cancelled it."""
    if feedback.isCanceled():
        raise QgsProcessingException(tr("Cancelled."))

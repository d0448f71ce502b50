"""Study report: fitted laws, figures, runs, budget optimum as one self-contained HTML page."""

from densescale.report.report import make_report

__all__ = ["make_report"]

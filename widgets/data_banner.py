"""A banner saying which data a notebook is using (real or synthetic), so nobody mistakes one for the other."""

from __future__ import annotations

import html

from IPython.display import HTML


def data_banner(description: str) -> HTML:
    """An HTML box with ``description``: amber when it starts with ``SYNTHETIC``, green otherwise.

    Args:
        description: a dataset's ``description`` (e.g. ``ImageDataset.description``).

    Returns:
        An ``IPython.display.HTML`` object; a notebook shows it when it is a cell's last value or passed to
        ``display``.
    """
    synthetic = description.upper().startswith("SYNTHETIC")
    colour, border, title = (
        ("#fff4d6", "#d08c00", "Synthetic data in use") if synthetic else ("#e7f6ea", "#2e8540", "Data in use")
    )
    return HTML(
        f'<div style="background:{colour};border-left:6px solid {border};padding:8px 12px;'
        f'margin:4px 0;color:#222"><b>{title}.</b> {html.escape(description)}</div>'
    )

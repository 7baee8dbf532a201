"""Shared basics any layer may use: ``limits`` (bounded text and values: how much of a value
from data is shown or kept), ``bounds`` (threshold crossings, printed with the bound),
``bounded_yaml`` (YAML loading that refuses alias bombs and oversized documents), ``html``
(escaping, formatting and the style sheet of every page).
"""

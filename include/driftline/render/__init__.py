"""HTML pages built from the store's records, never from live state: ``report`` (one
self-contained report per run), ``history`` (drift, quality and alerts over time) and
``charts`` (their inline SVG). Every value from data is escaped (``driftline.common.html``).
"""

"""The figure kinds every section shares, on matplotlib's object API (no pyplot state, no backend switch).

* :mod:`.curves`: panels of curves against a setting (errors against degree, n, λ, …);
* :mod:`.surfaces`: a loss on a plane as filled contours, and as an interactive plotly surface.

Each takes arrays (never an analysis object), so a section draws from its Measured alone.
"""

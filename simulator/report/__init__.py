"""Reports: results as tables (rich) and JSON, and PNG plots (matplotlib, the ``plots`` extra).
"""

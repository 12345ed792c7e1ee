"""Routing migrations: the phase plan, and its rehearsal in the simulator (safe vs naive order).
"""

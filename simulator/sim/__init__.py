"""Simulation: the model's description (:mod:`.model`), the SimPy engine, streamed statistics,
workloads and the capacity search.
"""

"""Routing: the worker catalog, worker matching queries, generated queue names, routing rules,
queue groups and the concurrency formula (GitLab's rules, implemented once).
"""

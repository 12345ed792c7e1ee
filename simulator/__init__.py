"""sidekiq-fleet: GitLab-style Sidekiq routing, queue groups and concurrency, checked and simulated.

The routing engine (catalog, query, queue names, routing, queue groups, inventory, checks) is the
one implementation used by the CLI, the Ansible filter plugins, the simulator and job migration.
"""

__version__ = "0.1.0"

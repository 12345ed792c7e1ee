"""sidekiq-fleet: GitLab-style Sidekiq routing, queue groups and concurrency, checked and simulated.

Layers, each importing only those before it (``tests/test_layers.py`` enforces it):

* ``errors``, ``inputs``, ``extras``: messages a user can act on, reading input safely;
* ``routing``: catalog, worker matching query, queue names, routing rules, queue groups;
* ``fleet``: the Ansible inventory (ansible-core), the fleet checks, the plan;
* ``sim``: the model's description, the SimPy engine, statistics, workloads, capacity;
* ``migration``: the migration plan and its rehearsal in the simulator;
* ``report``: tables and plots;
* ``cli``: ``fleetsim`` (argparse and output only).

The routing layer is the one implementation used by the CLI, the Ansible filter plugins, the
simulator and job migration.
"""

__version__ = "0.1.0"

"""The fleet: an Ansible inventory read with ansible-core (:mod:`.inventory`, the only module
that imports it), the fleet checks and the plan.
"""

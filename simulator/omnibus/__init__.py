"""GitLab's own nodes (Omnibus mode, ``sidekiq_fleet_flavor: omnibus``).

- :mod:`.known`: which ``gitlab.rb`` settings exist in which GitLab release (the data file
  ``data/omnibus_settings.yml``, generated from omnibus-gitlab by ``scripts/omnibus_settings.py``);
- :mod:`.gitlab_rb`: the settings a node gets from the inventory (data node, external Sidekiq
  node, Rails node) and their Ruby text, the file ``gitlab.rb`` loads with ``from_file``;
- :mod:`.validate`: a rendered file checked without GitLab: ``ruby -c``, the recording harness
  (``roles/gitlab_omnibus/files/record_settings.rb``) and the comparison of what it recorded
  with what the inventory asked and with the settings of the node's GitLab release.
"""

# Loaded by gitlab.rb with from_file: the routing every Rails and Sidekiq node shares.
sidekiq['routing_rules'] = [
  ["resource_boundary!=cpu&urgency=high", "high-urgency"],
  ["feature_category=database,gitaly,global_search&urgency=throttled", "throttled"],
  ["has_external_dependencies=true|feature_category=webhooks", "network-intensive"],
  ["feature_category=importers", nil],   # generated queue names
  ["*", "default"],
]

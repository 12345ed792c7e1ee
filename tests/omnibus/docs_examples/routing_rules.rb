# GitLab docs: administration/sidekiq/processing_specific_job_classes.md, "Detailed example"
# (routing rules, then queue groups matching their queue names).
sidekiq['routing_rules'] = [
  # Route all non-CPU-bound workers that are high urgency to `high-urgency` queue
  ['resource_boundary!=cpu&urgency=high', 'high-urgency'],
  # Route all database, gitaly and global search workers that are throttled to `throttled` queue
  ['feature_category=database,gitaly,global_search&urgency=throttled', 'throttled'],
  # Route all workers having contact with outside world to a `network-intensive` queue
  ['has_external_dependencies=true|feature_category=hooks|tags=network', 'network-intensive'],
  # Wildcard matching, route the rest to `default` queue
  ['*', 'default']
]

sidekiq['queue_groups'] = [
  # Run two high-urgency processes
  'high-urgency',
  'high-urgency',
  # Run one process for throttled, network-intensive
  'throttled,network-intensive',
  # Run one 'catchall' process on the default and mailers queues
  'default,mailers'
]

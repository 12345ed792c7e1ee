# GitLab docs: administration/sidekiq/_index.md, "Configure health checks".
sidekiq['health_checks_enabled'] = true
sidekiq['health_checks_listen_address'] = "localhost"
sidekiq['health_checks_listen_port'] = 8092

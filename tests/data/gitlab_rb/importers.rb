# The import node: a Sidekiq-only node whose processes select the importers' generated queues
# with a worker matching query (GitLab before 17.0: queue_selector).
roles ['sidekiq_role']
external_url "https://git.corp.example"

gitlab_rails['db_host'] = "10.20.1.10"
gitlab_rails['db_port'] = 6432
gitlab_rails['redis_host'] = "10.20.1.20"
gitlab_rails['db_password'] = File.read('/etc/gitlab/secrets/db').strip

sidekiq['listen_address'] = "10.20.2.13"
sidekiq['concurrency'] = 10
sidekiq['queue_selector'] = true
sidekiq['queue_groups'] = ["feature_category=importers&urgency=low,throttled&has_external_dependencies=false"] * 2

from_file '/etc/gitlab/routing.rb'

external_url 'https://gitlab.example.com'

# Gitaly's token and address, as on the Sidekiq node
gitlab_rails['gitaly_token'] = 'abc123secret'

gitlab_rails['repositories_storages'] = {
  'default' => { 'gitaly_address' => 'tcp://10.10.1.30:8075' },
}

## Only the application runs here
roles(['application_role'])
gitaly['enable'] = false
sidekiq['enable'] = false

## PostgreSQL connection details
gitlab_rails['db_adapter'] = 'postgresql'
gitlab_rails['db_encoding'] = 'unicode'
gitlab_rails['db_host'] = '10.10.1.30' # IP/hostname of database server
gitlab_rails['db_password'] = 'postgresql-password-goes-here'

## Redis connection details
gitlab_rails['redis_port'] = '6379'
gitlab_rails['redis_host'] = '10.10.1.30' # IP/hostname of Redis server
gitlab_rails['redis_password'] = 'redis-password-goes-here'

# Exporters on every interface
node_exporter['listen_address'] = '0.0.0.0:9100'
gitlab_workhorse['prometheus_listen_addr'] = '0.0.0.0:9229'
puma['listen'] = '0.0.0.0'
puma['worker_processes'] = 6

# The monitoring node may scrape
gitlab_rails['monitoring_whitelist'] = ['10.10.1.80/32', '127.0.0.0/8']
nginx['status']['options']['allow'] = ['10.10.1.80/32', '127.0.0.0/8']

## Routing rules: the same on every Rails and Sidekiq node
sidekiq['routing_rules'] = [
  ['resource_boundary!=cpu&urgency=high', 'high-urgency'],
  ['feature_category=database,gitaly,global_search&urgency=throttled', 'throttled'],
  ['has_external_dependencies=true|feature_category=hooks|tags=network', 'network-intensive'],
  ['*', 'default']
]

## NFS only:
#user['uid'] = 9000
#user['gid'] = 9000

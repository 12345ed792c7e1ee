# The Sidekiq-only role: https://docs.gitlab.com/omnibus/roles/#sidekiq-roles
roles(["sidekiq_role"])

# External URL (the external load balancer's)
external_url 'https://gitlab.example.com'

## Redis connection details
gitlab_rails['redis_port'] = '6379'
gitlab_rails['redis_host'] = '10.10.1.30' # IP/hostname of Redis server
gitlab_rails['redis_password'] = 'redis-password-goes-here'

# Gitaly authenticates gRPC requests with this token; it must equal Gitaly's own
gitlab_rails['gitaly_token'] = 'abc123secret'

gitlab_rails['repositories_storages'] = {
  'default' => { 'gitaly_address' => 'tcp://10.10.1.30:8075' },
}

## PostgreSQL connection details
gitlab_rails['db_adapter'] = 'postgresql'
gitlab_rails['db_encoding'] = 'unicode'
gitlab_rails['db_host'] = '10.10.1.30' # IP/hostname of database server
gitlab_rails['db_port'] = '5432'
gitlab_rails['db_password'] = 'postgresql-password-goes-here'

## Migrations run on one Rails node only
gitlab_rails['auto_migrate'] = false

# Sidekiq
sidekiq['listen_address'] = "10.10.1.48"

## Exporters listen on every interface
node_exporter['listen_address'] = '0.0.0.0:9100'

## The metrics server and health checks
sidekiq['metrics_enabled'] = true
sidekiq['listen_port'] = 8082
sidekiq['exporter_log_enabled'] = true
sidekiq['health_checks_enabled'] = true
sidekiq['health_checks_listen_address'] = "10.10.1.48"
sidekiq['health_checks_listen_port'] = 8092

## Shared storage: the same UIDs and GIDs on every node
user['uid'] = 9000
user['gid'] = 9000
web_server['uid'] = 9001
web_server['gid'] = 9001
registry['uid'] = 9002
registry['gid'] = 9002

## The container registry runs elsewhere
gitlab_rails['registry_api_url'] = "https://registry.example.com"

## LDAP and its synchronisation worker
gitlab_rails['ldap_enabled'] = true
gitlab_rails['prevent_ldap_sign_in'] = false
gitlab_rails['ldap_servers'] = {
'main' => {
'label' => 'LDAP',
'host' => 'ldap.mydomain.com',
'port' => 389,
'uid' => 'sAMAccountName',
'encryption' => 'simple_tls',
'verify_certificates' => true,
'bind_dn' => '_the_full_dn_of_the_user_you_will_bind_with',
'password' => '_the_password_of_the_bind_user',
'tls_options' => {
   'ca_file' => '',
   'ssl_version' => '',
   'ciphers' => '',
   'cert' => '',
   'key' => ''
},
'timeout' => 10,
'active_directory' => true,
'allow_username_or_email_login' => false,
'block_auto_created_users' => false,
'base' => 'dc=example,dc=com',
'user_filter' => '',
'attributes' => {
   'username' => ['uid', 'userid', 'sAMAccountName'],
   'email' => ['mail', 'email', 'userPrincipalName'],
   'name' => 'cn',
   'first_name' => 'givenName',
   'last_name' => 'sn'
},
'lowercase_usernames' => false,

# Enterprise Edition only
'group_base' => '',
'admin_group' => '',
'external_groups' => [],
'sync_ssh_keys' => false
}
}
gitlab_rails['ldap_sync_worker_cron'] = "0 */12 * * *"

## Object storage (Google Cloud Storage here)
gitlab_rails['object_store']['enabled'] = true
gitlab_rails['object_store']['connection'] = {
  'provider' => 'Google',
  'google_project' => '<gcp-project-name>',
  'google_json_key_location' => '<path-to-gcp-service-account-key>'
}
gitlab_rails['object_store']['objects']['artifacts']['bucket'] = "<gcp-artifacts-bucket-name>"
gitlab_rails['object_store']['objects']['lfs']['bucket'] = "<gcp-lfs-bucket-name>"

## Processes: one per CPU, each on every queue (the reference architectures)
sidekiq['queue_groups'] = ['*'] * 4

## Routing rules ("Processing specific job classes", detailed example)
sidekiq['routing_rules'] = [
  # Non-CPU-bound high-urgency workers to the `high-urgency` queue
  ['resource_boundary!=cpu&urgency=high', 'high-urgency'],
  # Throttled database, Gitaly and global search workers to `throttled`
  ['feature_category=database,gitaly,global_search&urgency=throttled', 'throttled'],
  # Workers that talk to the outside world to `network-intensive`
  ['has_external_dependencies=true|feature_category=hooks|tags=network', 'network-intensive'],
  # The rest to `default`
  ['*', 'default']
]

## Queue groups matching those queues (the same page)
sidekiq['queue_groups'] = [
  # two high-urgency processes
  'high-urgency',
  'high-urgency',
  # one for throttled and network-intensive
  'throttled,network-intensive',
  # one catch-all on default and mailers
  'default,mailers'
]

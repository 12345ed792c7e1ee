## GitLab configuration settings
##! This file is generated during initial installation and **is not** modified
##! during upgrades.
##! Check out the latest version of this file to know about the different
##! settings that can be configured by this file, which may be found at:
##! https://gitlab.com/gitlab-org/omnibus-gitlab/raw/master/files/gitlab-config-template/gitlab.rb.template

## GitLab URL
##! URL on which GitLab will be reachable.
external_url "https://git.corp.example"

## Roles for multi-instance GitLab
##! Options:
##!   redis_sentinel_role redis_master_role redis_replica_role geo_primary_role
##!   geo_secondary_role postgres_role consul_role application_role monitoring_role
# roles ['redis_sentinel_role', 'redis_master_role']
roles %w[sidekiq_role consul_role]

## Legend
##! The following notations at the beginning of each line may be used to
##! differentiate between components of this file and to easily select them using
##! a regex.
##! ## Titles, subtitles etc
##! ##! More information - Description, Docs, Links, Issues etc.
##! Configuration settings have a single # followed by a single space at the
##! beginning; Remove them to enable the setting.

=begin
Local notes of the platform team (a Ruby block comment):
  sidekiq['concurrency'] = 99   <- not a setting, inside the comment
=end

################################################################################
################################################################################
##                Configuration Settings for GitLab CE and EE                 ##
################################################################################
################################################################################

gitlab_rails['time_zone'] = 'Europe/Berlin'
gitlab_rails['gitlab_email_enabled'] = true
gitlab_rails['gitlab_email_from'] = "gitlab@#{node['fqdn']}"      # interpolation: not needed
gitlab_rails['gitlab_email_display_name'] = 'GitLab (corp)'
gitlab_rails['gitlab_email_reply_to'] = 'noreply@corp.example'
gitlab_rails['gitlab_default_theme'] = 2
gitlab_rails['gitlab_default_projects_features_issues'] = true
gitlab_rails['incoming_email_enabled'] = false
gitlab_rails['webhook_timeout'] = 10
gitlab_rails['graphql_timeout'] = 30

### Trusted proxies and the like
gitlab_rails['trusted_proxies'] = ['10.20.0.0/16', '192.168.10.0/24']
gitlab_rails['rack_attack_git_basic_auth'] = {
  'enabled' => true,
  'ip_whitelist' => ["127.0.0.1"],
  'maxretry' => 10, # Limit the number of Git HTTP authentication attempts per IP
  'findtime' => 60, # Reset the auth attempt counter per IP after 60 seconds
  'bantime' => 3600 # Ban an IP for one hour (3600s) after too many auth attempts
}

### Backups
gitlab_rails['manage_backup_path'] = true
gitlab_rails['backup_path'] = "/var/opt/gitlab/backups"
gitlab_rails['backup_archive_permissions'] = 0644
gitlab_rails['backup_keep_time'] = 7 * 24 * 60 * 60      # an expression: not needed
gitlab_rails['backup_upload_connection'] = {
  :provider => 'AWS',
  :region => 'eu-central-1',
  :aws_access_key_id => ENV['BACKUP_AWS_KEY_ID'],
  :aws_secret_access_key => ENV.fetch('BACKUP_AWS_SECRET', ''),
  :use_iam_profile => false,
}
gitlab_rails['backup_upload_remote_directory'] = 'corp-gitlab-backups'
gitlab_rails['env'] = {
  "SSL_CERT_DIR" => "/opt/gitlab/embedded/ssl/certs/",
  "http_proxy" => `cat /etc/corp/proxy 2>/dev/null`.strip,   # backticks: not needed
  'no_proxy' => %w[localhost 127.0.0.1 .corp.example].join(','),
}

### LDAP: one server, its YAML in a heredoc
gitlab_rails['ldap_enabled'] = true
gitlab_rails['ldap_servers'] = YAML.load <<-'EOS' # remember to close this block with 'EOS' below
  main: # 'main' is the GitLab 'provider ID' of this LDAP server
    label: 'Corp LDAP'
    host: 'ldap.corp.example'
    port: 636
    uid: 'sAMAccountName'
    encryption: 'simple_tls' # "start_tls" or "simple_tls" or "plain"
    bind_dn: 'CN=gitlab,OU=Service,DC=corp,DC=example'
    password: "#{not interpolated: single-quoted heredoc}"
    active_directory: true
    base: 'DC=corp,DC=example'
EOS
gitlab_rails['ldap_sync_worker_cron'] = "0 */12 * * *"

### Object storage, consolidated form
gitlab_rails['object_store']['enabled'] = true
gitlab_rails['object_store']['proxy_download'] = false
gitlab_rails['object_store']['connection'] = {
  'provider' => 'AWS',
  'region' => 'eu-central-1',
  'use_iam_profile' => true,
}
gitlab_rails['object_store']['objects']['artifacts']['bucket'] = 'corp-gitlab-artifacts'
gitlab_rails['object_store']['objects']['external_diffs']['bucket'] = 'corp-gitlab-mr-diffs'
gitlab_rails['object_store']['objects']['lfs']['bucket'] = 'corp-gitlab-lfs'
gitlab_rails['object_store']['objects']['uploads']['bucket'] = 'corp-gitlab-uploads'
gitlab_rails['object_store']['objects']['packages']['bucket'] = 'corp-gitlab-packages'
gitlab_rails['object_store']['objects']['dependency_proxy']['bucket'] = 'corp-gitlab-dependency-proxy'
gitlab_rails['object_store']['objects']['terraform_state']['bucket'] = 'corp-gitlab-terraform-state'
gitlab_rails['object_store']['objects']['ci_secure_files']['bucket'] = 'corp-gitlab-ci-secure-files'
gitlab_rails['object_store']['objects']['pages']['bucket'] = 'corp-gitlab-pages'

### Registry (it runs on its own node)
registry_external_url 'https://registry.corp.example'
gitlab_rails['registry_enabled'] = true
gitlab_rails['registry_api_url'] = "https://registry.corp.example"
registry['enable'] = false

################################################################################
## Database and Redis
################################################################################

gitlab_rails['db_adapter'] = "postgresql"
gitlab_rails['db_encoding'] = "unicode"
gitlab_rails['db_collation'] = nil
gitlab_rails['db_database'] = "gitlabhq_production"
gitlab_rails['db_username'] = "gitlab"
gitlab_rails['db_password'] = File.read('/etc/gitlab/secrets/db').strip   # a secret: never read
gitlab_rails['db_host'] = "10.20.1.10"
gitlab_rails['db_port'] = 6432    # PgBouncer
gitlab_rails['db_sslmode'] = 'verify-full'
gitlab_rails['db_sslrootcert'] = '/etc/gitlab/trusted-certs/corp-ca.crt'
gitlab_rails['db_load_balancing'] = { 'hosts' => ['10.20.1.11', '10.20.1.12', '10.20.1.13'] }
gitlab_rails['auto_migrate'] = false

gitlab_rails['redis_host'] = "10.20.1.20"
gitlab_rails['redis_port'] = 6379
gitlab_rails['redis_ssl'] = false
gitlab_rails['redis_password'] = 'placeholder-not-a-real-password'
gitlab_rails['redis_database'] = 0
gitlab_rails['redis_enable_client'] = true

################################################################################
## Gitaly
################################################################################

gitlab_rails['gitaly_token'] = 'placeholder-gitaly-token'
gitlab_rails['repositories_storages'] = {
  "default" => {
    "gitaly_address" => "tls://gitaly1.corp.example:9999",
  },
  "storage2" => {
    "gitaly_address" => "tls://gitaly2.corp.example:9999",
  },
}

################################################################################
## Services this node does not run
################################################################################

gitaly['enable'] = false
postgresql['enable'] = false
redis['enable'] = false
nginx['enable'] = false
puma['enable'] = false
gitlab_workhorse['enable'] = false
prometheus['enable'] = false
alertmanager['enable'] = false
grafana['enable'] = false
gitlab_exporter['enable'] = false
gitlab_kas['enable'] = false
letsencrypt['enable'] = false

## Consul agent for service discovery
consul['enable'] = true
consul['monitoring_service_discovery'] = true
consul['configuration'] = {
  retry_join: %w(10.20.1.31 10.20.1.32 10.20.1.33),
  'encrypt': 'placeholder',
  server: false,
}

node_exporter['listen_address'] = '0.0.0.0:9100'
node_exporter['flags'] = {
  'collector.textfile.directory' => "/var/opt/gitlab/node-exporter/textfile_collector",
}

## Logs
logging['svlogd_size'] = 200 * 1024 * 1024
logging['svlogd_num'] = 30
logging['logrotate_frequency'] = "daily"
logging['udp_log_shipping_host'] = nil

if File.exist?('/etc/gitlab/corp-extra-ca.crt')
  gitlab_rails['env']['SSL_CERT_FILE'] = '/etc/gitlab/corp-extra-ca.crt'
end

[:artifacts, :lfs].each do |kind|
  gitlab_rails["#{kind}_enabled"] = true
end

################################################################################
## Sidekiq
################################################################################

sidekiq['enable'] = true
sidekiq['log_directory'] = "/var/log/gitlab/sidekiq"
sidekiq['log_format'] = "json"
sidekiq['shutdown_timeout'] = 25
sidekiq['interval'] = nil
# sidekiq['concurrency'] = 10     <- commented out: GitLab's default applies
sidekiq['max_concurrency'] = 40
sidekiq['min_concurrency'] = 10
sidekiq['max_concurrency'] = 25   # changed after the capacity review: the later line wins
sidekiq['queue_selector'] = false
sidekiq['negate'] = false

## The metrics server
sidekiq['metrics_enabled'] = true
sidekiq['listen_address'] = "10.20.2.11"
sidekiq['listen_port'] = 8082
sidekiq['exporter_log_enabled'] = false
sidekiq['health_checks_enabled'] = true
sidekiq['health_checks_listen_address'] = "0.0.0.0"
sidekiq['health_checks_listen_port'] = 8092

## Processes: two for high urgency, one for the rest
sidekiq['queue_groups'] = [
  "high-urgency",     # fast jobs
  'high-urgency',
  "throttled,network-intensive",
  # everything routed to generated names, plus the catch-alls
  'default,mailers',
]

## The routing rules live in a file every node loads
from_file "/etc/gitlab/routing.rb"

## UIDs and GIDs pinned (NFS-backed uploads)
user['uid'] = 9000; user['gid'] = 9000
web_server['uid'] = 9001
web_server['gid'] = 9001
user['git_user_email'] = "gitlab@" + 'corp.example'
high_availability['mountpoint'] = ["/var/opt/gitlab/git-data", '/var/opt/gitlab/gitlab-rails/uploads']

nginx['custom_gitlab_server_config'] = "location ^~ /foo-namespace/bar-project/raw/ {\n deny all;\n}\n"
gitlab_rails['custom_hooks_dir'] = '/var/opt/gitlab/gitaly/custom_hooks'
package['modify_kernel_parameters'] = \
  false

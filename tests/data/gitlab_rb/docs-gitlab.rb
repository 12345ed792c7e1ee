## The GitLab instance the external Sidekiq node connects to: the services it already runs,
## opened to TCP ("Configure an external Sidekiq instance", first section).

external_url 'https://gitlab.example.com'

## PostgreSQL on TCP, with the Sidekiq node's address allowed (md5 authentication)
postgresql['listen_address'] = '10.10.1.30'
postgresql['port'] = 5432
postgresql['md5_auth_cidr_addresses'] = %w(127.0.0.1/32 10.10.1.30/32 10.10.1.48/32)
postgresql['trust_auth_cidr_addresses'] = %w(127.0.0.1/32)
postgresql['sql_user_password'] = 'a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4'
postgresql['max_connections'] = 400

## The bundled Redis reachable on TCP
redis['bind'] = '10.10.1.30'
redis['port'] = 6379
redis['password'] = 'redis-password-goes-here'

## Gitaly
gitaly['configuration'] = {
   # ...
   #
   # Accept connections on every network interface
   listen_addr: '0.0.0.0:8075',
   auth: {
      ## The token Gitaly checks: the clients reach it over the network
      token: 'abc123secret',
   },
}

gitlab_rails['gitaly_token'] = 'abc123secret'

# The password Rails authenticates to Redis with
gitlab_rails['redis_password'] = 'redis-password-goes-here'

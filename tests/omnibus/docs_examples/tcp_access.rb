# GitLab docs: administration/sidekiq/_index.md, "Configure TCP access for PostgreSQL, Gitaly, and
# Redis on the GitLab instance" (the GitLab instance's gitlab.rb).
## Gitaly
gitaly['configuration'] = {
   # ...
   #
   # Make Gitaly accept connections on all network interfaces
   listen_addr: '0.0.0.0:8075',
   auth: {
      ## Set up the Gitaly token as a form of authentication because you are accessing Gitaly over the network
      ## https://docs.gitlab.com/administration/gitaly/configure_gitaly/#about-the-gitaly-token
      token: 'abc123secret',
   },
}

gitlab_rails['gitaly_token'] = 'abc123secret'

# Password to Authenticate Redis
gitlab_rails['redis_password'] = 'redis-password-goes-here'

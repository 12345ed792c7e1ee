# GitLab docs: administration/sidekiq/_index.md, "Configure multiple Sidekiq nodes with shared storage".
user['uid'] = 9000
user['gid'] = 9000
web_server['uid'] = 9001
web_server['gid'] = 9001
registry['uid'] = 9002
registry['gid'] = 9002

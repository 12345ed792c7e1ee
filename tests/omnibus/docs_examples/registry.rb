# GitLab docs: administration/sidekiq/_index.md, "Configure the container registry when using an
# external Sidekiq".
gitlab_rails['registry_api_url'] = "https://registry.example.com"

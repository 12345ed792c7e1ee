# GitLab docs: administration/sidekiq/_index.md, "Enable HTTPS" (introduced in GitLab 15.2).
sidekiq['exporter_tls_enabled'] = true
sidekiq['exporter_tls_cert_path'] = "/path/to/certificate.pem"
sidekiq['exporter_tls_key_path'] = "/path/to/private-key.pem"

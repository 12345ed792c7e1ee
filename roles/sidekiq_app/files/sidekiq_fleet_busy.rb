# frozen_string_literal: true

# Prints how many threads of this host's Sidekiq processes are running a job, from the
# heartbeats the processes write to Redis (Sidekiq::ProcessSet). The rolling restart waits for 0
# after quieting a node. Reads Redis settings from the app environment (app.env).
require "socket"
require "openssl"
require "sidekiq"
require "sidekiq/api"

Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)
options = {
  url: ENV.fetch("SIDEKIQ_REDIS_URL", "redis://127.0.0.1:6379/0"),
  username: ENV["SIDEKIQ_REDIS_USERNAME"],
  password: ENV["SIDEKIQ_REDIS_PASSWORD"]
}.reject { |_, value| value.nil? || value.empty? }
ca_file = ENV.fetch("SIDEKIQ_REDIS_CA_FILE", "")
options[:ssl_params] = { ca_file: ca_file, verify_mode: OpenSSL::SSL::VERIFY_PEER } unless ca_file.empty?
Sidekiq.configure_client do |config|
  # Only the number goes to stdout: Sidekiq 7 logs "connecting to Redis" at INFO when the pool
  # opens, on stdout by default, and the rolling restart compares stdout with "0".
  config.logger = Sidekiq::Logger.new($stderr)
  config.redis = options
end

host = ENV.fetch("DYNO", Socket.gethostname)
puts Sidekiq::ProcessSet.new.select { |process| process["hostname"] == host }.sum { |process| process["busy"].to_i }

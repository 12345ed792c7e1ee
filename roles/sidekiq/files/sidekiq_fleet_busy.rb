# frozen_string_literal: true

# Prints how many threads of this host's Sidekiq processes are running a job, from the
# heartbeats the processes write to Redis (Sidekiq::ProcessSet). The rolling restart waits for 0
# after quieting a node. Reads Redis settings from the app environment (app.env).
require "socket"
require "sidekiq"
require "sidekiq/api"

Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)
Sidekiq.configure_client do |config|
  config.redis = {
    url: ENV.fetch("SIDEKIQ_REDIS_URL", "redis://127.0.0.1:6379/0"),
    username: ENV["SIDEKIQ_REDIS_USERNAME"],
    password: ENV["SIDEKIQ_REDIS_PASSWORD"]
  }.reject { |_, value| value.nil? || value.empty? }
end

host = ENV.fetch("DYNO", Socket.gethostname)
puts Sidekiq::ProcessSet.new.select { |process| process["hostname"] == host }.sum { |process| process["busy"].to_i }

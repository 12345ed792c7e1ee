# frozen_string_literal: true

# Boot file of every Sidekiq process the sidekiq role starts (sidekiq -r THIS_FILE):
# systemd integration, then the application (SIDEKIQ_FLEET_APP_REQUIRE).
#
# Sidekiq 6.4.1 (Debian's ruby-sidekiq) ships Sidekiq::SdNotify and Sidekiq.start_watchdog but
# never calls them, so Type=notify units would time out. This file sends READY=1 once Sidekiq
# has started, STOPPING=1 when it shuts down, and starts the watchdog pinger when systemd set
# WatchdogSec (WATCHDOG_USEC). Without NOTIFY_SOCKET it does nothing.
require "sidekiq"
require "sidekiq/sd_notify"
require "sidekiq/systemd"

# Sidekiq 6.4.1 calls BRPOP the way redis-rb 4.8 deprecates: without this, every fetch (every
# 2 s per thread) writes a deprecation warning to the journal.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

Sidekiq.configure_server do |config|
  interval = ENV.fetch("SIDEKIQ_AVERAGE_SCHEDULED_POLL_INTERVAL", "").strip
  config.average_scheduled_poll_interval = Float(interval) unless interval.empty?

  if ENV["NOTIFY_SOCKET"]
    config.on(:startup) do
      Sidekiq::SdNotify.ready
      Sidekiq::SdNotify.status("processing #{config.options[:queues].uniq.join(",")}")
    end
    config.on(:quiet) { Sidekiq::SdNotify.status("quiet: not fetching new jobs") }
    config.on(:shutdown) { Sidekiq::SdNotify.stopping }
    Sidekiq.start_watchdog if Sidekiq::SdNotify.watchdog?
  end
end

require ENV.fetch("SIDEKIQ_FLEET_APP_REQUIRE")

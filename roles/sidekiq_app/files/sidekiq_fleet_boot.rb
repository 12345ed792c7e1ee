# frozen_string_literal: true

# Boot file of every Sidekiq process the sidekiq role starts (sidekiq -r THIS_FILE):
# systemd integration, then the application (SIDEKIQ_FLEET_APP_REQUIRE). It works with
# Sidekiq 6.4 (Debian 12's ruby-sidekiq 6.4.1) and Sidekiq 7.x (Debian 13's 7.3.2); the command
# line the role writes (-q QUEUE[,WEIGHT] ... -c N -g TAG) means the same to both.
#
# systemd (Type=notify, WatchdogSec): Sidekiq 7's `sidekiq` command wires Sidekiq::SdNotify
# itself when NOTIFY_SOCKET is set (its integrate_with_systemd: READY=1 at startup, STOPPING=1 at
# shutdown, the watchdog pinger). Debian's Sidekiq 6.4.1 ships SdNotify and start_watchdog but
# never calls them, so Type=notify units would time out: there this file sends READY=1 and
# STOPPING=1 and starts the pinger. On both it adds a status line (queues, mode, threads) for
# `systemctl status`. Without NOTIFY_SOCKET it does nothing.
require "sidekiq"
require "sidekiq/sd_notify"
require "sidekiq/systemd"

# Sidekiq 6.4.1 calls BRPOP the way redis-rb 4.8 deprecates: without this, every fetch (every
# 2 s per thread) writes a deprecation warning to the journal. Sidekiq 7 talks to Redis through
# redis-client and does not load redis-rb at all.
Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)

# What a process fetches, in the words of the Sidekiq version that runs it.
module SidekiqFleetBoot
  module_function

  # Sidekiq 7+ keeps queues in capsules (Sidekiq::Config#capsules): the command line's -q and -c
  # fill the "default" capsule; the application may add capsules of its own with
  # config.capsule(NAME) { |cap| cap.queues = [...]; cap.concurrency = N }. Each capsule has a
  # mode: strict (no weights: queues in order), random (every weight 1) or weighted.
  # Sidekiq 6 has one queue list (config.options[:queues], a queue repeated once per weight)
  # and a :strict flag.
  def capsules(config)
    if config.respond_to?(:capsules)
      config.capsules.values.map do |cap|
        { name: cap.name, queues: cap.queues.uniq, mode: cap.mode.to_s, concurrency: cap.concurrency }
      end
    else
      options = config.options
      [{ name: "default", queues: Array(options[:queues]).uniq,
         mode: options[:strict] ? "strict" : "weighted", concurrency: options[:concurrency] }]
    end
  end

  # "default: high-urgency (strict, 5 threads)" for systemctl status.
  def status(config)
    capsules(config).map do |cap|
      "#{cap[:name]}: #{cap[:queues].join(",")} (#{cap[:mode]}, #{cap[:concurrency]} threads)"
    end.join("; ")
  end
end

# True when the running `sidekiq` command already notifies systemd (Sidekiq 7's bin/sidekiq
# defines integrate_with_systemd before it loads this file): a second READY=1 and a second
# watchdog thread would only add noise.
sidekiq_notifies_systemd = respond_to?(:integrate_with_systemd, true)

Sidekiq.configure_server do |config|
  interval = ENV.fetch("SIDEKIQ_AVERAGE_SCHEDULED_POLL_INTERVAL", "").strip
  config.average_scheduled_poll_interval = Float(interval) unless interval.empty?

  if ENV["NOTIFY_SOCKET"]
    config.on(:startup) do
      Sidekiq::SdNotify.ready unless sidekiq_notifies_systemd
      Sidekiq::SdNotify.status("processing #{SidekiqFleetBoot.status(config)}")
    end
    config.on(:quiet) { Sidekiq::SdNotify.status("quiet: not fetching new jobs") }
    config.on(:shutdown) { Sidekiq::SdNotify.stopping } unless sidekiq_notifies_systemd
    Sidekiq.start_watchdog if Sidekiq::SdNotify.watchdog? && !sidekiq_notifies_systemd
  end
end

require ENV.fetch("SIDEKIQ_FLEET_APP_REQUIRE")

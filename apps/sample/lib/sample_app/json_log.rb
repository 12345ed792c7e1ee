# frozen_string_literal: true

require "json"
require "logger"
require "time"

# The sample app's Sidekiq log in GitLab's structured format: one JSON object per line, and per
# job execution a `start` line and a `done` or `fail` line with GitLab's field names, so
# `fleetsim workload from-logs` reads the lab's logs as it reads an Omnibus node's
# /var/log/gitlab/sidekiq/current. Works with Sidekiq 6.4 and 7.x.
#
#   JsonLogFormatter  every log line as JSON: severity, time (ISO 8601 UTC, milliseconds), pid,
#                     tid, Sidekiq's context (class, jid), and the message (a Hash is merged in)
#   JobLog            a server middleware that writes the job lines: class, jid, queue,
#                     job_status, enqueued_at, created_at (ISO 8601 UTC), retry_count when
#                     retried, scheduling_latency_s and queue_duration_s (enqueued to started),
#                     and on done/fail duration_s, cpu_s (the thread's CPU time),
#                     db_duration_s (time in SampleApp.timed_db), external_http_duration_s
#                     (time a worker spent waiting on something outside: SampleApp.timed_external)
#                     and completed_at; fail lines
#                     also error_class and error_message
#
# SAMPLE_APP_LOG_FORMAT=text keeps Sidekiq's own log format (nothing is installed).
module SampleApp
  module JsonLog
    # GitLab rounds durations to microseconds.
    PRECISION = 6
    THREAD_CPU = Process.const_defined?(:CLOCK_THREAD_CPUTIME_ID)

    module_function

    def enabled?
      ENV.fetch("SAMPLE_APP_LOG_FORMAT", "json").strip.downcase != "text"
    end

    # In the Sidekiq.configure_server block: the formatter on the server's logger (Sidekiq 7:
    # config.logger; Sidekiq 6 yields the Sidekiq module, whose logger is the same object) and
    # the middleware first in the chain, so its timing includes the other middleware.
    def install(config)
      return unless enabled?

      config.logger.formatter = JsonLogFormatter.new
      # Sidekiq 7 can leave out its own start/done lines (these replace them); Sidekiq 6.4 has
      # no such setting and keeps writing them (as JSON without job_status).
      config[:skip_default_job_logging] = true if config.respond_to?(:[]=)
      config.server_middleware { |chain| chain.prepend JobLog }
    end

    # Job timestamps are epoch seconds in Sidekiq 6 and 7 (a Float), milliseconds in Sidekiq 8
    # (an Integer).
    def epoch(value)
      case value
      when Integer then value > 100_000_000_000 ? value / 1000.0 : value.to_f
      when Float then value
      when String then Float(value, exception: false)
      end
    end

    def iso(seconds)
      Time.at(seconds).utc.iso8601(3)
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    def thread_cpu
      THREAD_CPU ? Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID) : nil
    end

    def round(seconds)
      seconds.round(PRECISION)
    end
  end

  # Sidekiq::Logger::Formatters::Base (6.4 and 7.x) gives tid and ctx (Sidekiq::Context).
  class JsonLogFormatter < Sidekiq::Logger::Formatters::Base
    def call(severity, time, _progname, message)
      line = { "severity" => severity, "time" => time.getutc.iso8601(3), "pid" => ::Process.pid,
               "tid" => tid }
      context = ctx
      line.merge!(context.transform_keys(&:to_s)) if context.is_a?(Hash) && !context.empty?
      if message.is_a?(Hash)
        line.merge!(message)
      else
        line["message"] = text(message)
      end
      dump(line) << "\n"
    end

    private

    def text(message)
      case message
      when String then message
      when Exception
        [["#{message.class}: #{message.message}"], Array(message.backtrace)].flatten.join("\n")
      else message.inspect
      end
    end

    # A line that cannot be JSON as it is (invalid UTF-8 in a message) is written scrubbed.
    def dump(line)
      JSON.generate(line)
    rescue JSON::GeneratorError, Encoding::UndefinedConversionError
      JSON.generate(line.transform_values { |v| v.is_a?(String) ? v.scrub("?") : v })
    end
  end

  # Server middleware: the job's start and done/fail lines. It only measures and logs: the job
  # runs, raises and is retried exactly as without it (a failure to log is swallowed).
  class JobLog
    def call(_worker, job, queue)
      fields = start(job, queue)
      Thread.current[:sample_app_db_s] = 0.0
      Thread.current[:sample_app_external_s] = 0.0
      cpu = JsonLog.thread_cpu
      clock = JsonLog.monotonic
      begin
        yield
      rescue Exception => e # rubocop:disable Lint/RescueException -- logged, then re-raised
        finish(:warn, "fail", fields, clock, cpu, e) if fields
        raise
      end
      finish(:info, "done", fields, clock, cpu, nil) if fields
    ensure
      Thread.current[:sample_app_db_s] = nil
      Thread.current[:sample_app_external_s] = nil
    end

    private

    # The start line; the fields every line of the job repeats (nil if they cannot be had).
    def start(job, queue)
      fields = base_fields(job, queue, Time.now.to_f)
      log(:info, fields.merge("job_status" => "start",
                              "message" => "#{fields["class"]} JID-#{fields["jid"]}: start"))
      fields
    rescue StandardError
      nil
    end

    def base_fields(job, queue, started)
      fields = { "class" => (job["wrapped"] || job["class"]).to_s, "jid" => job["jid"],
                 "queue" => queue.to_s }
      fields["retry_count"] = job["retry_count"] if job.key?("retry_count")
      enqueued = JsonLog.epoch(job["enqueued_at"])
      created = JsonLog.epoch(job["created_at"])
      fields["enqueued_at"] = JsonLog.iso(enqueued) if enqueued
      fields["created_at"] = JsonLog.iso(created) if created
      if enqueued
        latency = JsonLog.round([started - enqueued, 0.0].max)
        fields["scheduling_latency_s"] = latency
        fields["queue_duration_s"] = latency
      end
      fields
    end

    def finish(level, status, fields, clock, cpu, error)
      log(level, end_line(status, fields, clock, cpu, error))
    rescue StandardError
      nil
    end

    def end_line(status, fields, clock, cpu, error)
      duration = JsonLog.round(JsonLog.monotonic - clock)
      line = fields.merge("job_status" => status, "duration_s" => duration)
      now_cpu = JsonLog.thread_cpu
      line["cpu_s"] = JsonLog.round(now_cpu - cpu) if cpu && now_cpu
      db = Thread.current[:sample_app_db_s]
      line["db_duration_s"] = JsonLog.round(db) if db
      external = Thread.current[:sample_app_external_s]
      line["external_http_duration_s"] = JsonLog.round(external) if external&.positive?
      line["completed_at"] = JsonLog.iso(Time.now.to_f)
      if error
        line["error_class"] = error.class.name
        line["error_message"] = error.message.to_s
      end
      line["message"] = "#{fields["class"]} JID-#{fields["jid"]}: #{status}: #{duration} sec"
      line
    end

    def log(level, line)
      Sidekiq.logger.public_send(level, line)
    rescue StandardError
      nil # logging must never change how the job ends
    end
  end
end

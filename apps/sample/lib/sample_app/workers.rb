# frozen_string_literal: true

require "digest"
require "socket"
require "zlib"

# The sample workers; apps/sample/all_queues.yml describes them for the routing engine.

# High urgency: does almost nothing, must start fast.
class UrgentNotificationWorker < SampleApp::Job
  def perform(batch, _fail_attempts = nil)
    record(batch)
  end
end

# CPU-bound: hashes 64 KiB 200 times (a few tens of milliseconds).
class ChecksumWorker < SampleApp::Job
  def perform(batch, _fail_attempts = nil)
    data = jid * 2731
    digest = 200.times.reduce(data) { |acc, _| Digest::SHA256.digest(acc + data) }
    record(batch, Digest.hexencode(digest)[0, 16])
  end
end

# External dependency: a TCP connection to another lab host (SAMPLE_APP_EXTERNAL_ENDPOINT).
# A refused or slow connection raises, so Sidekiq retries the job.
class RepositoryProbeWorker < SampleApp::Job
  def perform(batch, _fail_attempts = nil)
    endpoint = ENV.fetch("SAMPLE_APP_EXTERNAL_ENDPOINT")
    host, port = endpoint.sub(%r{\A\w+://}, "").split(":", 2)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    Socket.tcp(host, Integer(port), connect_timeout: 3).close
    elapsed_ms = (Process.clock_gettime(Process::CLOCK_MONOTONIC) - started) * 1000
    record(batch, format("connect %s %.2f ms", endpoint, elapsed_ms))
  end
end

# Fails sometimes. `fail_attempts` a number: the first that many attempts fail (deterministic,
# for tests); nil: about one job in four fails its first attempt (decided by its job id).
class FlakyImportWorker < SampleApp::Job
  class RemoteUnavailable < StandardError; end

  # Retry after a few seconds instead of Sidekiq's backoff (15 s and more), so the lab and its
  # tests see the job in the retry set and then processed.
  sidekiq_retry_in { |_count, _exception| Integer(ENV.fetch("SAMPLE_APP_RETRY_IN", "8")) }

  def perform(batch, fail_attempts = nil)
    job = SampleApp.current_job
    failures_so_far = job.key?("retry_count") ? job["retry_count"].to_i + 1 : 0
    wanted = fail_attempts.nil? ? ((Zlib.crc32(jid) % 4).zero? ? 1 : 0) : fail_attempts.to_i
    raise RemoteUnavailable, "remote import source unavailable (attempt #{failures_so_far + 1})" if failures_so_far < wanted

    record(batch, "succeeded after #{failures_so_far} failure(s)")
  end
end

# Ordinary background work on the catch-all queue.
class AuditEventWorker < SampleApp::Job
  def perform(batch, _fail_attempts = nil)
    record(batch)
  end
end

# The fidelity workloads' job (docs/fidelity.md): `cpu_s` seconds of Ruby on a core (measured
# as this thread's CPU time, so a job that waits for the GVL or a core still does all its work),
# then `wait_s` seconds of waiting that holds no GVL (a stand-in for an HTTP call), logged as
# external_http_duration_s. Writes nothing to PostgreSQL: its only record is the JSON log.
class FidelityWorker < SampleApp::Job
  sidekiq_options retry: false

  def perform(_batch, cpu_s = 0.0, wait_s = 0.0)
    SampleApp.burn_cpu(cpu_s.to_f)
    SampleApp.timed_external { sleep(wait_s.to_f) } if wait_s.to_f.positive?
  end
end

# The same job on its own queue: the bulk side of the fetch-order workload.
class FidelityBulkWorker < FidelityWorker
end

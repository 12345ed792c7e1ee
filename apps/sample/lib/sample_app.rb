# frozen_string_literal: true

# The sample application of the sidekiq-fleet lab: a few Sidekiq workers whose jobs each write
# one row to PostgreSQL over TCP (job id, class, queue, host, process), and the producer side
# that enqueues them on exactly the queue the rendered routing map names.
#
# Settings come from the environment the sidekiq and rails roles render (app.env):
#   SIDEKIQ_FLEET_ROUTING_MAP  YAML file: worker class -> queue (from the routing engine)
#   PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE   the application database (libpq variables)
#   SAMPLE_APP_EXTERNAL_ENDPOINT  host:port RepositoryProbeWorker connects to
#   SIDEKIQ_REDIS_URL SIDEKIQ_REDIS_USERNAME SIDEKIQ_REDIS_PASSWORD   Redis for Sidekiq; the
#     password is passed on its own, so any character in it works
#   SIDEKIQ_REDIS_SENTINELS SIDEKIQ_REDIS_SENTINEL_MASTER SIDEKIQ_REDIS_SENTINEL_PASSWORD
#     SIDEKIQ_REDIS_DB   when set (host:port,...), the primary is found through Sentinel
#   SIDEKIQ_FLEET_DURABLE_ENQUEUE_REPLICAS _TIMEOUT_MS _ATTEMPTS   durable enqueue (WAIT)
#   SAMPLE_APP_LOG_FORMAT  json (default): GitLab's structured Sidekiq log (json_log.rb);
#     text: Sidekiq's own format
require "openssl"
require "json"
require "securerandom"
require "socket"
require "yaml"
require "pg"
require "sidekiq"

# Sidekiq 6.4.1 uses redis-rb 4.8 APIs that warn on every call (BRPOP, SADD); keep logs and the
# CLI's JSON output clean. Sidekiq 7 uses redis-client and does not load redis-rb (no Redis).
Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)

module SampleApp
  TABLE = "sample_jobs"
  # Every execution, insert-only: a job that runs twice has two rows here (one in TABLE).
  RUNS_TABLE = "sample_job_runs"

  # Creates the jobs table; returns true when it was created (false when it existed).
  MIGRATION = <<~SQL
    CREATE TABLE IF NOT EXISTS #{TABLE} (
      jid          text PRIMARY KEY,
      batch        text NOT NULL,
      worker_class text NOT NULL,
      queue        text NOT NULL,
      host         text NOT NULL,
      process      text NOT NULL,
      pid          integer NOT NULL,
      attempt      integer NOT NULL,
      detail       text,
      enqueued_at  timestamptz,
      finished_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS #{RUNS_TABLE} (
      id           bigserial PRIMARY KEY,
      jid          text NOT NULL,
      batch        text NOT NULL,
      host         text NOT NULL,
      process      text NOT NULL,
      attempt      integer NOT NULL,
      finished_at  timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE INDEX IF NOT EXISTS #{RUNS_TABLE}_batch ON #{RUNS_TABLE} (batch);
  SQL

  module_function

  def routing_map
    @routing_map ||= begin
      path = ENV.fetch("SIDEKIQ_FLEET_ROUTING_MAP")
      YAML.safe_load(File.read(path)) || {}
    end
  end

  def queue_for(worker_class)
    routing_map.fetch(worker_class) do
      raise ArgumentError, "#{worker_class} is not in the routing map #{ENV["SIDEKIQ_FLEET_ROUTING_MAP"]} " \
                           "(known: #{routing_map.keys.sort.join(", ")})"
    end
  end

  # One PostgreSQL connection per thread (Sidekiq runs jobs on many threads).
  def db
    Thread.current[:sample_app_db] ||= PG.connect(connect_timeout: 5, application_name: "sample-app")
  end

  # Runs the block and adds its wall time to the job's db_duration_s (JobLog in
  # sample_app/json_log.rb starts the count at 0 for each job); returns the block's value.
  def timed_db(&block)
    timed(:sample_app_db_s, &block)
  end

  # Runs the block and adds its wall time to the job's external_http_duration_s; returns the
  # block's value.
  def timed_external(&block)
    timed(:sample_app_external_s, &block)
  end

  # Runs the block and adds its wall time to the thread's counter `key` (when JobLog started one).
  def timed(key)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
  ensure
    spent = Thread.current[key]
    Thread.current[key] = spent + (Process.clock_gettime(Process::CLOCK_MONOTONIC) - started) if spent
  end

  # Keeps a core busy in Ruby (holding the GVL) until this thread has used `seconds` of CPU.
  def burn_cpu(seconds)
    return unless seconds.positive?

    clock = Process::CLOCK_THREAD_CPUTIME_ID
    done = Process.clock_gettime(clock) + seconds
    x = 1
    x = ((x * 31) + 7) % 1_000_003 while Process.clock_gettime(clock) < done
    x
  end

  def migrate!
    conn = PG.connect(connect_timeout: 5, application_name: "sample-app-migrate")
    existed = conn.exec_params("SELECT to_regclass($1) IS NOT NULL AS present", [TABLE])[0]["present"] == "t"
    conn.exec(MIGRATION)
    !existed
  ensure
    conn&.close
  end

  # Enqueue `count` jobs of `worker_class` on its routed queue; returns [queue, jids].
  def enqueue(worker_class, count, batch:, fail_attempts: nil)
    klass = Object.const_get(worker_class)
    raise ArgumentError, "#{worker_class} is not a sample worker" unless klass < SampleApp::Job

    queue = queue_for(worker_class)
    args = Array.new(count) { [batch, fail_attempts] }
    jids = if DURABLE_REPLICAS.positive?
      args.map { |job_args| durable_push(klass, queue, job_args) }
    else
      args.each_slice(1000).flat_map do |slice|
        Sidekiq::Client.push_bulk("class" => klass, "queue" => queue, "args" => slice)
      end
    end
    [queue, jids]
  end

  DURABLE_REPLICAS = Integer(ENV.fetch("SIDEKIQ_FLEET_DURABLE_ENQUEUE_REPLICAS", "0"))
  DURABLE_TIMEOUT_MS = Integer(ENV.fetch("SIDEKIQ_FLEET_DURABLE_ENQUEUE_TIMEOUT_MS", "1000"))
  DURABLE_ATTEMPTS = Integer(ENV.fetch("SIDEKIQ_FLEET_DURABLE_ENQUEUE_ATTEMPTS", "8"))

  class NotReplicated < StandardError; end

  # Durable enqueue: push one job, then WAIT on the same connection until DURABLE_REPLICAS
  # replicas hold it. Unconfirmed (a failover, a cut-off primary), the same job (same jid) is
  # pushed again, through Sentinel's current primary; so an acknowledged job survives a failover,
  # and a job may run twice when a confirmation is lost. Raises after DURABLE_ATTEMPTS.
  def durable_push(klass, queue, job_args)
    jid = SecureRandom.hex(12)
    attempt = 0
    begin
      attempt += 1
      Sidekiq.redis do |conn|
        # Nested in Sidekiq.redis, the client's push uses this very connection (the pool hands
        # a thread its checked-out connection), so WAIT covers the push.
        Sidekiq::Client.push("class" => klass, "queue" => queue, "args" => job_args, "jid" => jid)
        acked = conn.call("WAIT", DURABLE_REPLICAS, DURABLE_TIMEOUT_MS)
        raise NotReplicated, "#{acked} of #{DURABLE_REPLICAS} replicas confirmed" if acked < DURABLE_REPLICAS
      end
      jid
    rescue NotReplicated, StandardError => e
      raise if attempt >= DURABLE_ATTEMPTS || e.is_a?(ArgumentError)

      warn "durable enqueue of #{jid}: #{e.class}: #{e.message}; pushing again (attempt #{attempt + 1})"
      reconnect_redis
      sleep [0.1 * (2**(attempt - 1)), 1.0].min
      retry
    end
  end

  # Drop pooled connections so the next one asks Sentinel for the primary again.
  def reconnect_redis
    Sidekiq.redis(&:close)
  rescue StandardError
    nil
  end

  # The job being run on this thread (set by JobContext, a server middleware).
  def current_job
    Thread.current[:sample_app_job] || {}
  end

  # The process's tag (-g): Sidekiq 7 keeps settings in Sidekiq.default_configuration,
  # Sidekiq 6 in Sidekiq.options.
  def process_name
    settings = Sidekiq.respond_to?(:default_configuration) ? Sidekiq.default_configuration : Sidekiq.options
    tag = settings[:tag].to_s
    tag.empty? ? "sidekiq" : tag
  end

  # Server middleware: makes the job hash (queue, retry_count, enqueued_at) visible to workers.
  class JobContext
    def call(_worker, job, _queue)
      Thread.current[:sample_app_job] = job
      yield
    ensure
      Thread.current[:sample_app_job] = nil
    end
  end

  # Base of every sample worker: records the finished job as one row.
  class Job
    include Sidekiq::Worker

    def record(batch, detail = nil)
      job = SampleApp.current_job
      attempt = job.key?("retry_count") ? job["retry_count"].to_i + 2 : 1
      enqueued = job["enqueued_at"] ? Time.at(job["enqueued_at"].to_f).utc.iso8601(6) : nil
      # One row per job in TABLE (ON CONFLICT: a job run again keeps its first row) and one row per
      # execution in RUNS_TABLE, in one statement: tests count runs per jid to catch a double run.
      SampleApp.timed_db do
        SampleApp.db.exec_params(
          "WITH run AS (INSERT INTO #{RUNS_TABLE} (jid, batch, host, process, attempt) " \
          "VALUES ($1, $2, $5, $6, $8)) " \
          "INSERT INTO #{TABLE} (jid, batch, worker_class, queue, host, process, pid, attempt, detail, enqueued_at) " \
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (jid) DO NOTHING",
          [jid, batch, self.class.name, job["queue"].to_s, Socket.gethostname, SampleApp.process_name,
           Process.pid, attempt, detail, enqueued]
        )
      end
    rescue PG::ConnectionBad, PG::UnableToSend
      Thread.current[:sample_app_db] = nil
      raise
    end
  end
end

require_relative "sample_app/workers"
require_relative "sample_app/json_log"

redis_options = {
  url: ENV.fetch("SIDEKIQ_REDIS_URL", "redis://127.0.0.1:6379/0"),
  username: ENV["SIDEKIQ_REDIS_USERNAME"],
  password: ENV["SIDEKIQ_REDIS_PASSWORD"]
}.reject { |_key, value| value.nil? || value.empty? }
# Sentinel: the primary's address comes from the sentinels, and a failover is followed (a
# connection error or a replica's answer makes the client ask them again). Sidekiq 7
# (redis-client) takes the master's name as `name`; Sidekiq 6 (redis-rb) as the URL's host.
sentinels = ENV.fetch("SIDEKIQ_REDIS_SENTINELS", "").split(",").map(&:strip).reject(&:empty?)
unless sentinels.empty?
  master = ENV.fetch("SIDEKIQ_REDIS_SENTINEL_MASTER", "gitlab-redis")
  sentinel_password = ENV.fetch("SIDEKIQ_REDIS_SENTINEL_PASSWORD", "")
  sentinel_list = sentinels.map do |entry|
    host, port = entry.rpartition(":").values_at(0, 2)
    { host: host, port: Integer(port) }.tap { |s| s[:password] = sentinel_password unless sentinel_password.empty? }
  end
  redis_options.delete(:url)
  redis_options[:sentinels] = sentinel_list
  redis_options[:role] = :master
  if Gem::Version.new(Sidekiq::VERSION) >= Gem::Version.new("7")
    redis_options[:name] = master
    redis_options[:db] = Integer(ENV.fetch("SIDEKIQ_REDIS_DB", "0"))
    # redis-client 0.19+ also takes the sentinels' password on its own (used for sentinels it
    # discovers); older versions only per sentinel, as above.
    takes_password = RedisClient::SentinelConfig.instance_method(:initialize).parameters.any? { |_, n| n == :sentinel_password }
    redis_options[:sentinel_password] = sentinel_password if takes_password && !sentinel_password.empty?
  else
    redis_options[:url] = "redis://#{master}/#{ENV.fetch('SIDEKIQ_REDIS_DB', '0')}"
  end
end
# rediss:// URLs: verify the server's certificate (chain and name) against the fleet CA. The
# same options suit redis-rb (Sidekiq 6) and redis-client (Sidekiq 7): both hand ssl_params to
# OpenSSL::SSL::SSLContext#set_params, whose defaults check the host name.
unless ENV.fetch("SIDEKIQ_REDIS_CA_FILE", "").empty?
  redis_options[:ssl_params] = { ca_file: ENV["SIDEKIQ_REDIS_CA_FILE"], verify_mode: OpenSSL::SSL::VERIFY_PEER }
  # Behind Sentinel there is no rediss:// URL to say so: TLS to the sentinels and the primary.
  if redis_options.key?(:sentinels)
    redis_options[:ssl] = true
    redis_options[:sentinels].each { |s| s.merge!(ssl: true, ssl_params: redis_options[:ssl_params]) }
  end
end

Sidekiq.configure_server do |config|
  config.redis = redis_options
  config.server_middleware { |chain| chain.add SampleApp::JobContext }
  # GitLab's structured log: JSON lines, a start and a done/fail line per job (json_log.rb).
  SampleApp::JsonLog.install(config)
end

Sidekiq.configure_client do |config|
  # stdout belongs to the CLI's JSON: Sidekiq 7 logs "connecting to Redis" at INFO when the pool
  # opens, on stdout by default.
  config.logger = Sidekiq::Logger.new($stderr)
  config.redis = redis_options
end

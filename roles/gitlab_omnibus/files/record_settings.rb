#!/usr/bin/env ruby
# frozen_string_literal: true

# Evaluates a gitlab.rb without GitLab and prints, as JSON, every setting it assigns.
#
#   ruby record_settings.rb FILE [--map FROM=TO ...]
#
# gitlab.rb is Ruby that GitLab's package evaluates with one object per top-level name
# (sidekiq, gitlab_rails, postgresql, ...). Here each name is a stub that records what is
# assigned to it: `sidekiq['routing_rules'] = [...]`, nested hashes
# (`gitlab_rails['object_store']['enabled'] = true`, also inside a hash assigned before),
# calls with one argument (`external_url 'https://...'`, `roles ['sidekiq_role']`,
# `git_data_dirs({...})`) and `from_file 'PATH'`, which evaluates PATH as well (--map rewrites
# an absolute path such as /etc/gitlab/sidekiq-fleet.rb to a local copy). Nothing is checked
# here: which names and keys exist in which GitLab release is the Python checker's job
# (simulator/omnibus/validate.py). Output on stdout:
#
#   {"files": [...evaluated files...],
#    "assignments": [{"path": ["sidekiq", "routing_rules"], "value": ..., "file": F, "line": N}],
#    "settings": {"sidekiq": {"routing_rules": ...}, "external_url": "...", ...}}
#
# Symbols become strings. A file that does not parse or raises stops with exit 1 and
# "record_settings: FILE:LINE: message" on stderr. Exit 2: usage.

require 'json'

module SidekiqFleetRecorder
  # What the evaluated files assigned, in order, and the resulting tree.
  class Log
    attr_reader :assignments, :settings, :files, :maps

    def initialize(maps)
      @assignments = []
      @settings = {}
      @files = []
      @maps = maps
    end

    def record(path, value)
      @assignments << { 'path' => path, 'value' => Log.plain(value), 'file' => location&.path,
                        'line' => location&.lineno }
      *parents, last = path
      node = parents.reduce(@settings) do |tree, key|
        tree[key] = {} unless tree[key].is_a?(Hash)
        tree[key]
      end
      node[last] = Log.plain(value)
    end

    # The line of the evaluated file that made the assignment.
    def location
      caller_locations.find { |loc| @files.include?(loc.path) }
    end

    def inspect
      '#<gitlab.rb settings>'
    end

    def self.plain(value)
      case value
      when Hash then value.to_h { |k, v| [k.is_a?(Symbol) ? k.to_s : k, plain(v)] }
      when Array then value.map { |v| plain(v) }
      when Symbol then value.to_s
      when String, Integer, Float, true, false, nil then value
      when Attribute then value.to_h
      else { '__ruby__' => value.inspect }
      end
    end
  end

  # A hash that records what is assigned into it (a hash value assigned to a setting, so that
  # `gitlab_rails['object_store'] = {...}` followed by `gitlab_rails['object_store']['x'] = 1`
  # is recorded too).
  class RecordingHash < Hash
    def self.wrap(log, path, value)
      return value unless value.is_a?(Hash)

      hash = new
      hash.attach(log, path)
      value.each { |k, v| hash.store(k, wrap(log, path + [k.to_s], v)) }
      hash
    end

    def attach(log, path)
      @log = log
      @path = path
    end

    def []=(key, value)
      @log.record(@path + [key.to_s], value)
      super(key, RecordingHash.wrap(@log, @path + [key.to_s], value))
    end
  end

  # A top-level name (sidekiq, gitlab_rails, ...) or a hash inside one that nothing has
  # assigned yet: reading it gives a new, empty attribute (GitLab auto-vivifies them too).
  class Attribute
    def initialize(log, path)
      @log = log
      @path = path
      @values = {}
    end

    def [](key)
      key = key.to_s
      @values[key] ||= Attribute.new(@log, @path + [key])
    end

    def []=(key, value)
      key = key.to_s
      @log.record(@path + [key], value)
      @values[key] = RecordingHash.wrap(@log, @path + [key], value)
    end

    def to_h
      @values.to_h { |k, v| [k, Log.plain(v)] }
    end

    # Error messages name the setting, never the values recorded so far.
    def inspect
      "#<gitlab.rb #{@path.first}#{@path.drop(1).map { |k| "['#{k}']" }.join}>"
    end
    alias to_s inspect
  end

  # The object a gitlab.rb is evaluated in.
  class Context
    def initialize(log)
      @log = log
      @tops = {}
    end

    def evaluate(path)
      local = @log.maps.fetch(path, path)
      real = File.expand_path(local)
      @log.files << real
      instance_eval(File.read(real), real, 1)
    end

    def from_file(path)
      evaluate(path.to_s)
    end

    def method_missing(name, *args, &block)
      return super if block || args.length > 1 || name.end_with?('=', '?', '!')

      top = name.to_s
      if args.empty?
        @tops.fetch(top) { @tops[top] = Attribute.new(@log, [top]) }
      else
        @log.record([top], args.first)
        @tops[top] = RecordingHash.wrap(@log, [top], args.first)
      end
    end

    def respond_to_missing?(_name, _include_private = false)
      true
    end

    def inspect
      '#<gitlab.rb>'
    end
  end
end

if $PROGRAM_NAME == __FILE__
  args = ARGV.dup
  maps = {}
  while (index = args.index('--map'))
    from, to = args.delete_at(index + 1).to_s.split('=', 2)
    args.delete_at(index)
    unless from && to
      warn 'record_settings: --map needs FROM=TO'
      exit 2
    end
    maps[from] = to
  end
  if args.length != 1
    warn 'usage: record_settings.rb FILE [--map FROM=TO ...]'
    exit 2
  end
  log = SidekiqFleetRecorder::Log.new(maps)
  begin
    SidekiqFleetRecorder::Context.new(log).evaluate(args.first)
  rescue ScriptError, StandardError => e
    where = (e.backtrace_locations || []).find { |loc| log.files.include?(loc.path) }
    where = where ? "#{where.path}:#{where.lineno}" : args.first
    warn "record_settings: #{where}: #{e.class}: #{e.message.lines.first&.strip}"
    exit 1
  end
  puts JSON.generate({ 'files' => log.files, 'assignments' => log.assignments,
                       'settings' => log.settings })
end

#!/usr/bin/env ruby
# frozen_string_literal: true

# How this Ruby hands its GVL over (docs/behaviour.md section 12): two probes, run on a worker
# node with its own Ruby (ruby scripts/gvl_probe.rb; about 12 s).
#
# 1. A thread that burns CPU without pause holds the GVL; another sleeps a random 0-50 ms
#    (giving the GVL up), then wants it back: how long it waits is how long Ruby lets a
#    CPU-bound holder keep the GVL once a thread waits.
# 2. A CPU-bound thread among two threads of 20 ms bursts (each sleeping 5-15 ms between
#    them, so someone nearly always waits): how long it holds the GVL each time.

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

def burn_until(deadline)
  x = 1
  x = ((x * 31) + 7) % 1_000_003 while now < deadline
  x
end

def summary(name, values)
  values = values.sort
  n = values.size
  ms = ->(v) { (v * 1000).round(1) }
  puts "#{name}: n=#{n} p10=#{ms[values[n / 10]]} p50=#{ms[values[n / 2]]} " \
       "p90=#{ms[values[n * 9 / 10]]} mean=#{ms[values.sum / n]} ms"
end

def waits_behind_a_cpu_bound_holder(seconds)
  stop = now + seconds
  holder = Thread.new { burn_until(stop) }
  waits = []
  rng = Random.new(1)
  while now < stop - 0.3
    nap = rng.rand * 0.05
    t0 = now
    sleep nap
    waits << (now - t0 - nap)
    burn_until(now + 0.002)
  end
  holder.join
  waits
end

def holds_among_short_bursts(seconds)
  stop = now + seconds
  holds = []
  holder = Thread.new do
    start = last = now
    while (t = now) < stop
      if t - last > 0.001 # a gap in its own clock readings: it was off the GVL
        holds << (last - start)
        start = t
      end
      last = t
    end
  end
  others = Array.new(2) do |i|
    Thread.new do
      rng = Random.new(i + 1)
      while now < stop
        sleep 0.005 + (rng.rand * 0.01)
        burn_until(now + 0.02)
      end
    end
  end
  [holder, *others].each(&:join)
  holds.drop(1)
end

puts RUBY_DESCRIPTION
summary("1. wait behind a CPU-bound holder", waits_behind_a_cpu_bound_holder(6.0))
summary("2. holds of a CPU-bound thread among short bursts", holds_among_short_bursts(6.0))

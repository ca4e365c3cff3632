package main

import (
	"slices"
	"time"
)

// summary holds latency percentiles in nanoseconds.
type summary struct {
	N                  int
	P50, P90, P99, Max int64
}

// summarize sorts v in place and takes nearest-rank percentiles.
func summarize(v []int64) summary {
	if len(v) == 0 {
		return summary{}
	}
	slices.Sort(v)
	at := func(p float64) int64 {
		i := int(p*float64(len(v))+0.999999) - 1
		return v[max(0, min(i, len(v)-1))]
	}
	return summary{N: len(v), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: v[len(v)-1]}
}

// us converts nanoseconds to microseconds.
func us(ns int64) float64 { return float64(ns) / float64(time.Microsecond) }

// median of a few durations (sorted in place).
func median(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

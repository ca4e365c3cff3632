package push

import (
	"context"
	"time"
)

// backoff is an exponential delay with full jitter: the n-th delay since
// the last reset (from 1) is uniform in [min, min(max, min·2ⁿ)]. The
// first is jittered too: sidecars that lose the same controller at once
// (a restart) must not all come back at the same instant.
type backoff struct {
	min, max time.Duration
	// int63n returns a uniform value in [0, n); rand.Int64N in production.
	int63n func(n int64) int64
	ceil   time.Duration // upper bound of the next delay; 0: min
}

// next returns the next delay and doubles the ceiling up to max.
func (b *backoff) next() time.Duration {
	if b.ceil < b.min {
		b.ceil = min(b.max, 2*b.min)
	}
	d := b.between(b.min, b.ceil)
	if b.ceil < b.max {
		b.ceil = min(b.max, 2*b.ceil)
	}
	return d
}

// slow returns a delay near max, uniform in [max/2, max], for failures a
// retry will not fix soon (401, 403): the server is not hammered.
func (b *backoff) slow() time.Duration {
	b.ceil = b.max
	return b.between(b.max/2, b.max)
}

// atLeast returns d raised to the server's Retry-After ra, itself capped
// at max, with up to half of it added as jitter, so sidecars refused
// together (a controller not ready, 429) do not return together.
func (b *backoff) atLeast(d, ra time.Duration) time.Duration {
	if ra <= 0 {
		return d
	}
	ra = min(ra, b.max)
	return max(d, b.between(ra, ra+ra/2))
}

// reset starts the sequence again from min.
func (b *backoff) reset() { b.ceil = 0 }

// between is uniform in [lo, hi].
func (b *backoff) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(b.int63n(int64(hi-lo)+1))
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package jwks

import "time"

// Refetch limits. They are not configurable: RefreshCooldown sets the
// window, these the shape.
const (
	// refetchBurst is how many token-triggered fetches may start in any
	// RefreshCooldown window while usable keys are loaded, so a key rotated
	// in right after a fetch is still picked up at once.
	refetchBurst = 3
	// coldRefetchGap is the least time between the start of any fetch and
	// a token-triggered one while no usable key is loaded (at cold start,
	// or once the remote set is stale): at most a few fetches per second.
	coldRefetchGap = 250 * time.Millisecond
	// coldRetryMin and coldRetryMax bound Run's retry backoff while no
	// usable key is loaded.
	coldRetryMin = 200 * time.Millisecond
	coldRetryMax = time.Second
)

// burstWindow admits at most refetchBurst events in any window of a given
// length: an event is admitted when the oldest of the last refetchBurst
// admitted events is at least one window old. It does not allocate; the
// caller serializes access.
type burstWindow struct {
	starts [refetchBurst]time.Time // ring of admitted events, zero when unused
	next   int                     // the oldest entry, overwritten next
}

// admit records an event at now and reports true if it fits the window.
func (w *burstWindow) admit(now time.Time, window time.Duration) bool {
	if oldest := w.starts[w.next]; !oldest.IsZero() && now.Sub(oldest) < window {
		return false
	}
	w.starts[w.next] = now
	w.next = (w.next + 1) % len(w.starts)
	return true
}

// coldBackoff is the wait before background retry n (from 0) while no
// usable key is loaded: coldRetryMin doubled per retry up to coldRetryMax,
// the upper half jittered (jitter(n) returns a value in [0, n)) so proxies
// that lost their IdP together do not retry in step.
func coldBackoff(n int, jitter func(int64) int64) time.Duration {
	d := coldRetryMax
	if n >= 0 && n < 8 {
		d = min(coldRetryMin<<n, coldRetryMax)
	}
	half := d / 2
	return half + time.Duration(jitter(int64(half)+1))
}

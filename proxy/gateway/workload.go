package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/proxy/upstream"
)

// workload is what applies to this workload once the policies that select
// it have had their say over the proxy-wide settings.
type workload struct {
	// trustedProxies find the client (forwarded.NewTrust).
	trustedProxies []string
	// upstream is cfg.Upstream with the effective response timeout.
	upstream config.Upstream
	// readTimeout bounds reading a request body, from the handler's start.
	readTimeout time.Duration
	// maxBodyBytes caps request bodies; -1 is unlimited.
	maxBodyBytes int64
}

// workloadSettings computes the workload's effective settings from cfg and
// the policies that select the workload (audit-mode policies included:
// these settings are not decisions). cfg already holds the command line's
// overrides (--trusted-proxies is merged into cfg.TrustedProxies,
// --upstream-timeout replaces upstream.timeout). The rules:
//
//   - clientIdentity.trustedProxies of a selecting policy replaces
//     cfg.TrustedProxies. Several selecting policies that set it must name
//     the same set of addresses: otherwise the configuration is refused for
//     this workload, since neither the union (more addresses may forge the
//     client) nor the intersection (a hop becomes the client, and a Rego
//     allow-list of internal ranges may then admit everyone) is safe.
//   - limits.upstreamTimeout and limits.readTimeout: the largest value any
//     selecting policy sets replaces the proxy-wide one, so that no policy's
//     function is cut off early.
//   - limits.maxBodyBytes: the smallest value any selecting policy sets
//     replaces the proxy-wide one, so that every policy's limit holds.
func workloadSettings(cfg *config.ProxyConfig, selected []*config.Policy) (workload, error) {
	w := workload{
		trustedProxies: cfg.TrustedProxies,
		upstream:       cfg.Upstream,
		readTimeout:    cfg.Limits.ReadTimeout.Duration,
		maxBodyBytes:   cfg.Limits.MaxBodyBytes,
	}
	var trustedBy string
	var bodySet bool
	var upstreamTimeout, readTimeout time.Duration
	for _, p := range selected {
		if ci := p.ClientIdentity; ci != nil {
			if err := sameTrust(trustedBy, w.trustedProxies, p.Name, ci.TrustedProxies); err != nil {
				return workload{}, err
			}
			trustedBy, w.trustedProxies = p.Name, ci.TrustedProxies
		}
		if l := p.Limits; l != nil {
			upstreamTimeout = max(upstreamTimeout, l.UpstreamTimeout.Duration)
			readTimeout = max(readTimeout, l.ReadTimeout.Duration)
			if l.MaxBodyBytes > 0 && (!bodySet || l.MaxBodyBytes < w.maxBodyBytes) {
				bodySet, w.maxBodyBytes = true, l.MaxBodyBytes
			}
		}
	}
	if upstreamTimeout > 0 {
		w.upstream.Timeout = config.D(upstreamTimeout)
	}
	if readTimeout > 0 {
		w.readTimeout = readTimeout
	}
	return w, nil
}

// sameTrust refuses a second policy's trusted proxies unless they name the
// same addresses as the first one's (prevBy == "" means there is none yet).
func sameTrust(prevBy string, prev []string, by string, next []string) error {
	nextSet, err := config.TrustedProxySet(next)
	if err != nil {
		return fmt.Errorf("policy %s: clientIdentity.trustedProxies: %w", by, err)
	}
	if prevBy == "" {
		return nil
	}
	prevSet, err := config.TrustedProxySet(prev)
	if err != nil {
		return fmt.Errorf("policy %s: clientIdentity.trustedProxies: %w", prevBy, err)
	}
	if !slices.Equal(prevSet, nextSet) {
		return fmt.Errorf("policies %s and %s both select this workload and set different clientIdentity.trustedProxies (%v and %v): "+
			"set the same list in both, or in only one of them", prevBy, by, prev, next)
	}
	return nil
}

// transportFor returns the transport to the upstream u: Deps.Transport when
// set (tests), else Deps.Transports(u) (a cache that keeps keep-alive pools
// across reloads), else a new one.
func (d Deps) transportFor(u config.Upstream) http.RoundTripper {
	switch {
	case d.Transport != nil:
		return d.Transport
	case d.Transports != nil:
		return d.Transports(u)
	}
	return upstream.NewTransport(u)
}

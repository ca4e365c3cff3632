package translate

import (
	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/proxy/config"
)

// clientIdentity copies spec.clientIdentity. An empty list stays an empty
// list (trust nobody), never nil (inherit).
func clientIdentity(ci *v1alpha1.ClientIdentity) *config.ClientIdentity {
	if ci == nil {
		return nil
	}
	return &config.ClientIdentity{TrustedProxies: append([]string{}, ci.TrustedProxies...)}
}

// limits copies spec.limits; unset fields stay zero (inherit).
func limits(l *v1alpha1.Limits) *config.PolicyLimits {
	if l == nil {
		return nil
	}
	out := &config.PolicyLimits{}
	if l.UpstreamTimeout != nil {
		out.UpstreamTimeout = config.D(l.UpstreamTimeout.Duration)
	}
	if l.ReadTimeout != nil {
		out.ReadTimeout = config.D(l.ReadTimeout.Duration)
	}
	if l.MaxBodyBytes != nil {
		out.MaxBodyBytes = *l.MaxBodyBytes
	}
	return out
}

// sharedLimits copies spec.sharedLimits (onUnavailable defaults to local).
func sharedLimits(s *v1alpha1.SharedLimits) *config.SharedLimits {
	if s == nil {
		return nil
	}
	out := &config.SharedLimits{OnUnavailable: s.OnUnavailable}
	out.Default()
	return out
}

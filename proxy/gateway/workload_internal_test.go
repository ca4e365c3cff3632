package gateway

import (
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/proxy/config"
)

func TestWorkloadSettings(t *testing.T) {
	t.Parallel()
	sel := config.Selector{MatchLabels: map[string]string{"app": "fn"}}
	other := config.Selector{MatchLabels: map[string]string{"app": "other"}}
	lim := func(up, read time.Duration, body int64) *config.PolicyLimits {
		return &config.PolicyLimits{UpstreamTimeout: config.D(up), ReadTimeout: config.D(read), MaxBodyBytes: body}
	}
	tests := []struct {
		name     string
		policies []config.Policy
		want     workload
	}{
		{"no policy: the proxy-wide settings", nil,
			workload{trustedProxies: []string{"127.0.0.1/32"}, upstream: config.Upstream{Timeout: config.D(time.Minute)}, readTimeout: time.Minute, maxBodyBytes: 10 << 20}},
		{"one policy replaces them", []config.Policy{{Name: "a", Selector: sel, Limits: lim(5*time.Minute, 2*time.Minute, 50<<20),
			ClientIdentity: &config.ClientIdentity{TrustedProxies: []string{"10.0.0.0/8"}}}},
			workload{trustedProxies: []string{"10.0.0.0/8"}, upstream: config.Upstream{Timeout: config.D(5 * time.Minute)}, readTimeout: 2 * time.Minute, maxBodyBytes: 50 << 20}},
		{"largest timeouts, smallest body limit", []config.Policy{
			{Name: "a", Selector: sel, Limits: lim(5*time.Minute, 0, 50<<20)},
			{Name: "b", Selector: sel, Limits: lim(time.Second, 3*time.Minute, 1<<20)},
			{Name: "c", Selector: sel, Limits: lim(0, time.Second, 0)},
		}, workload{trustedProxies: []string{"127.0.0.1/32"}, upstream: config.Upstream{Timeout: config.D(5 * time.Minute)}, readTimeout: 3 * time.Minute, maxBodyBytes: 1 << 20}},
		{"policies of other workloads do not count", []config.Policy{
			{Name: "a", Selector: other, Limits: lim(time.Hour, time.Hour, 1), ClientIdentity: &config.ClientIdentity{TrustedProxies: []string{}}},
		}, workload{trustedProxies: []string{"127.0.0.1/32"}, upstream: config.Upstream{Timeout: config.D(time.Minute)}, readTimeout: time.Minute, maxBodyBytes: 10 << 20}},
		{"an empty list trusts nobody", []config.Policy{{Name: "a", Selector: sel, ClientIdentity: &config.ClientIdentity{TrustedProxies: []string{}}}},
			workload{trustedProxies: []string{}, upstream: config.Upstream{Timeout: config.D(time.Minute)}, readTimeout: time.Minute, maxBodyBytes: 10 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := &config.ProxyConfig{
				TrustedProxies: []string{"127.0.0.1/32"},
				Upstream:       config.Upstream{Timeout: config.D(time.Minute)},
				Limits:         config.Limits{ReadTimeout: config.D(time.Minute), MaxBodyBytes: 10 << 20},
				Policies:       tt.policies,
			}
			got, err := workloadSettings(cfg, selectPolicies(cfg, map[string]string{"app": "fn"}))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.trustedProxies, tt.want.trustedProxies) || (got.trustedProxies == nil) != (tt.want.trustedProxies == nil) ||
				got.upstream != tt.want.upstream || got.readTimeout != tt.want.readTimeout || got.maxBodyBytes != tt.want.maxBodyBytes {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

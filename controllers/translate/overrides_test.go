package translate

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/proxy/config"
)

func TestTranslateClientIdentityAndLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		spec       string
		wantTrust  []string // nil: no clientIdentity
		wantLimits *config.PolicyLimits
	}{
		{"neither", "", nil, nil},
		{"trusted proxies", "clientIdentity: {trustedProxies: [127.0.0.1/32, '::1/128', 10.8.0.0/16]}",
			[]string{"127.0.0.1/32", "::1/128", "10.8.0.0/16"}, nil},
		{"trust nobody", "clientIdentity: {trustedProxies: []}", []string{}, nil},
		{"every limit", "limits: {upstreamTimeout: 5m, readTimeout: 90s, maxBodyBytes: 52428800}", nil,
			&config.PolicyLimits{UpstreamTimeout: config.D(5 * time.Minute), ReadTimeout: config.D(90 * time.Second), MaxBodyBytes: 50 << 20}},
		{"one limit", "limits: {readTimeout: 2m}", nil, &config.PolicyLimits{ReadTimeout: config.D(2 * time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := mustTranslate(t, Input{Policy: policyYAML(t, "p", "selector: {}\nroutes: [{public: true}]\n"+tt.spec)})
			ci := f.Policy.ClientIdentity
			switch {
			case tt.wantTrust == nil && ci != nil:
				t.Fatalf("got clientIdentity %+v, want none", ci)
			case tt.wantTrust != nil && (ci == nil || ci.TrustedProxies == nil || strings.Join(ci.TrustedProxies, ",") != strings.Join(tt.wantTrust, ",")):
				t.Fatalf("got clientIdentity %+v, want trustedProxies %q (an empty list stays a list)", ci, tt.wantTrust)
			}
			if got := toJSON(t, f.Policy.Limits); got != toJSON(t, tt.wantLimits) {
				t.Fatalf("got limits %s, want %s", got, toJSON(t, tt.wantLimits))
			}
		})
	}
}

// The CRD's CEL rules catch these at kubectl apply; an object stored
// before (or written past the API server) is still refused here, with the
// spec path, by the proxy's own validation.
func TestTranslateOverrideProblems(t *testing.T) {
	t.Parallel()
	for spec, want := range map[string]string{
		"clientIdentity: {trustedProxies: [10.0.0.0/8, 0.0.0.0/0]}": "spec.clientIdentity.trustedProxies[1]: must be an IP address or CIDR",
		"clientIdentity: {trustedProxies: [gateway]}":               "spec.clientIdentity.trustedProxies[0]",
		"limits: {upstreamTimeout: 2h}":                             "spec.limits.upstreamTimeout: must be between 0 (inherit) and 1h0m0s",
		"limits: {maxBodyBytes: 10737418241}":                       "spec.limits.maxBodyBytes",
	} {
		_, prob := Translate(t.Context(), Input{Policy: policyYAML(t, "p", "selector: {}\nroutes: [{public: true}]\n"+spec)})
		if prob == nil || prob.Reason != ReasonInvalidSpec || !strings.Contains(prob.Message, want) {
			t.Errorf("%s: got %v, want InvalidSpec containing %q", spec, prob, want)
		}
	}
}

// The CRD repeats the proxy's bounds (proxy/config.MaxPolicyTimeout,
// MaxPolicyBodyBytes, MaxTrustedProxies) for early feedback; they must not
// drift apart.
func TestCRDBoundsMatchTheProxy(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "authgate.dev_authpolicies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema schema `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	lim := spec.Properties["limits"].Properties
	hour := "duration('" + strings.TrimSuffix(config.MaxPolicyTimeout.String(), "0m0s") + "')"
	for _, f := range []string{"upstreamTimeout", "readTimeout"} {
		if rules := toJSON(t, lim[f].Rules); !strings.Contains(rules, hour) {
			t.Errorf("limits.%s rules %s do not bound it by %s", f, rules, hour)
		}
	}
	if got := lim["maxBodyBytes"].Maximum; got == nil || int64(*got) != config.MaxPolicyBodyBytes {
		t.Errorf("got limits.maxBodyBytes maximum %v, want %d", got, config.MaxPolicyBodyBytes)
	}
	tp := spec.Properties["clientIdentity"].Properties["trustedProxies"]
	if tp.MaxItems == nil || *tp.MaxItems != config.MaxTrustedProxies {
		t.Errorf("got clientIdentity.trustedProxies maxItems %v, want %s", tp.MaxItems, strconv.Itoa(config.MaxTrustedProxies))
	}
	rv := spec.Properties["revocations"]
	if rv.MaxItems == nil || *rv.MaxItems != config.MaxRevocations {
		t.Errorf("got revocations maxItems %v, want %d", rv.MaxItems, config.MaxRevocations)
	}
	for _, f := range []string{"jti", "sub", "sid"} {
		if rv.Items == nil {
			t.Fatal("got no revocations items schema")
		}
		if got := rv.Items.Properties[f].MaxLength; got == nil || *got != config.MaxRevocationValueLen {
			t.Errorf("got revocations[].%s maxLength %v, want %d", f, got, config.MaxRevocationValueLen)
		}
	}
}

type schema struct {
	Properties map[string]schema `json:"properties"`
	Rules      []map[string]any  `json:"x-kubernetes-validations"`
	Maximum    *float64          `json:"maximum"`
	MaxItems   *int              `json:"maxItems"`
	MaxLength  *int              `json:"maxLength"`
	Items      *schema           `json:"items"`
}

func TestTranslateSharedLimits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, spec, want string }{
		{"unset", "", "null"},
		{"default fallback", "sharedLimits: {}", `{"onUnavailable":"local"}`},
		{"deny", "sharedLimits: {onUnavailable: deny}", `{"onUnavailable":"deny"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := mustTranslate(t, Input{Policy: policyYAML(t, "p", "selector: {}\nroutes: [{public: true}]\nrateLimits: [{key: ip, requestsPerSecond: '5'}]\n"+tt.spec)})
			if got := toJSON(t, f.Policy.SharedLimits); got != tt.want {
				t.Fatalf("got sharedLimits %s, want %s", got, tt.want)
			}
		})
	}
}

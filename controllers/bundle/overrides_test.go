package bundle

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/controllers/translate"
	"github.com/authgate/authgate/proxy/config"
)

// clientIdentity and limits are per policy in the bundle; "trust nobody"
// (an empty list) survives rendering, parsing and splitting, and stays
// distinct from "inherit" (no clientIdentity).
func TestRenderClientIdentityAndLimits(t *testing.T) {
	t.Parallel()
	nobody := frag(t, "nobody", "selector: {matchLabels: {app: a}}\nroutes: [{public: true}]\nclientIdentity: {trustedProxies: []}")
	hops := frag(t, "hops", "selector: {matchLabels: {app: b}}\nroutes: [{public: true}]\n"+
		"clientIdentity: {trustedProxies: [127.0.0.1/32, 10.8.0.0/16]}\nlimits: {readTimeout: 2m, maxBodyBytes: 2048}")
	inherit := frag(t, "inherit", "selector: {matchLabels: {app: c}}\nroutes: [{public: true}]")
	data, err := Render([]*translate.Fragment{nobody, hops, inherit})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"trustedProxies: []", "- 10.8.0.0/16", "readTimeout: 2m0s", "maxBodyBytes: 2048"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("bundle lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "upstreamTimeout") {
		t.Errorf("bundle renders an unset upstreamTimeout:\n%s", data)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]config.Policy{}
	for _, p := range cfg.Policies {
		byName[p.Name] = p
	}
	if ci := byName[ns+"/nobody"].ClientIdentity; ci == nil || ci.TrustedProxies == nil || len(ci.TrustedProxies) != 0 {
		t.Errorf("got %+v for trust-nobody, want an empty list", ci)
	}
	if ci := byName[ns+"/inherit"].ClientIdentity; ci != nil {
		t.Errorf("got %+v for a policy without clientIdentity, want none", ci)
	}
	assertRoundTrip(t, data)
}

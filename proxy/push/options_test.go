package push_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/push"
)

type nopApplier struct{}

func (nopApplier) Apply(context.Context, []byte) (push.Outcome, error) { return push.Applied, nil }
func (nopApplier) Enforced() (pushapi.Ack, bool)                       { return pushapi.Ack{}, false }

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	valid := func() push.Options {
		return push.Options{
			URL: "https://authgate-push.authgate-system.svc:8443", CAFile: "/var/run/authgate/push/ca.crt",
			TokenFile: "/var/run/secrets/tokens/authgate-push", Applier: nopApplier{},
		}
	}
	tests := []struct {
		name    string
		change  func(o *push.Options)
		wantErr string
	}{
		{"valid; the files need not exist yet", func(*push.Options) {}, ""},
		{"http", func(o *push.Options) { o.URL = "http://authgate-push:8443" }, "scheme must be https"},
		{"http with an injected transport", func(o *push.Options) {
			o.URL, o.CAFile, o.Transport = "http://127.0.0.1:1", "", http.DefaultTransport
		}, ""},
		{"no scheme", func(o *push.Options) { o.URL = "authgate-push:8443" }, "scheme must be https"},
		{"no host", func(o *push.Options) { o.URL = "https:///v1" }, "no host"},
		{"query", func(o *push.Options) { o.URL += "/?x=1" }, "no query"},
		{"fragment", func(o *push.Options) { o.URL += "#x" }, "no query or fragment"},
		{"user info", func(o *push.Options) { o.URL = "https://u:secret@authgate-push:8443" }, "user info"},
		{"no CA file", func(o *push.Options) { o.CAFile = "" }, "CAFile or CA is required"},
		{"CA given instead of a file", func(o *push.Options) { o.CAFile, o.CA = "", []byte("pem") }, ""},
		{"both CA and CA file", func(o *push.Options) { o.CA = []byte("pem") }, "not both"},
		{"no token file", func(o *push.Options) { o.TokenFile = "" }, "TokenFile is required"},
		{"no applier", func(o *push.Options) { o.Applier = nil }, "Applier is required"},
		{"min above max", func(o *push.Options) { o.MinBackoff, o.MaxBackoff = 2e9, 1e9 }, "MinBackoff"},
		{"negative min", func(o *push.Options) { o.MinBackoff = -1 }, "MinBackoff"},
		{"negative ping timeout", func(o *push.Options) { o.PingTimeout = -1 }, "PingTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := valid()
			tt.change(&o)
			_, err := push.New(o)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error holding %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Fatalf("error %q holds the URL's password", err)
			}
		})
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	t.Parallel()
	c, err := push.New(push.Options{URL: "https://authgate-push:8443", CAFile: "ca", TokenFile: "t", Applier: nopApplier{}})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		c.Notify() // no Run: nothing consumes these
	}
	if c.Connected() {
		t.Fatal("connected without Run")
	}
}

func TestMetricsStartAtZero(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	push.NewMetrics(reg)
	const want = `
# HELP authgate_proxy_push_acks_total Acknowledgement POSTs of what the sidecar enforces, by result (ok, error).
# TYPE authgate_proxy_push_acks_total counter
authgate_proxy_push_acks_total{result="error"} 0
authgate_proxy_push_acks_total{result="ok"} 0
# HELP authgate_proxy_push_connected 1 while the sidecar holds an HTTP/2 watch stream to the controller's push server, else 0 (the mounted file still applies).
# TYPE authgate_proxy_push_connected gauge
authgate_proxy_push_connected 0
# HELP authgate_proxy_push_connects_total Watch connection attempts to the controller's push server, by result (ok, unauthorized: 401 or 403, error).
# TYPE authgate_proxy_push_connects_total counter
authgate_proxy_push_connects_total{result="error"} 0
authgate_proxy_push_connects_total{result="ok"} 0
authgate_proxy_push_connects_total{result="unauthorized"} 0
# HELP authgate_proxy_push_last_update_timestamp_seconds Unix time of the last bundle received intact over the push channel, whatever its outcome.
# TYPE authgate_proxy_push_last_update_timestamp_seconds gauge
authgate_proxy_push_last_update_timestamp_seconds 0
# HELP authgate_proxy_push_updates_total Bundles received over the push channel, by outcome (applied, unchanged, stale, rejected: failed validation or build, corrupt: hash or revision not matching the data; the stream is dropped).
# TYPE authgate_proxy_push_updates_total counter
authgate_proxy_push_updates_total{outcome="applied"} 0
authgate_proxy_push_updates_total{outcome="corrupt"} 0
authgate_proxy_push_updates_total{outcome="rejected"} 0
authgate_proxy_push_updates_total{outcome="stale"} 0
authgate_proxy_push_updates_total{outcome="unchanged"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

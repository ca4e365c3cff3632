package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/test/redisserver"
	"github.com/authgate/authgate/test/testca"
	"github.com/authgate/authgate/test/wait"
)

// Two authgate-proxy processes (two replicas of one function) with the
// same policy and a real redis-server on a unix socket: a client sending to
// both alternately gets the policy's burst once, not once per replica.
func TestSharedLimitAcrossTwoProxyProcesses(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t, redisserver.Options{})
	var hits atomic.Int64
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(fn.Close)
	const key = "agk_shared_limit_test_key_0123456789abcdef"
	sum := sha256.Sum256([]byte(key))
	policy := "apiKeys: {keys: [{name: partner, hash: 'sha256:" + hex.EncodeToString(sum[:]) + "'}]}\n" +
		"policies: [{name: shop/orders, authentication: {apiKeys: {}}, routes: [{name: orders, paths: ['/orders/**']}],\n" +
		"  rateLimits: [{key: apikey, requestsPerSecond: 0.01, burst: 5}], sharedLimits: {onUnavailable: deny}}]\n"
	args := []string{"--redis-address", srv.Address, "--redis-network", "unix", "--redis-key-prefix", "authgate:shop:"}
	replicas := []*proc{startProcWith(t, fn.URL, policy, args...), startProcWith(t, fn.URL, policy, args...)}
	for _, p := range replicas {
		wait.For(t, 30*time.Second, func() bool { return strings.Contains(p.logText(), "redis for shared limits answers") },
			"the replica reports Redis reachable")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	codes := map[int]int{}
	for i := range 12 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+replicas[i%2].addr+"/orders/1", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[http.StatusOK] != 5 || codes[http.StatusTooManyRequests] != 7 || hits.Load() != 5 {
		t.Fatalf("statuses %v, function hits %d: want the burst of 5 across both replicas, then 429", codes, hits.Load())
	}
	// Each replica's metrics show its Redis calls: the rate limit of each of
	// its 6 requests, and one read of the shared auth-failure throttle for
	// the key it had not verified before (a known key needs none).
	for _, p := range replicas {
		resp, err := client.Get("http://" + p.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `authgate_ratelimit_backend_requests_total{result="ok"} 7`) {
			t.Fatalf("replica metrics lack seven ok Redis calls:\n%s", grep(string(body), "authgate_ratelimit_backend"))
		}
	}
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestRedisFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte(testca.New(t).PEM), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		args       []string
		wantNil    bool
		wantTLS    bool
		serverName string
		wantErr    string
	}{
		{"none", nil, true, false, "", ""},
		{"plain", []string{"--redis-address", "redis:6379"}, false, false, "", ""},
		{"tls names the host", []string{"--redis-address", "redis.platform.svc:6380", "--redis-tls"}, false, true, "redis.platform.svc", ""},
		{"a CA implies TLS", []string{"--redis-address", "10.0.0.5:6380", "--redis-ca-file", ca, "--redis-server-name", "redis.internal"}, false, true, "redis.internal", ""},
		{"CA missing", []string{"--redis-address", "r:6380", "--redis-ca-file", filepath.Join(dir, "absent")}, false, false, "", "--redis-ca-file"},
		{"CA not PEM", []string{"--redis-address", "r:6380", "--redis-ca-file", junk}, false, false, "", "no PEM CERTIFICATE block"},
		{"tls without a port", []string{"--redis-address", "redis", "--redis-tls"}, false, false, "", "--redis-address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			r := bindRedisFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			o, err := r.options()
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error naming %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tt.wantNil != (o == nil):
				t.Fatalf("got options %+v, want nil %v", o, tt.wantNil)
			case o == nil:
				return
			}
			if (o.TLS != nil) != tt.wantTLS || (o.TLS != nil && (o.TLS.ServerName != tt.serverName || o.TLS.InsecureSkipVerify)) {
				t.Fatalf("got TLS %+v, want TLS %v for %q", o.TLS, tt.wantTLS, tt.serverName)
			}
		})
	}
}

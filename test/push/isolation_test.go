package push_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/api/v1alpha1"
	"github.com/authgate/authgate/internal/pushapi"
	"github.com/authgate/authgate/proxy/admin"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/metrictest"
)

// publicPolicy selects the orders function and opens path alone.
const publicPolicy = `
apiVersion: authgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: orders}
spec:
  selector: {matchLabels: {app: orders}}
  routes:
    - {name: public, paths: [%s], public: true}
`

func addPublicPath(path string) func(*v1alpha1.AuthPolicy) {
	return func(p *v1alpha1.AuthPolicy) { p.Spec.Routes[0].Paths = append(p.Spec.Routes[0].Paths, path) }
}

// A sidecar whose token belongs to namespace B gets B's bundle and never
// A's: it enforces B's policy only and nothing of A shows in its logs or
// status; a client holding a token of B's pod reads only B's bundles on
// the stream, also when A's changes first.
func TestNamespaceIsolation(t *testing.T) {
	t.Parallel()
	nsA, nsB := newNamespace(t, "push-iso-a"), newNamespace(t, "push-iso-b")
	sa := startSidecar(t, newPod(t, nsA, "orders-0"))
	sb := startSidecar(t, newPod(t, nsB, "orders-0"))
	createPolicy(t, nsA, fmt.Sprintf(publicPolicy, "/a-only"))
	createPolicy(t, nsB, fmt.Sprintf(publicPolicy, "/b-only"))
	sa.waitReady(t)
	sb.waitReady(t)
	waitStatus(t, []*sidecar{sa}, time.Now(), http.StatusOK, "/a-only")
	waitStatus(t, []*sidecar{sb}, time.Now(), http.StatusOK, "/b-only")
	sa.expect(t, http.StatusForbidden, "/b-only")
	sb.expect(t, http.StatusForbidden, "/a-only")

	// A token of B's pod, used by a client of its own, opens B's stream,
	// whatever the request says (no field names a namespace).
	stream := openWatch(t, pushToken(t, sb.pod), "namespace="+nsA)
	stream.nextWith(t, nsB, nsA, "/b-only")

	// A changes, and its sidecar enforces the change (so it was
	// published); then B changes: every message on B's stream up to B's
	// change is B's.
	updatePolicy(t, nsA, "orders", addPublicPath("/a-two"))
	waitStatus(t, []*sidecar{sa}, time.Now(), http.StatusOK, "/a-two")
	updatePolicy(t, nsB, "orders", addPublicPath("/b-two"))
	stream.nextWith(t, nsB, nsA, "/b-two")
	waitStatus(t, []*sidecar{sb}, time.Now(), http.StatusOK, "/b-two")
	sb.expect(t, http.StatusForbidden, "/a-only")
	sb.expect(t, http.StatusForbidden, "/a-two")

	if logs := sb.logs.String(); strings.Contains(logs, nsA) {
		t.Fatalf("sidecar of %s logged %s:\n%s", nsB, nsA, grepLines(logs, nsA))
	}
	if got, want := sidecarPolicies(t, sb), []string{nsB + "/orders"}; !slices.Equal(got, want) {
		t.Fatalf("sidecar of %s applies %v, want %v", nsB, got, want)
	}
	if got := metrictest.Labelled(t, sb.reg, "policy", nsA+"/orders"); len(got) > 0 {
		t.Fatalf("sidecar of %s has series of %s/orders: %v", nsB, nsA, got)
	}
	if got := metrictest.Labelled(t, sb.reg, "policy", nsB+"/orders"); len(got) == 0 {
		t.Fatalf("sidecar of %s has no series of its own policy", nsB)
	}
}

// nextWith reads the stream's updates until one holds path, checking
// that each is intact and holds ns's bundle and nothing of other.
func (w *watchStream) nextWith(t *testing.T, ns, other, path string) {
	t.Helper()
	for {
		u := w.next(t)
		expectOnly(t, u, ns, other)
		if bytes.Contains(u.Data, []byte(path)) {
			return
		}
		t.Logf("update at revision %d on the stream of %s without %s yet", u.Revision, ns, path)
	}
}

// expectOnly checks that an Update is intact and holds ns's bundle and
// nothing of other.
func expectOnly(t *testing.T, u pushapi.Update, ns, other string) {
	t.Helper()
	if got := config.Hash(u.Data); got != u.Hash {
		t.Fatalf("update hash %s, data hashes to %s", u.Hash, got)
	}
	if got := config.HeadRevision(u.Data); got != u.Revision {
		t.Fatalf("update revision %d, data's %d", u.Revision, got)
	}
	if bytes.Contains(u.Data, []byte(other)) {
		t.Fatalf("the stream of %s delivered data naming %s:\n%s", ns, other, u.Data)
	}
	cfg, err := config.Parse(u.Data)
	if err != nil {
		t.Fatalf("pushed bundle: %v", err)
	}
	if len(cfg.Policies) != 1 || cfg.Policies[0].Name != ns+"/orders" {
		t.Fatalf("pushed bundle of %s holds %d policies (%+v), want %s/orders alone", ns, len(cfg.Policies), cfg.Policies, ns)
	}
}

// sidecarPolicies is what the sidecar's admin /status says it applies.
func sidecarPolicies(t *testing.T, s *sidecar) []string {
	t.Helper()
	resp, err := httpClient.Get("http://" + s.app.AdminAddr() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st admin.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	slices.Sort(st.Policies)
	return st.Policies
}

// watchStream is a watch of the push server read by the test, not by a
// sidecar: it never acknowledges.
type watchStream struct {
	updates chan pushapi.Update
	errs    chan error
}

// openWatch opens a watch with token and query over HTTP/2, trusting the
// controller's CA, until the test ends.
func openWatch(t *testing.T, token, query string) *watchStream {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}, Protocols: protocols}
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, pushURL+pushapi.WatchPath+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("watch: got %s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
	}
	w := &watchStream{updates: make(chan pushapi.Update), errs: make(chan error, 1)}
	go func() {
		dec := json.NewDecoder(resp.Body)
		for {
			var u pushapi.Update
			if err := dec.Decode(&u); err != nil {
				w.errs <- err
				return
			}
			select {
			case w.updates <- u:
			case <-t.Context().Done():
				return
			}
		}
	}()
	return w
}

// next is the stream's next Update.
func (w *watchStream) next(t *testing.T) pushapi.Update {
	t.Helper()
	select {
	case u := <-w.updates:
		return u
	case err := <-w.errs:
		t.Fatalf("watch stream: %v", err)
	case <-time.After(settle):
		t.Fatalf("no update on the watch stream within %s", settle)
	}
	return pushapi.Update{}
}

package push_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/authgate/authgate/controllers/coverage"
	"github.com/authgate/authgate/proxy/config"
	"github.com/authgate/authgate/test/wait"
)

// While the controller is down a sidecar keeps enforcing what was last
// pushed, and still loads a newer mounted bundle file; when a controller
// comes back the sidecar reconnects and the next change is pushed again.
//
// Not parallel: it stops the suite's controller and starts a new process
// (see the package doc); Go finishes it before any parallel test resumes.
func TestControllerDown(t *testing.T) {
	ns := newNamespace(t, "push-down")
	s := startSidecar(t, newPod(t, ns, "orders-0"))
	withOrdersPolicy(t, ns)
	s.waitReady(t)
	waitStatus(t, []*sidecar{s}, time.Now(), http.StatusOK, "/orders/1", "X-API-Key", partnerKey)
	expectGeneration1(t, s)
	waitEnforced(t, ns, "orders", "1/1 at generation 1", metav1.ConditionTrue, coverage.ReasonAllPodsEnforce, 1)
	s.waitConnected(t, 1)

	t.Cleanup(func() { // the other tests need a controller
		if !ctl.running() {
			if err := ctl.start(context.Background()); err != nil {
				t.Errorf("restart the controller: %v", err)
			}
		}
	})
	if err := ctl.stop(); err != nil {
		t.Fatalf("stop the controller: %v", err)
	}
	if leader, err := pushLeaderLabel(t.Context()); err != nil || leader != "" {
		t.Fatalf("the stopped controller's pod is labelled %q (%v), want the label removed", leader, err)
	}
	s.waitConnected(t, 0)
	expectGeneration1(t, s) // the last pushed policy, still enforced

	// The kubelet projects a newer bundle meanwhile: the Secret's data,
	// /healthz renamed /livez, at the next revision.
	data := bundleData(t, ns)
	rev := config.HeadRevision(data)
	altered := bytes.Replace(data, []byte("- /healthz\n"), []byte("- /livez\n"), 1)
	if bytes.Equal(altered, data) {
		t.Fatalf("no /healthz path in the bundle:\n%s", data)
	}
	s.writeBundle(t, config.StampRevision(altered, rev+1))
	took := waitStatus(t, []*sidecar{s}, time.Now(), http.StatusOK, "/livez")
	t.Logf("figure: newer bundle file written with the controller down → enforced: %s", took.Round(time.Millisecond))
	s.expect(t, http.StatusForbidden, "/healthz")
	s.expect(t, http.StatusOK, "/orders/1", "X-API-Key", partnerKey)

	restarted := time.Now()
	if err := ctl.start(t.Context()); err != nil {
		t.Fatalf("restart the controller: %v", err)
	}
	t.Logf("figure: controller process start → serving the push channel: %s", time.Since(restarted).Round(time.Millisecond))
	s.waitConnected(t, 1)
	t.Logf("figure: controller process start → sidecar reconnected: %s", time.Since(restarted).Round(time.Millisecond))
	// The controller sends what it holds, revision rev, below the file's:
	// the sidecar keeps the file.
	wait.ForNil(t, settle, func() error {
		if got := s.metric(t, "authgate_proxy_push_updates_total", "outcome", "stale"); got < 1 {
			return fmt.Errorf("authgate_proxy_push_updates_total{outcome=stale} %v", got)
		}
		return nil
	}, "the sidecar to find the controller's bundle older than its file")
	s.expect(t, http.StatusOK, "/livez")
	s.expect(t, http.StatusForbidden, "/healthz")

	// The next generation gets a revision from the clock, above the
	// file's, and is pushed.
	updated := time.Now()
	updatePolicy(t, ns, "orders", protectHealth)
	took = waitStatus(t, []*sidecar{s}, updated, http.StatusUnauthorized, "/healthz")
	t.Logf("figure: policy update after the restart → enforced: %s", took.Round(time.Millisecond))
	s.expect(t, http.StatusForbidden, "/livez")
	s.expect(t, http.StatusOK, "/healthz", "X-API-Key", partnerKey)
	waitEnforced(t, ns, "orders", "1/1 at generation 2", metav1.ConditionTrue, coverage.ReasonAllPodsEnforce, 2)
	if got := s.metric(t, "authgate_proxy_push_connects_total", "result", "ok"); got < 2 {
		t.Fatalf("authgate_proxy_push_connects_total{result=ok} %v, want at least 2 (before and after the restart)", got)
	}
}
